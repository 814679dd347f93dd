"""Golden tests of the stock mappings: raw ERP stock/items and store levels in, what the rules use out."""

from __future__ import annotations

import datetime as dt

import pytest

from erpsync.errors import MappingError
from erpsync.mappings.stock import (
    item_from_erp,
    level_to_storefront,
    stock_figures,
    stock_from_erp,
    store_level,
)
from erpsync.rules.availability import StoreLevel

RAW = {"item_code": "ITEM-000001", "warehouse": "MAIN", "on_hand": 40, "allocated": 5, "reserved": 1,
       "damaged": 1, "quarantined": 2, "safety_stock": 5, "restock_date": None,
       "modified_at": "2026-10-01T00:00:00Z"}


def test_stock_figures_golden() -> None:
    f = stock_figures(RAW)
    assert (f.item_code, f.warehouse, f.available, f.restock_date, f.modified) == (
        "ITEM-000001", "MAIN", 26, None, "2026-10-01T00:00:00Z")
    assert stock_figures(RAW, include_safety_stock=False).available == 31


def test_negative_stock_is_accepted_and_clamped() -> None:
    assert stock_figures({**RAW, "on_hand": -3}).available == 0


@pytest.mark.parametrize(("field", "value"), [("allocated", "12.5"), ("warehouse", None), ("on_hand", 1.0),
                                              ("restock_date", "soon"), ("backorderable", "yes")])
def test_malformed_stock_names_field(field: str, value: object) -> None:
    with pytest.raises(MappingError) as err:
        stock_figures({**RAW, field: value})
    assert err.value.field == field


def test_canonical_level() -> None:
    lv = stock_from_erp({**RAW, "restock_date": "2026-12-03"}, "SKU-000001")
    assert lv.sku == "SKU-000001" and lv.on_hand == 40 and lv.restock_date == dt.date(2026, 12, 3)


def test_item_with_kit() -> None:
    info = item_from_erp({"item_code": "ITEM-000050", "sku": "SKU-000050", "active": True,
                          "kit_components": [{"item_code": "ITEM-000003", "qty": 2}, {"item_code": "ITEM-000007", "qty": 1}]})
    assert info.kit == {"ITEM-000003": 2, "ITEM-000007": 1}
    assert item_from_erp({"item_code": "I", "sku": "S", "kit_components": []}).kit is None
    with pytest.raises(MappingError):
        item_from_erp({"item_code": "I", "sku": "S", "kit_components": [{"item_code": "X", "qty": 0}]})


def test_store_level_and_payload() -> None:
    assert store_level({"sku": "S", "location_id": "MAIN", "available": 3}) == ("S", "MAIN", 3)
    with pytest.raises(MappingError):
        store_level({"sku": "S", "location_id": "MAIN", "available": "3"})
    lv = StoreLevel("S", "MAIN", 0, True, dt.date(2026, 12, 1))
    assert level_to_storefront(lv) == {"sku": "S", "location_id": "MAIN", "available": 0,
                                       "restock_date": "2026-12-01", "backorderable": True}
    assert level_to_storefront(StoreLevel("S", "MAIN", 4)) == {"sku": "S", "location_id": "MAIN", "available": 4}
