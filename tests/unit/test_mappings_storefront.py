"""Golden tests: literal sandbox storefront records -> expected canonical records."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from erpsync.errors import MappingError
from erpsync.mappings.storefront_sandbox import (
    GATEWAY_TO_ERP_METHOD,
    customer_from_storefront,
    order_from_storefront,
)
from erpsync.model import Address, Customer, Discount, Order, OrderLine, OrderStatus, Payment, TaxLine

UTC = dt.UTC

SF_ADDRESS = {
    "address1": "12 Garcia Street",
    "address2": "Suite 4",
    "city": "London",
    "province": "",
    "zip": "SW1 1AA",
    "country_code": "GB",
    "name": "Anna Müller",
    "company": "",
    "phone": "+1-555-1234",
}

SF_CUSTOMER = {
    "id": "C100004",
    "email": " Anna.Muller.3@Example.com",
    "first_name": "Anna",
    "last_name": "Müller",
    "company": "",
    "phone": "+1-555-1234",
    "group": "retail",
    "tax_exempt": False,
    "addresses": [{"type": "billing", **SF_ADDRESS}, {"type": "shipping", **SF_ADDRESS}],
    "created_at": "2026-03-01T09:00:00Z",
    "updated_at": "2026-03-01T10:00:00Z",
}


def gb(kind: str) -> Address:
    return Address(
        line1="12 Garcia Street",
        line2="Suite 4",
        city="London",
        postcode="SW1 1AA",
        country="GB",
        name="Anna Müller",
        phone="+1-555-1234",
        kind=kind,
    )


def test_customer_golden() -> None:
    assert customer_from_storefront(SF_CUSTOMER) == Customer(
        external_id="C100004",
        email="Anna.Muller.3@Example.com",
        first_name="Anna",
        last_name="Müller",
        phone="+1-555-1234",
        group="retail",
        tax_exempt=False,
        addresses=[gb("billing"), gb("shipping")],
        updated_at=dt.datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"email": None}, "email", "required"),
        ({"email": "   "}, "email", "required"),
        ({"email": "anna.example.com"}, "email", "email"),
        ({"id": None}, "id", "required"),
        ({"updated_at": "yesterday"}, "updated_at", "iso8601"),
        ({"tax_exempt": "no"}, "tax_exempt", "bool"),
    ],
)
def test_customer_malformed(change: dict, field: str, rule: str) -> None:
    raw = {**SF_CUSTOMER, **change}
    with pytest.raises(MappingError) as err:
        customer_from_storefront(raw)
    assert (err.value.field, err.value.rule) == (field, rule)
    assert "C100004" in err.value.record or change.get("id", "x") is None


def test_customer_address_bad_country() -> None:
    raw = copy.deepcopy(SF_CUSTOMER)
    raw["addresses"][1]["country_code"] = "GBR"
    with pytest.raises(MappingError) as err:
        customer_from_storefront(raw)
    assert (err.value.field, err.value.rule) == ("country_code", "iso3166")
    assert err.value.record == "storefront customer C100004/1"


# --------------------------------------------------------------------------- orders

SF_ORDER = {
    "id": "O100042",
    "name": "#100042",
    "customer": {"id": "C100004", "email": " Anna.Muller.3@Example.com"},
    "email": " Anna.Muller.3@Example.com",
    "currency": "GBP",
    "created_at": "2026-11-23T10:00:00Z",
    "updated_at": "2026-11-23T10:05:00Z",
    "financial_status": "paid",
    "cancelled_at": None,
    "line_items": [
        {
            "id": "L100042-1",
            "sku": "SKU-000007",
            "title": "Brass Hinge 7",
            "quantity": 2,
            "price": "19.99",
            "total_discount": "2.00",
            "tax_lines": [
                {"title": "GB-VAT", "code": "GB-VAT", "rate": "0.20", "price": "7.60", "jurisdiction": "GB"}
            ],
        },
        {
            "id": "L100042-2",
            "sku": "SKU-000011",
            "title": "Eco Lamp 11",
            "quantity": 1,
            "price": "5.00",
            "total_discount": "0.00",
            "tax_lines": [
                {"title": "GB-VAT", "code": "GB-VAT", "rate": "0.20", "price": "1.00", "jurisdiction": "GB"}
            ],
        },
    ],
    "shipping_lines": [{"code": "STANDARD", "title": "Standard shipping", "price": "6.28"}],
    "shipping_address": SF_ADDRESS,
    "billing_address": SF_ADDRESS,
    "tax_lines": [
        {"title": "GB-VAT shipping", "code": "GB-VAT", "rate": "0.20", "price": "1.26", "jurisdiction": "GB"}
    ],
    "discount_codes": [{"code": "WELCOME10", "amount": "7.90", "type": "fixed_amount"}],
    "transactions": [
        {"id": "T100042-1", "gateway": "gift_card", "amount": "20.00", "status": "success"},
        {"id": "T100042-2", "gateway": "card", "amount": "31.22", "status": "success"},
        {"id": "T100042-3", "gateway": "card", "amount": "51.22", "status": "failure"},
    ],
    "total_price": "51.22",
}

VAT = "GB-VAT"


def expected_order() -> Order:
    return Order(
        external_id="O100042",
        number="#100042",
        customer_external_id="C100004",
        customer_email="Anna.Muller.3@Example.com",
        currency="GBP",
        placed_at=dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        updated_at=dt.datetime(2026, 11, 23, 10, 5, tzinfo=UTC),
        status=OrderStatus.PAID,
        lines=[
            OrderLine(
                line_id="L100042-1",
                sku="SKU-000007",
                name="Brass Hinge 7",
                quantity=2,
                unit_price=Decimal("19.99"),
                discount=Decimal("2.00"),
                taxes=[TaxLine(code=VAT, rate=Decimal("0.20"), amount=Decimal("7.60"), jurisdiction="GB")],
            ),
            OrderLine(
                line_id="L100042-2",
                sku="SKU-000011",
                name="Eco Lamp 11",
                quantity=1,
                unit_price=Decimal("5.00"),
                discount=Decimal("0.00"),
                taxes=[TaxLine(code=VAT, rate=Decimal("0.20"), amount=Decimal("1.00"), jurisdiction="GB")],
            ),
        ],
        shipping_method="STANDARD",
        shipping_amount=Decimal("6.28"),
        shipping_address=gb("shipping"),
        billing_address=gb("billing"),
        payments=[
            Payment(method="gift_card", erp_method="GC", amount=Decimal("20.00"), reference="T100042-1"),
            Payment(method="card", erp_method="CC", amount=Decimal("31.22"), reference="T100042-2"),
        ],
        taxes=[TaxLine(code=VAT, rate=Decimal("0.20"), amount=Decimal("1.26"), jurisdiction="GB")],
        discounts=[Discount(code="WELCOME10", amount=Decimal("7.90"))],
        total=Decimal("51.22"),
        is_guest=False,
    )


def test_order_golden_with_taxes_discounts_and_split_payment() -> None:
    order = order_from_storefront(SF_ORDER)
    assert order == expected_order()
    # 39.98 - 2.00 + 5.00 + 6.28 shipping + 7.60 + 1.00 + 1.26 tax - 7.90 discount
    assert order.computed_total() == Decimal("51.22")
    assert sum(p.amount for p in order.payments) == order.total


def test_guest_order() -> None:
    raw = {**SF_ORDER, "customer": None, "email": "guest.7@example.org"}
    order = order_from_storefront(raw)
    assert order.is_guest is True
    assert order.customer_external_id is None
    assert order.customer_email == "guest.7@example.org"


def test_pending_order_without_transactions() -> None:
    order = order_from_storefront({**SF_ORDER, "financial_status": "pending", "transactions": []})
    assert order.status is OrderStatus.PENDING
    assert order.payments == []


def test_cancelled_wins_over_financial_status() -> None:
    order = order_from_storefront({**SF_ORDER, "cancelled_at": "2026-11-23T10:30:00Z"})
    assert order.status is OrderStatus.CANCELLED


def test_order_without_shipping_or_order_taxes() -> None:
    raw = {**SF_ORDER, "shipping_lines": [], "tax_lines": [], "discount_codes": []}
    order = order_from_storefront(raw)
    assert (order.shipping_amount, order.shipping_method, order.taxes, order.discounts) == (
        Decimal("0"),
        "",
        [],
        [],
    )


def test_gateway_table() -> None:
    assert GATEWAY_TO_ERP_METHOD == {"card": "CC", "paypal": "PP", "gift_card": "GC"}


def _with_line(**change: object) -> dict:
    raw = copy.deepcopy(SF_ORDER)
    raw["line_items"][0].update(change)
    return raw


@pytest.mark.parametrize(
    ("raw", "record", "field", "rule"),
    [
        (
            {**SF_ORDER, "email": None, "customer": None},
            "storefront order O100042",
            "customer_email",
            "required",
        ),
        ({**SF_ORDER, "currency": "usd"}, "storefront order O100042", "currency", "iso4217"),
        ({**SF_ORDER, "currency": "EURO"}, "storefront order O100042", "currency", "iso4217"),
        ({**SF_ORDER, "total_price": 51.22}, "storefront order O100042", "total_price", "money_not_float"),
        ({**SF_ORDER, "total_price": "fifty"}, "storefront order O100042", "total_price", "money"),
        (
            {**SF_ORDER, "financial_status": "authorized"},
            "storefront order O100042",
            "status",
            "financial_status",
        ),
        ({**SF_ORDER, "line_items": []}, "storefront order O100042", "<record>", "model"),
        (_with_line(price=19.99), "storefront order O100042/L100042-1", "price", "money_not_float"),
        (_with_line(quantity=0), "storefront order O100042/L100042-1", "quantity", "quantity"),
        (_with_line(quantity=1.5), "storefront order O100042/L100042-1", "quantity", "quantity"),
        (_with_line(sku=""), "storefront order O100042/L100042-1", "sku", "required"),
    ],
)
def test_order_malformed(raw: dict, record: str, field: str, rule: str) -> None:
    with pytest.raises(MappingError) as err:
        order_from_storefront(raw)
    assert (err.value.record, err.value.field, err.value.rule) == (record, field, rule)


def test_unknown_gateway_is_a_mapping_error() -> None:
    raw = copy.deepcopy(SF_ORDER)
    raw["transactions"][1]["gateway"] = "bitcoin"
    with pytest.raises(MappingError) as err:
        order_from_storefront(raw)
    assert (err.value.record, err.value.field, err.value.rule, err.value.value) == (
        "storefront order O100042/T100042-2",
        "gateway",
        "payment_gateway",
        "bitcoin",
    )


def test_float_tax_amount_refused() -> None:
    raw = copy.deepcopy(SF_ORDER)
    raw["line_items"][0]["tax_lines"][0]["price"] = 7.6
    with pytest.raises(MappingError) as err:
        order_from_storefront(raw)
    assert (err.value.field, err.value.rule) == ("price", "money_not_float")
