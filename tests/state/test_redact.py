"""Audit payloads lose secrets and personal data but keep their shape."""

from __future__ import annotations

from erpsync.state.redact import MASK, Redactor, redact


def test_secrets_and_personal_data_are_masked_recursively() -> None:
    payload = {
        "headers": {"Authorization": "Bearer abc", "X-Api-Key": "k", "Accept": "json"},
        "password": "hunter2",
        "access_token": "t",
        "client_secret": "s",
        "customer": {
            "id": "C100001",
            "email": "ann@example.com",
            "first_name": "Ann",
            "lastName": "Lee",
            "phone": "+1 555",
            "company": "ACME",
            "addresses": [
                {
                    "type": "billing",
                    "address1": "1 Main St",
                    "address2": "",
                    "city": "Springfield",
                    "zip": "12345",
                    "name": "Ann Lee",
                    "country_code": "US",
                },
            ],
        },
        "erp": {
            "street": "x",
            "street2": None,
            "postal_code": "9",
            "postcode": "9",
            "line1": "a",
            "line2": "b",
        },
        "payment": {"card_number": "4111", "cvv": "123", "iban": "DE00", "card": {"brand": "visa"}},
        "contact_email": "x@y",
        "lines": [{"sku": "SKU-1", "qty": 2, "price": "9.99"}],
        "filename": "export.csv",
    }
    out = redact(payload)
    assert out["headers"] == {"Authorization": MASK, "X-Api-Key": MASK, "Accept": "json"}
    assert out["password"] == out["access_token"] == out["client_secret"] == MASK
    customer = out["customer"]
    assert customer["id"] == "C100001" and customer["company"] == "ACME"
    for key in ("email", "first_name", "lastName", "phone"):
        assert customer[key] == MASK
    address = customer["addresses"][0]
    assert address["address1"] == address["zip"] == address["name"] == MASK
    assert address["address2"] == ""  # empty stays empty: absence is useful when debugging
    assert address["city"] == "Springfield" and address["country_code"] == "US"
    assert out["erp"] == {
        "street": MASK,
        "street2": None,
        "postal_code": MASK,
        "postcode": MASK,
        "line1": MASK,
        "line2": MASK,
    }
    assert out["payment"] == {"card_number": MASK, "cvv": MASK, "iban": MASK, "card": MASK}
    assert out["contact_email"] == MASK
    assert out["lines"] == payload["lines"]
    assert out["filename"] == "export.csv"
    assert payload["password"] == "hunter2"  # input untouched


def test_extra_keys_are_configurable() -> None:
    r = Redactor(extra_keys=["tax_id", "Vat-Number"])
    assert r.redact({"taxId": "DE1", "vat_number": "x", "sku": "a"}) == {
        "taxId": MASK,
        "vat_number": MASK,
        "sku": "a",
    }


def test_non_mapping_values_pass_through() -> None:
    assert redact("text") == "text"
    assert redact([{"token": "x"}, 1]) == [{"token": MASK}, 1]
    assert redact(None) is None
