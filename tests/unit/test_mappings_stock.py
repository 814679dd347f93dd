"""Golden tests of the stock mappings: raw ERP stock/items and store levels in, what the rules use out."""

from __future__ import annotations

import datetime as dt

import pytest

from erpsync.errors import MappingError
from erpsync.mappings.stock import (
    item_from_erp,
    level_to_storefront,
    stock_available_rows,
    stock_figures,
    stock_from_erp,
    store_level,
    store_level_rows,
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


# --------------------------------------------------------------------------- bulk rows (drift check)

FIELDS = tuple(RAW)
ROWS = [
    list(RAW.values()),
    [*list(RAW.values())[:8], "2026-12-03", "2026-10-02T00:00:00Z"],  # out of stock with a restock date
    ["ITEM-000002", "EAST", None, 0, 0, 0, 0, 0, None, None],  # a null figure counts as zero
    ["ITEM-000003", "EAST", -4, 0, 0, 0, 0, 0, None, None],  # negative stock: net -4 (over-allocated)
    ["ITEM-000009", "EAST", 4, 0, 0, 0, 0, 0, None, 17],  # a modified_at that is no time
    ["ITEM-000004", "MAIN", "12.5", 0, 0, 0, 0, 0, None, None],  # malformed figure
    ["ITEM-000005", "MAIN", True, 0, 0, 0, 0, 0, None, None],  # a bool is no quantity
    ["", "MAIN", 1, 0, 0, 0, 0, 0, None, None],  # no item code
    ["ITEM-000006", None, 1, 0, 0, 0, 0, 0, None, None],  # no warehouse
    ["ITEM-000007", "MAIN", 1, 0, 0, 0, 0, 0, "soon", None],  # malformed restock date
    ["ITEM-000008", "MAIN", 1, 0, 0],  # a row of the wrong length
]


def _bulk(fields, rows, **kw):
    bad: list[tuple[dict, MappingError]] = []
    out = list(stock_available_rows(fields, rows, lambda raw, exc: bad.append((raw, exc)), **kw))
    return out, bad


@pytest.mark.parametrize("safety", [True, False])
def test_bulk_stock_rows_accept_and_refuse_exactly_what_stock_figures_does(safety: bool) -> None:
    out, bad = _bulk(FIELDS, ROWS, include_safety_stock=safety)
    expected, refused = [], []
    for row in ROWS[:-1]:
        try:
            f = stock_figures(dict(zip(FIELDS, row, strict=True)), include_safety_stock=safety)
        except MappingError as exc:
            refused.append((row[0], exc.field))
            continue
        expected.append((f.item_code, f.warehouse, f.net))  # -4 for the negative warehouse
    assert out == expected and len(out) == 4
    assert ("ITEM-000003", "EAST", -4) in out  # an over-allocated warehouse: minus what it is short
    assert [(raw.get("item_code"), exc.field) for raw, exc in bad] == [*refused, ("ITEM-000008", "_row")]
    assert bad[-1][0]["_row"] == ROWS[-1]  # the values of a short row are kept for the dead letter


def test_bulk_stock_rows_in_another_shape_go_the_per_record_way() -> None:
    fields = ("warehouse", "item_code", "on_hand", "backorderable")  # other order, figures missing, extra field
    rows = [["MAIN", "ITEM-000001", 5, False], ["EAST", "ITEM-000002", 3, "yes"]]
    out, bad = _bulk(fields, rows)
    assert out == [("ITEM-000001", "MAIN", 5)]
    assert [exc.field for _, exc in bad] == ["backorderable"]


def test_bulk_store_rows_accept_and_refuse_exactly_what_store_level_does() -> None:
    fields = ("sku", "location_id", "available", "updated_at")
    rows = [["S1", "MAIN", 3, "t"], ["S2", "EAST", "3", "t"], ["S3", None, 1, "t"], ["S4", "MAIN", False, "t"],
            ["S5", "MAIN"]]
    bad: list[tuple[dict, MappingError]] = []
    out = list(store_level_rows(fields, rows, lambda raw, exc: bad.append((raw, exc))))
    assert out == [("S1", "MAIN", 3)]
    assert [raw["sku"] for raw, _ in bad] == ["S2", "S3", "S4", "S5"]
    other = list(store_level_rows(("available", "location_id", "sku"), [[7, "WEST", "S9"]], lambda r, e: None))
    assert other == [("S9", "WEST", 7)]
