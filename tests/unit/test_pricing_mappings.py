"""Golden tests of the pricing specs: ERP price rows -> canonical -> storefront targets and payloads."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from erpsync.errors import MappingError
from erpsync.mappings.erp_pricing import price_from_erp
from erpsync.mappings.storefront_pricing import (
    list_price,
    price_key,
    rule_id,
    split_key,
    target_of,
    variant_price,
)

SKU_OF = {"ITEM-000001": "SKU-000001"}.get
ROW = {"item_code": "ITEM-000001", "price_list": "LIST", "customer_group": None, "customer_no": None,
       "currency": "USD", "min_qty": 1, "price": "19.99", "valid_from": "2026-01-01T00:00:00Z", "valid_to": None,
       "modified_at": "2026-10-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("patch", "expected", "handle", "rid"),
    [
        ({}, {"kind": "base", "price_list": "LIST", "currency": "USD", "min_quantity": 1}, "variant", "LIST"),
        ({"price_list": "LIST-EUR", "currency": "EUR", "price": "18.39"},
         {"kind": "base", "currency": "EUR", "price": "18.39"}, "currency-eur", "LIST-EUR"),
        ({"price_list": "WHOLESALE", "customer_group": "wholesale", "min_qty": 10, "price": "15.99"},
         {"kind": "group", "customer_group": "wholesale", "min_quantity": 10}, "group-wholesale-usd", "WHOLESALE"),
        ({"price_list": "CONTRACT-CUST-000021", "customer_no": "CUST-000021", "currency": "GBP", "min_qty": "5",
          "valid_to": "2027-06-30T00:00:00Z"},
         {"kind": "customer", "customer_id": "CUST-000021", "min_quantity": 5,
          "effective_to": "2027-06-30T00:00:00+00:00"}, "customer-cust-000021-gbp", "CONTRACT-CUST-000021"),
        ({"price_list": "sale-bf", "valid_from": "2026-11-27", "valid_to": "30.11.2026", "price": "14.99"},
         {"kind": "sale", "price_list": "SALE-BF", "effective_from": "2026-11-27T00:00:00+00:00",
          "effective_to": "2026-11-30T00:00:00+00:00"}, "variant", "SALE-BF@sale"),
    ],
)
def test_golden_price_rows(patch: dict, expected: dict, handle: str, rid: str) -> None:
    entry = price_from_erp({**ROW, **patch}, SKU_OF)
    got = entry.to_dict()
    assert got["sku"] == "SKU-000001"
    assert {k: got[k] for k in expected} == expected
    target = target_of(entry, "USD")
    assert target.handle == handle
    assert rule_id(entry) == rid


def test_golden_storefront_payloads() -> None:
    assert variant_price("SKU-1", D("79.00"), D("100.00")) == {"sku": "SKU-1", "price": "79.00",
                                                                "compare_at_price": "100.00"}
    assert list_price("SKU-1", 10, D("15.99"), None) == {"sku": "SKU-1", "min_qty": 10, "price": "15.99",
                                                         "compare_at_price": None}
    entry = price_from_erp({**ROW, "price_list": "CONTRACT-CUST-000021", "customer_no": "CUST-000021"}, SKU_OF)
    assert target_of(entry, "USD").header("C100021") == {
        "handle": "customer-cust-000021-usd", "name": "Contract CUST-000021 (USD)", "currency": "USD",
        "customer_group": None, "customer_ref": "CUST-000021", "customer_id": "C100021",
    }
    key = price_key("group-wholesale-usd", "SKU-1", 50)
    assert key == "group-wholesale-usd|SKU-1|50" and split_key(key) == ("group-wholesale-usd", "SKU-1", 50)


@pytest.mark.parametrize(
    ("patch", "field", "rule"),
    [
        ({"price": "12,50"}, "price", "money"),
        ({"price": "N/A"}, "price", "money"),
        ({"price": ""}, "price", "required"),
        ({"price": "-1"}, "price", "price_not_negative"),
        ({"currency": "EURO"}, "currency", "iso4217"),
        ({"min_qty": 0}, "min_qty", "quantity"),
        ({"item_code": "ITEM-999999"}, "item_code", "item_xref"),
        ({"valid_from": "yesterday"}, "valid_from", "date_format"),
        ({"valid_to": "2025-01-01"}, "<record>", "model"),  # ends before it starts
    ],
)
def test_price_mapping_errors_name_record_field_and_rule(patch: dict, field: str, rule: str) -> None:
    with pytest.raises(MappingError) as err:
        price_from_erp({**ROW, **patch}, SKU_OF)
    text = str(err.value)
    assert "erp price ITEM-" in text and field in text and rule in text
