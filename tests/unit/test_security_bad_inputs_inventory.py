"""The bad-input corpus through the inventory flows (inventory_sync's first run and its cycles,
the fast lane, the drift check): every bad ERP stock record is quarantined with its reason,
nothing crashes, nothing goes missing, and the good records reach the store.

The ERP double hands the records over as they are (no filtering), like an API that serves
whatever it holds; the quality gate is set to quarantine only (never to fail the batch).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flow_doubles import make_ctx
from test_inventory_drift_core import StockErp, StockStore, _level, _stock
from test_security_bad_inputs import HUGE, INJECTIONS, PARAMS

from erpsync.flows import inventory, inventory_drift
from erpsync.state import StateStore
from erpsync.state.schema import metadata

LOCATION_MAP = {"MAIN": "MAIN", "EAST": "EAST"}
SKUS = [f"S{i}" for i in range(1, 9)]


def corpus() -> list[tuple[str, Any, str | None]]:
    """(label, raw ERP stock record, the reason it must be quarantined with, or None if good)"""
    return [
        ("good", _stock("I1", "MAIN", 10), None),
        ("negative on hand (allowed, sells as 0)", _stock("I2", "MAIN", -5), None),
        ("malformed json", '{"item_code": "I3", "warehouse": ', "mapping_error"),
        ("null record", None, "mapping_error"),
        ("a list", ["I3", "MAIN", 4], "mapping_error"),
        ("missing item code", {k: v for k, v in _stock("I3", "MAIN", 1).items() if k != "item_code"},
         "mapping_error"),
        ("missing warehouse", {k: v for k, v in _stock("I3", "EAST", 1).items() if k != "warehouse"},
         "mapping_error"),
        ("quantity as text", _stock("I4", "MAIN", "12"), "mapping_error"),
        ("quantity as a float", _stock("I4", "EAST", 12.5), "mapping_error"),
        ("quantity as a bool", _stock("I5", "MAIN", True), "mapping_error"),
        ("negative reservation", _stock("I5", "EAST", 10, reserved=-8), "negative_stock"),
        ("negative damaged", _stock("I6", "MAIN", 10, damaged=-1), "negative_stock"),
        ("implausible quantity", _stock("I6", "EAST", 10**15), "implausible_quantity"),
        ("date that is no date", _stock("I7", "MAIN", 3, restock_date="soon"), "mapping_error"),
        ("backorderable as text", _stock("I7", "EAST", 3, backorderable="yes"), "mapping_error"),
        ("huge item code (valid shape: an unknown item)", _stock(HUGE, "MAIN", 1), "unknown_item"),
        ("injection as item code (an unknown item)", _stock(INJECTIONS[0], "MAIN", 1), "unknown_item"),
        ("injection as warehouse (not in the location map)", _stock("I8", INJECTIONS[1], 2), None),
        ("duplicate keys in one record (last wins)",
         json.loads('{"item_code": "I8", "item_code": "I8", "warehouse": "EAST", "on_hand": 6}'), None),
    ]


class CorpusErp(StockErp):
    """Serves the corpus exactly as given, for the export, the changes and the reads by item."""

    def list_stock(self, updated_since: Any = None) -> Iterator[Any]:
        return iter(list(self.stock))

    def stock_for_items(self, item_codes: Any) -> list[Any]:
        wanted = set(item_codes)
        return [r for r in self.stock if isinstance(r, dict) and r.get("item_code") in wanted]


@pytest.fixture
def world(tmp_path: Any) -> Any:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    erp = CorpusErp([])
    for i in range(1, 9):
        erp.items[f"S{i}"] = {"item_code": f"I{i}", "sku": f"S{i}", "active": True, "kit_components": []}
    sf = StockStore(SKUS, [_level(s, loc, 99) for s in SKUS for loc in ("MAIN", "EAST")])
    yield store, erp, sf
    store.close()


def _check(store: StateStore, flow: str, summary: Any, cases: list[tuple[str, Any, str | None]]) -> None:
    bad = [(label, raw, reason) for label, raw, reason in cases if reason]
    assert summary.quarantined == len(bad), summary.to_dict()
    letters = store.list_dead_letters(flow=flow, limit=10_000)
    assert len(letters) == len(bad)
    assert all(d.reason.strip() for d in letters)
    by_reason: dict[str, int] = {}
    for d in letters:
        key = d.reason.split(":", 1)[0]
        by_reason[key] = by_reason.get(key, 0) + 1
    want: dict[str, int] = {}
    for _, _, reason in bad:
        want[reason] = want.get(reason, 0) + 1  # type: ignore[index]
    assert by_reason == want
    names = set(sa.inspect(store.engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= names


def _available(sf: StockStore) -> dict[str, Any]:
    return {f"{lv['sku']}@{lv['location_id']}": lv["available"] for lv in sf.levels}


@pytest.mark.parametrize("first_run", [True, False], ids=["first run (export)", "cycle (changes)"])
def test_inventory_sync_quarantines_every_bad_stock_record(world: Any, first_run: bool) -> None:
    store, erp, sf = world
    cases = corpus()
    if not first_run:  # a first run over good data, then the corpus arrives as changes
        inventory.run(make_ctx(store, "inventory_sync", erp, sf, "r0", location_map=LOCATION_MAP, **PARAMS))
    erp.stock = [raw for _, raw, _ in cases]
    summary = inventory.run(make_ctx(store, "inventory_sync", erp, sf, "r1", location_map=LOCATION_MAP, **PARAMS))
    # a full read (r0 read nothing, so no cursor: r1 reads all) shows the ERP's warehouses: the
    # injected one is in no store location, said once
    gap = [("the injected warehouse feeds no store location", None, "warehouse_not_mapped")]
    _check(store, "inventory_sync", summary, cases + gap)
    levels = _available(sf)
    assert levels["S1@MAIN"] == 10 and levels["S2@MAIN"] == 0  # good records pushed; -5 sells as 0
    assert levels["S5@EAST"] == 99 and levels["S6@EAST"] == 99  # held: the store keeps its figure
    assert levels["S8@EAST"] == 6
    assert summary.reasons["unknown_item"] == 2 and summary.reasons["unmapped_location"] == 1


def test_fast_lane_quarantines_every_bad_stock_record(world: Any) -> None:
    store, erp, sf = world
    cases = corpus()
    erp.stock = [raw for _, raw, _ in cases]
    ctx0 = make_ctx(store, "inventory_fast_lane", erp, sf, "f0")  # what inventory_sync keeps fresh
    inventory.refresh_items(ctx0, inventory.InventoryState(store), inventory.RunSummary())
    inventory.refresh_store_skus(ctx0, inventory.InventoryState(store))
    hot = list(SKUS)
    summary = inventory.run_fast_lane(make_ctx(store, "inventory_fast_lane", erp, sf, "f1", location_map=LOCATION_MAP,
                                               fast_lane_skus=hot, **PARAMS))
    # the fast lane reads by item code: the records without a readable item code never reach it
    reached = [c for c in cases if isinstance(c[1], dict) and c[1].get("item_code") in {f"I{i}" for i in range(1, 9)}]
    _check(store, "inventory_fast_lane", summary, reached)
    assert _available(sf)["S1@MAIN"] == 10 and _available(sf)["S5@EAST"] == 99


def test_drift_check_dead_letters_every_unreadable_record_and_heals_only_good_ones(world: Any) -> None:
    store, erp, sf = world
    cases = corpus()
    erp.stock = [raw for _, raw, _ in cases]
    summary, _, res = inventory_drift.run_with_email(
        make_ctx(store, "inventory_drift_check", erp, sf, "d1", location_map=LOCATION_MAP, heal=True, **PARAMS,
                 min_compared_share=0))  # the corpus is mostly bad by design: no "did nothing useful" here
    letters = store.list_dead_letters(flow="inventory_drift_check", limit=10_000)
    assert all(d.reason.strip() for d in letters)
    unreadable = [c for c in cases if c[2] == "mapping_error"]
    assert res.unreadable == len(unreadable)
    assert len([d for d in letters if d.reason.startswith("mapping_error")]) == len(unreadable)  # one each
    assert [d.external_id for d in letters if d.external_id.startswith("?#")] and all(
        len(d.external_id) == 14 for d in letters if d.external_id.startswith("?"))  # filed by content
    levels = _available(sf)
    assert levels["S1@MAIN"] == 10  # healed from a good record
    assert levels["S5@EAST"] == 99 and levels["S6@EAST"] == 99  # never healed from a bad one
    assert {d.reason.split(":", 1)[0] for d in letters} == {"mapping_error", "negative_stock", "implausible_quantity",
                                                            "unknown_item"}
