"""Golden test of the Tryton party mapping: a party as the adapter reads it (addresses with the
flattened ``country.code`` key Tryton's read returns) -> the canonical customer."""

from __future__ import annotations

from erpsync.mappings.erp_tryton import customer_from_erp

PARTY = {
    "id": 7, "code": "PTY-7", "name": "Jane Doe", "active": True,
    "contact_mechanisms": [{"type": "email", "value": "Jane.Doe@Example.com"}, {"type": "phone", "value": "+49 30 1234567"}],
    "addresses": [{"party": 7, "party_name": None, "street": "1 Main St\nFloor 2", "postal_code": "10115",
                   "city": "Berlin", "country.code": "DE", "subdivision.code": None, "invoice": True, "delivery": True}],
    "write_date": "2026-11-30T10:00:00",
}


def test_party_with_an_address_maps_to_a_customer() -> None:
    c = customer_from_erp(PARTY)
    assert (c.external_id, c.first_name, c.last_name) == ("PTY-7", "Jane", "Doe")
    assert c.email.lower() == "jane.doe@example.com" and c.phone == "+49 30 1234567"
    (addr,) = c.addresses
    assert (addr.line1, addr.line2, addr.city, addr.postcode, addr.country) == ("1 Main St", "Floor 2", "Berlin", "10115", "DE")
    assert c.updated_at is not None
