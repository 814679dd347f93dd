"""inventory_drift_check over in-memory doubles of the two systems and a real state store: every
kind of difference, unreadable records dead-lettered, the lean availability path equal to the
engine's full one, the healer's guard, and the records of adapters without a columnar export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flow_doubles import FakeErp, FakeStorefront, make_ctx

from erpsync.connectors.base import Raw, Rows, row_blocks
from erpsync.errors import MappingError
from erpsync.flows import inventory_drift
from erpsync.flows.base import RunSummary
from erpsync.flows.inventory import Engine, Settings, refresh_items
from erpsync.mappings.stock import stock_available_rows, stock_figures
from erpsync.state import StateStore
from erpsync.state.inventory import InventoryState

#: SPARE feeds MAIN too, OLD is excluded on purpose, NORTH is not in the map (unmapped)
LOCATION_MAP = {"MAIN": "MAIN", "SPARE": "MAIN", "EAST": "EAST", "OLD": None}
ZERO = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}


def _stock(code: str, wh: str, on_hand: Any, **extra: Any) -> Raw:
    return {"item_code": code, "warehouse": wh, "on_hand": on_hand, **ZERO, "restock_date": None,
            "modified_at": "2026-10-01T00:00:00Z", **extra}


class StockErp(FakeErp):
    """The ERP double with stock records (listed as dicts: no columnar export)."""

    def __init__(self, stock: list[Raw]) -> None:
        super().__init__()
        self.stock = stock

    def list_stock(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return iter([dict(r) for r in self.stock])


class StockStore(FakeStorefront):
    """The storefront double with products and inventory levels; ``during_export`` runs while the
    drift check reads the levels (a concurrent sync's push)."""

    def __init__(self, skus: list[str], levels: list[Raw]) -> None:
        super().__init__()
        self.skus, self.levels = skus, levels
        self.writes: list[Raw] = []
        self.during_export: Any = None

    def list_products(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return iter([{"id": f"P-{s}", "status": "active", "updated_at": "2026-10-01T00:00:00Z",
                      "variants": [{"sku": s}]} for s in self.skus])

    def list_inventory(self) -> Iterator[Raw]:
        if self.during_export is not None:
            self.during_export()
        return iter([dict(r) for r in self.levels])

    def set_inventory(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        for it in items:
            self.writes.append(it)
            self.levels = [lv for lv in self.levels if (lv.get("sku"), lv.get("location_id"))
                           != (it["sku"], it["location_id"])] + [dict(it)]
        return {"updated": len(items)}


def _level(sku: str, loc: str, available: Any) -> Raw:
    return {"sku": sku, "location_id": loc, "available": available, "updated_at": "2026-10-01T00:00:00Z"}


@pytest.fixture
def world(tmp_path: Any) -> Any:
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    erp = StockErp([
        _stock("I1", "MAIN", 10), _stock("I1", "SPARE", 5), _stock("I1", "EAST", 3),  # S1: MAIN 15, EAST 3
        _stock("I1", "NORTH", 8),  # a warehouse the map does not know
        _stock("I2", "MAIN", 7),  # inactive item: 0
        _stock("I4", "MAIN", 4), _stock("I4", "OLD", 50),  # OLD excluded on purpose
        {"item_code": "I4", "warehouse": "EAST", "on_hand": 2},  # another shape: missing figures are 0
        _stock("I5", "MAIN", "12.5"),  # malformed: dead-lettered
        _stock("I9", "MAIN", 1),  # an item the ERP item list does not have
    ])
    for code, sku, active, kit in (("I1", "S1", True, None), ("I2", "S2", False, None),
                                   ("I3", "S3", True, [{"item_code": "I1", "qty": 2}, {"item_code": "I4", "qty": 1}]),
                                   ("I4", "S4", True, None), ("I5", "S5", True, None)):
        erp.items[sku] = {"item_code": code, "sku": sku, "active": active, "kit_components": kit or []}
    sf = StockStore(["S1", "S2", "S3", "S4"], [
        _level("S1", "MAIN", 15), _level("S1", "EAST", 9),  # quantity_mismatch at EAST
        _level("S2", "MAIN", 0),
        _level("S2", "EAST", 5),  # no ERP record feeds EAST: 0 to sell there, the store offers 5
        _level("S3", "MAIN", 4), _level("S3", "EAST", 7),  # the kit: MAIN min(15 // 2, 4) = 4; EAST min(1, 2) = 1
        _level("S4", "EAST", 2), _level("S4", "MAIN", "3"),  # unreadable, so S4@MAIN is missing in the store
        _level("S77", "MAIN", 1),  # a SKU the ERP does not know
        _level("S1", "POPUP", 2),  # a store location no warehouse feeds
    ])
    yield store, erp, sf
    store.close()


def test_every_kind_is_classified_and_unreadable_records_are_dead_lettered(world: Any) -> None:
    store, erp, sf = world
    ctx = make_ctx(store, "inventory_drift_check", erp, sf, "d1", location_map=LOCATION_MAP)
    summary, (subject, body), res = inventory_drift.run_with_email(ctx)
    assert dict(res.counts) == {"quantity_mismatch": 2, "kit_mismatch": 1, "missing_in_store": 1,
                                "missing_in_erp": 1, "unmapped_location": 2}
    items = {(i["kind"], i["external_id"]): i for i in res.items}
    assert items[("quantity_mismatch", "S1@EAST")]["erp"] == 3 and items[("quantity_mismatch", "S1@EAST")]["store"] == 9
    assert items[("kit_mismatch", "S3@EAST")]["erp"] == 1
    no_record = items[("quantity_mismatch", "S2@EAST")]
    assert (no_record["erp"], no_record["store"], no_record["no_erp_record"]) == (0, 5, True)
    assert items[("missing_in_store", "S4@MAIN")]["erp"] == 4
    assert ("missing_in_erp", "S77@MAIN") in items
    assert items[("unmapped_location", "S1@POPUP")]["side"] == "store"
    assert items[("unmapped_location", "I1@NORTH")]["side"] == "erp"
    assert res.compared == 7  # S1, S3, S4 at MAIN and EAST; S2 (no EAST stock) at MAIN
    assert res.unreadable == 2 and res.summary()["unreadable"] == 2 and "Unreadable records" in body
    letters = store.list_dead_letters(flow="inventory_drift_check")
    assert sorted((d.entity, d.external_id) for d in letters) == [("inventory_level", "S4@MAIN"), ("stock", "I5@MAIN"),
                                                                  ("stock", "I9")]
    assert all(d.reason.startswith("unknown_item:" if d.external_id == "I9" else "mapping_error:") for d in letters)
    assert summary.reasons["unknown_item"] == 1  # I9 has stock but no item: a dead letter (issue 17 item 7)
    report = store.get_drift_report(res.report_id)
    assert report is not None and report.summary["by_kind"] == dict(res.counts)
    assert sf.writes == []  # no heal unless asked


def test_heal_pushes_the_fresh_value_but_never_over_a_newer_write(world: Any) -> None:
    store, erp, sf = world
    ctx = make_ctx(store, "inventory_drift_check", erp, sf, "h1", location_map=LOCATION_MAP, heal=True)
    # a sync pushes S1@EAST while the check reads the store: the healer must leave it
    sf.during_export = lambda: InventoryState(store).record_pushed(
        [{"sku": "S1", "location": "EAST", "available": 3}], at=store.db.now() + dt.timedelta(seconds=1))
    _, _, res = inventory_drift.run_with_email(ctx)
    assert res.heal_skipped_newer == 1
    assert sorted((w["sku"], w["location_id"], w["available"]) for w in sf.writes) == [
        ("S2", "EAST", 0), ("S3", "EAST", 1), ("S4", "MAIN", 4)]  # S2@EAST: no ERP record there, 0 to sell
    assert res.healed == 3
    sf.during_export = None
    _, _, again = inventory_drift.run_with_email(make_ctx(store, "inventory_drift_check", erp, sf, "h2",
                                                          location_map=LOCATION_MAP))
    assert again.counts["kit_mismatch"] == 0 and again.counts["missing_in_store"] == 0
    assert again.counts["quantity_mismatch"] == 1  # S1@EAST: left to the newer write


@pytest.mark.parametrize("shares", [None, {"web": 70, "marketplace": 30}])
def test_lean_availability_equals_the_engines_full_computation(world: Any, shares: Any) -> None:
    store, erp, sf = world
    params: dict[str, Any] = {"location_map": LOCATION_MAP}
    if shares:
        params["channel_shares"] = shares
    ctx = make_ctx(store, "inventory_drift_check", erp, sf, "c1", **params)
    inventory_drift.refresh_items(ctx, InventoryState(store), RunSummary(flow=ctx.flow, run_id=ctx.run_id))
    readable = []
    for r in erp.stock:
        try:
            readable.append(stock_figures(r))
        except MappingError:
            pass
    full = Engine(ctx, Settings.from_ctx(ctx), RunSummary(flow=ctx.flow, run_id=ctx.run_id))
    want = {k: lv.available for k, lv in full.compute(iter(readable)).items()}
    lean = Engine(ctx, Settings.from_ctx(ctx), RunSummary(flow=ctx.flow, run_id=ctx.run_id))
    triples = [t for b in row_blocks(erp.stock) for t in stock_available_rows(b.fields, b.rows, lambda r, e: None)]
    got = lean.available_by_location(lean.aggregate_available(triples), lean.state.item_skus())
    assert {(sku, loc): n for loc, by_sku in got.items() for sku, n in by_sku.items()} == want
    assert lean.stats.reports == full.stats.reports  # unmapped_location 1, unknown_item 1
    assert lean.stats.samples == full.stats.samples


def test_row_blocks_group_records_of_one_shape_and_keep_every_key() -> None:
    records = [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"b": 5, "a": 6}, {"a": 7}, {"a": 8}, {"a": 9}]
    blocks = list(row_blocks(records, size=2))
    assert [(b.fields, b.rows) for b in blocks] == [
        (("a", "b"), [[1, 2], [3, 4]]), (("b", "a"), [[5, 6]]), (("a",), [[7], [8]]), (("a",), [[9]])]
    assert [r for b in blocks for r in b.records()] == records
    with pytest.raises(ValueError):
        list(Rows(("a", "b"), [[1]]).records())


def test_a_warehouse_read_twice_in_a_cycle_counts_once_the_newest_copy(world: Any) -> None:
    """A stock record changed while the cycle paged through the changes arrives twice: summing the
    two copies would offer the warehouse's units twice (an oversell); the newest copy counts."""
    store, erp, sf = world
    ctx = make_ctx(store, "inventory_sync", erp, sf, "r1", location_map=LOCATION_MAP)
    engine = Engine(ctx, Settings.from_ctx(ctx), RunSummary(flow="inventory_sync"))
    refresh_items(ctx, engine.state, engine.summary)
    old = _stock("I4", "MAIN", 9, modified_at="2026-10-01T00:00:00Z")
    new = _stock("I4", "MAIN", 2, modified_at="2026-10-01T00:05:00Z")
    figs = engine.read_stock([new, old])  # in any order
    assert [(f.item_code, f.warehouse, f.available) for f in figs] == [("I4", "MAIN", 2)]
    levels = engine.compute(figs, {"I4"})
    assert levels[("S4", "MAIN")].available == 2  # not 11
    assert engine.stats.reports["superseded_copy"] == 1


def test_a_quarantined_record_holds_only_the_location_its_warehouse_feeds(world: Any) -> None:
    store, erp, sf = world
    ctx = make_ctx(store, "inventory_sync", erp, sf, "r1", location_map=LOCATION_MAP)
    summary = RunSummary(flow="inventory_sync")
    engine = Engine(ctx, Settings.from_ctx(ctx), summary)
    refresh_items(ctx, engine.state, summary)
    figs = engine.read_stock([_stock("I1", "MAIN", 10), _stock("I1", "SPARE", 5, reserved=-20),
                              _stock("I1", "EAST", 3), _stock("I3x", "MAIN", 1)])
    assert summary.quarantined == 1 and engine.held == {("I1", "MAIN")}
    levels = engine.compute(figs, {"I1", "I3"})
    assert ("S1", "MAIN") not in levels  # SPARE feeds MAIN: 10 + 25 would be an oversell
    assert levels[("S1", "EAST")].available == 3
    assert ("S3", "MAIN") not in levels  # the kit at MAIN needs I1 at MAIN: held too
    assert levels[("S3", "EAST")].available == 0  # EAST: I4 has no record here, so no kit
    (dl,) = store.list_dead_letters(flow="inventory_sync")
    assert (dl.entity, dl.external_id) == ("stock", "I1@SPARE") and dl.reason.startswith("negative_stock: reserved=-20")
