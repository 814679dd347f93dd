"""Canonical model: money is never a float, records validate what they carry."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from erpsync.model import (
    Address,
    Customer,
    Discount,
    InventoryLevel,
    ModelError,
    Money,
    Order,
    OrderLine,
    PriceEntry,
    TaxLine,
    money,
    normalise_email,
)


def test_money_refuses_floats_and_accepts_strings_ints_decimals():
    assert money("19.99") == Decimal("19.99")
    assert money(5) == Decimal(5)
    assert money(Decimal("0.10")) == Decimal("0.10")
    with pytest.raises(ModelError, match="float"):
        money(19.99)
    with pytest.raises(ModelError, match="not a number"):
        money("abc")
    with pytest.raises(ModelError, match="finite"):
        money("NaN")
    with pytest.raises(ModelError):
        money(True)


def test_money_arithmetic_checks_currency():
    assert Money("1.10", "USD") + Money("2.20", "USD") == Money(Decimal("3.30"), "USD")
    with pytest.raises(ModelError, match="cannot add USD and EUR"):
        Money("1", "USD") + Money("1", "EUR")
    with pytest.raises(ModelError, match="ISO 4217"):
        Money("1", "usd")


def test_price_entry_validates_amount_currency_and_dates():
    p = PriceEntry(sku="S1", price="10.00", currency="EUR", min_quantity=10)
    assert p.price == Decimal("10.00")
    with pytest.raises(ModelError, match="float"):
        PriceEntry(sku="S1", price=9.99, currency="EUR")
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ModelError, match="effective_to"):
        PriceEntry(sku="S1", price="1", currency="EUR", effective_from=t, effective_to=t)
    with pytest.raises(ModelError, match="min_quantity"):
        PriceEntry(sku="S1", price="1", currency="EUR", min_quantity=0)


def test_inventory_quantities_must_be_whole_numbers():
    InventoryLevel(sku="S1", location="WH1", on_hand=5, allocated=1)
    with pytest.raises(ModelError, match="on_hand"):
        InventoryLevel(sku="S1", location="WH1", on_hand=5.0)  # type: ignore[arg-type]


def test_address_country_must_be_iso2():
    Address(line1="1 Main St", city="Springfield", postcode="12345", country="US")
    with pytest.raises(ModelError, match="ISO 3166"):
        Address(line1="1 Main St", city="Springfield", postcode="12345", country="USA")


def _order(**kw):
    base = dict(
        external_id="O1",
        number="#1",
        customer_external_id="C1",
        customer_email="a@example.com",
        currency="USD",
        placed_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        lines=[
            OrderLine(line_id="1", sku="S1", quantity=2, unit_price="10.00", discount="1.00",
                      taxes=[TaxLine(code="CA", rate="0.0725", amount="1.38")]),
        ],
        shipping_amount="5.00",
        discounts=[Discount(code="WELCOME", amount="2.00")],
        total="23.38",
    )
    base.update(kw)
    return Order(**base)


def test_order_total_is_lines_plus_shipping_plus_tax_minus_discounts():
    o = _order()
    assert o.computed_total() == Decimal("23.38") == o.total


def test_order_needs_lines_and_positive_quantities():
    with pytest.raises(ModelError, match="no lines"):
        _order(lines=[])
    with pytest.raises(ModelError, match="positive whole"):
        OrderLine(line_id="1", sku="S1", quantity=0, unit_price="1")


def test_content_hash_is_stable_and_sensitive():
    c1 = Customer(external_id="C1", email="A@x.com", credit_limit="100.00")
    c2 = Customer(external_id="C1", email="A@x.com", credit_limit="100.00")
    c3 = Customer(external_id="C1", email="A@x.com", credit_limit="100.01")
    assert c1.content_hash() == c2.content_hash() != c3.content_hash()
    assert c1.to_dict()["credit_limit"] == "100.00"


def test_normalise_email():
    assert normalise_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
