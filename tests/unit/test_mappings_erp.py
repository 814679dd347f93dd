"""Golden tests: canonical records -> sandbox ERP payloads, and raw ERP customers -> canonical."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from test_mappings_storefront import SF_CUSTOMER, SF_ORDER, expected_order

from erpsync.errors import MappingError
from erpsync.mappings.erp_sandbox import (
    customer_from_erp,
    customer_to_erp,
    customer_update_to_erp,
    order_to_erp,
)
from erpsync.mappings.storefront_sandbox import customer_from_storefront, order_from_storefront
from erpsync.model import Address, Customer

ERP_ADDRESS = {
    "street": "12 Garcia Street",
    "street2": "Suite 4",
    "city": "London",
    "state": "",
    "postal_code": "SW1 1AA",
    "country": "GB",
}


def test_customer_create_payload_golden() -> None:
    assert customer_to_erp(customer_from_storefront(SF_CUSTOMER)) == {
        "name": "Anna Müller",
        "email": "Anna.Muller.3@Example.com",
        "phone": "+1-555-1234",
        "addresses": [{"type": "BILL_TO", **ERP_ADDRESS}, {"type": "SHIP_TO", **ERP_ADDRESS}],
        "external_ref": "C100004",
        "customer_group": "retail",
        "tax_exempt": False,
        "tax_id": None,
        "currency": "USD",
    }


def test_customer_update_payload_leaves_erp_owned_terms_alone() -> None:
    payload = customer_update_to_erp(customer_from_storefront(SF_CUSTOMER))
    assert set(payload) == {"name", "email", "phone", "addresses", "external_ref"}


def test_company_only_customer_is_named_after_the_company() -> None:
    c = Customer(external_id="C1", email="buyer@acme.test", company="Acme GmbH", credit_limit=Decimal("5000"))
    payload = customer_to_erp(c)
    assert payload["name"] == "Acme GmbH"
    assert payload["credit_limit"] == "5000"


def test_order_payload_golden() -> None:
    order = order_from_storefront(SF_ORDER)
    order.lines[0].item_code = "ITEM-000007"
    order.lines[1].item_code = "ITEM-000011"
    vat = {"tax_code": "GB-VAT", "rate": "0.20", "jurisdiction": "GB"}
    assert order_to_erp(order, "CUST-000004") == {
        "external_ref": "O100042",
        "customer_no": "CUST-000004",
        "order_date": "2026-11-23T10:00:00Z",
        "currency": "GBP",
        "exchange_rate": "1",
        "lines": [
            {
                "line_no": 1,
                "item_code": "ITEM-000007",
                "qty": 2,
                "unit_price": "19.99",
                "discount": "2.00",
                "taxes": [{**vat, "amount": "7.60"}],
            },
            {
                "line_no": 2,
                "item_code": "ITEM-000011",
                "qty": 1,
                "unit_price": "5.00",
                "discount": "0.00",
                "taxes": [{**vat, "amount": "1.00"}],
            },
        ],
        "shipping": {"method": "STANDARD", "amount": "6.28", "address": {"type": "SHIP_TO", **ERP_ADDRESS}},
        "payments": [
            {"method_code": "GC", "amount": "20.00", "reference": "T100042-1"},
            {"method_code": "CC", "amount": "31.22", "reference": "T100042-2"},
        ],
        "taxes": [{**vat, "amount": "1.26"}],
        "discounts": [{"code": "WELCOME10", "amount": "7.90", "kind": "coupon"}],
        "total": "51.22",
    }


def test_order_payload_needs_item_codes() -> None:
    with pytest.raises(MappingError) as err:
        order_to_erp(expected_order(), "CUST-000004")
    assert (err.value.field, err.value.rule, err.value.value) == (
        "lines[0].item_code",
        "item_xref",
        "SKU-000007",
    )


def test_money_never_leaves_in_exponent_notation() -> None:
    order = expected_order()
    for ln in order.lines:
        ln.item_code = "ITEM-1"
    order.shipping_amount = Decimal("0E-2")
    assert order_to_erp(order, "C")["shipping"]["amount"] == "0.00"


ERP_CUSTOMER = {
    "customer_no": "CUST-000004",
    "name": "Anna Müller",
    "email": "Anna.Muller.3@Example.COM ",
    "phone": "+1-555-9876",
    "customer_group": "wholesale",
    "tax_exempt": True,
    "tax_id": "VAT12345678",
    "payment_terms": "NET30",
    "credit_limit": "5000.00",
    "currency": "EUR",
    "addresses": [{"type": "BILL_TO", **ERP_ADDRESS}, {"type": "SHIP_TO", **ERP_ADDRESS}],
    "external_ref": None,
    "modified_at": "2026-10-01T00:00:00Z",
}


def test_erp_customer_golden() -> None:
    addr = {
        "line1": "12 Garcia Street",
        "line2": "Suite 4",
        "city": "London",
        "postcode": "SW1 1AA",
        "country": "GB",
    }
    assert customer_from_erp(ERP_CUSTOMER) == Customer(
        external_id="CUST-000004",
        email="Anna.Muller.3@Example.COM",
        first_name="Anna",
        last_name="Müller",
        phone="+1-555-9876",
        group="wholesale",
        tax_exempt=True,
        tax_exemption_id="VAT12345678",
        payment_terms="NET30",
        credit_limit=Decimal("5000.00"),
        currency="EUR",
        addresses=[Address(**addr, kind="billing"), Address(**addr, kind="shipping")],
        updated_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    )


def test_erp_customer_without_email_is_still_comparable() -> None:
    c = customer_from_erp({**ERP_CUSTOMER, "email": None, "name": "Acme GmbH"})
    assert (c.email, c.first_name, c.last_name) == ("", "Acme", "GmbH")


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"credit_limit": 5000.0}, "credit_limit", "money_not_float"),
        ({"currency": "eur"}, "currency", "iso4217"),
        ({"customer_no": None}, "customer_no", "required"),
    ],
)
def test_erp_customer_malformed(change: dict, field: str, rule: str) -> None:
    with pytest.raises(MappingError) as err:
        customer_from_erp({**ERP_CUSTOMER, **change})
    assert (err.value.field, err.value.rule) == (field, rule)
