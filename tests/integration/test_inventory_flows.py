"""inventory_sync, the fast lane and inventory_drift_check against the sandbox over HTTP.

Small seeds (hundreds of SKU-locations), so the module runs in seconds; the million-record runs
are benchmarks (``python -m benchmarks inventory``, ``drift``, ``flash_sale``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
import requests

from erpsync.flows import inventory, inventory_drift
from erpsync.flows.base import FlowContext
from erpsync.rules.availability import figures_to_sell
from erpsync.state import StateStore
from erpsync.state.inventory import InventoryState
from tests.fixtures.sandbox import TEST_SEED

pytestmark = pytest.mark.integration

SEED = {"seed": 11, "skus": 100, "locations": 3, "customers": 10, "orders": 5}
SET = "POST /admin/api/inventory_levels/set"


@pytest.fixture
def sb(sandbox: Any) -> Any:
    sandbox.reset(**SEED)
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()
    sandbox.reset(**TEST_SEED)


@pytest.fixture
def store() -> StateStore:
    s = StateStore.from_url()
    s.migrate()
    yield s
    s.close()


def ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                               log=logging.getLogger(f"test.{flow}"))


def set_calls(sb: Any) -> int:
    return sum(sb.stats("storefront")["requests"].get(SET, {}).values())


def store_level(sf: Any, sku: str, loc: str = "MAIN") -> dict:
    return next(r for r in sf.inventory_for([sku]) if r["location_id"] == loc)


def erp_stock(erp: Any, code: str, wh: str = "MAIN") -> dict:
    return next(r for r in erp.stock_for_items([code]) if r["warehouse"] == wh)


def set_erp_stock(sb: Any, code: str, wh: str = "MAIN", **fields: Any) -> None:
    requests.post(f"{sb.erp_url}/_admin/stock", json={"item_code": code, "warehouse": wh, **fields},
                  timeout=5).raise_for_status()


def test_first_cycle_pushes_only_differences_then_nothing(sb, store, erp_adapter, storefront_adapter) -> None:
    s1 = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    assert s1.done > 0 and s1.quarantined == 0
    assert set_calls(sb) == math.ceil(s1.done / 250)
    rec = erp_stock(erp_adapter, "ITEM-000001")
    want = figures_to_sell(*(rec[k] for k in ("on_hand", "allocated", "reserved", "damaged", "quarantined",
                                               "safety_stock")))
    assert store_level(storefront_adapter, "SKU-000001")["available"] == want

    s2 = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))
    assert s2.done == 0 and set_calls(sb) == math.ceil(s1.done / 250)


def test_changed_stock_is_pushed_in_minimal_batches(sb, store, erp_adapter, storefront_adapter) -> None:
    # one warehouse feeds the store: with several, a change of one re-reads and recomputes them all
    # (an over-allocated warehouse takes from the others), which is what the next tests cover
    one = {"location_map": {"MAIN": "MAIN", "EAST": None, "WEST": None}}
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1", **one))
    before = set_calls(sb)
    for i in range(1, 31):  # 30 published SKUs (every 5th item is not in the store)
        if i % 5:
            set_erp_stock(sb, f"ITEM-{i:06d}", on_hand=500 + i, allocated=0, reserved=0, damaged=0,
                          quarantined=0, safety_stock=0)
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2", batch_limit=7, **one))
    assert s.done == 24
    assert set_calls(sb) - before == math.ceil(24 / 7)
    assert store_level(storefront_adapter, "SKU-000003")["available"] == 503


def test_sku_not_in_store_is_reported_not_pushed(sb, store, erp_adapter, storefront_adapter) -> None:
    before = store_level(storefront_adapter, "SKU-000005")["available"]  # item 4: not published
    set_erp_stock(sb, "ITEM-000005", on_hand=999)
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    assert s.reasons["not_in_store"] > 0
    assert store_level(storefront_adapter, "SKU-000005")["available"] == before


def test_unmapped_warehouse_is_reported(sb, store, erp_adapter, storefront_adapter) -> None:
    west_before = store_level(storefront_adapter, "SKU-000001", "WEST")["available"]
    set_erp_stock(sb, "ITEM-000001", "WEST", on_hand=777)
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1",
                          location_map={"MAIN": "MAIN", "EAST": "EAST", "GHOST": "WEST"}))
    assert s.reasons["unmapped_location"] == 100
    assert store_level(storefront_adapter, "SKU-000001", "WEST")["available"] == west_before
    # issue 16, 1: each gap of the map said once in the run, one dead letter each, not per record
    assert (s.reasons["warehouse_not_mapped"], s.reasons["location_without_source"]) == (1, 1), s.render()
    letters = {d.external_id: d.reason for d in store.list_dead_letters(flow="inventory_sync")}
    assert set(letters) == {"warehouse:WEST", "warehouse:GHOST"}
    assert "store location 'WEST' is fed by ERP warehouse 'GHOST', which the ERP does not have" in letters[
        "warehouse:GHOST"]
    # the map put right: the next full read closes both
    store.set_cursor("inventory_sync", "", name="stock")  # a full read again (the sandbox cannot list them)
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2",
                      location_map={"MAIN": "MAIN", "EAST": "EAST", "WEST": "WEST"}))
    assert store.list_dead_letters(flow="inventory_sync") == []


def test_warehouses_aggregate_into_one_location(sb, store, erp_adapter, storefront_adapter) -> None:
    zero = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    set_erp_stock(sb, "ITEM-000002", "MAIN", on_hand=10, **zero)
    set_erp_stock(sb, "ITEM-000002", "EAST", on_hand=-4, **zero)
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1",
                      location_map={"MAIN": "MAIN", "EAST": "MAIN", "WEST": None}))
    # EAST sold 4 it did not have: they come off MAIN's 10 (issue 16, 9)
    assert store_level(storefront_adapter, "SKU-000002")["available"] == 6
    set_erp_stock(sb, "ITEM-000002", "EAST", on_hand=5, **zero)  # only EAST changes: MAIN is re-read
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2",
                      location_map={"MAIN": "MAIN", "EAST": "MAIN", "WEST": None}))
    assert store_level(storefront_adapter, "SKU-000002")["available"] == 15


def test_split_stock_never_sells_more_than_the_item_has(sb, store, erp_adapter, storefront_adapter) -> None:
    """Issue 16, 9: 500 units split over two warehouses (300 + 200), 420 booked on the first one.
    Each warehouse clamped at 0 on its own showed EAST's full 200 while the item had 80 left:
    the 120 MAIN is short come off EAST, and when MAIN alone changes back, EAST follows."""
    zero = {"reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    lmap = {"MAIN": "MAIN", "EAST": "EAST", "WEST": None}
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r0", location_map=lmap))
    set_erp_stock(sb, "ITEM-000002", "MAIN", on_hand=300, allocated=420, **zero)
    set_erp_stock(sb, "ITEM-000002", "EAST", on_hand=200, allocated=0, **zero)
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1", location_map=lmap))
    got = {loc: store_level(storefront_adapter, "SKU-000002", loc)["available"] for loc in ("MAIN", "EAST")}
    assert got == {"MAIN": 0, "EAST": 80}, s.render()
    assert sum(got.values()) == 300 + 200 - 420
    assert s.reasons["over_allocated_units"] == 120
    # only MAIN changes (the sales are cancelled): EAST is read again and gets its 200 back
    set_erp_stock(sb, "ITEM-000002", "MAIN", allocated=0)
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2", location_map=lmap))
    assert {loc: store_level(storefront_adapter, "SKU-000002", loc)["available"] for loc in ("MAIN", "EAST")} == {
        "MAIN": 300, "EAST": 200}
    # the drift check computes the same figures: nothing to report on that item
    set_erp_stock(sb, "ITEM-000002", "MAIN", allocated=420)
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r3", location_map=lmap))
    assert store_level(storefront_adapter, "SKU-000002", "EAST")["available"] == 80
    _, _, drift = inventory_drift.run_with_email(ctx("inventory_drift_check", store, erp_adapter,
                                                     storefront_adapter, "d1", location_map=lmap))
    assert not [i for i in drift.items if i["external_id"] in ("SKU-000002@MAIN", "SKU-000002@EAST")], drift.items


def test_kit_follows_its_components(sb, store, erp_adapter, storefront_adapter) -> None:
    kit = erp_adapter.find_item_by_sku("SKU-000050")  # item 49: a kit, not published yet
    comps = {c["item_code"]: c["qty"] for c in kit["kit_components"]}
    storefront_adapter.upsert_product({"title": "Kit", "variants": [{"sku": "SKU-000050", "price": "9.99"}]},
                                      idempotency_key="kit-50")
    zero = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    for code in comps:
        set_erp_stock(sb, code, on_hand=12, **zero)
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    assert store_level(storefront_adapter, "SKU-000050")["available"] == min(12 // q for q in comps.values())
    first, qty = next(iter(comps.items()))
    set_erp_stock(sb, first, on_hand=qty, **zero)  # one component drops: the kit follows
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))
    assert store_level(storefront_adapter, "SKU-000050")["available"] == 1


def test_channel_share_and_restock_date_pass_through(sb, store, erp_adapter, storefront_adapter) -> None:
    zero = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    set_erp_stock(sb, "ITEM-000003", on_hand=100, **zero)
    set_erp_stock(sb, "ITEM-000004", on_hand=0, restock_date="2026-12-24", **zero)
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1",
                      channel_shares={"web": 70, "marketplace": 20, "b2b": 10}, channel="web"))
    assert store_level(storefront_adapter, "SKU-000003")["available"] == 70
    assert store_level(storefront_adapter, "SKU-000004")["restock_date"] == "2026-12-24"


def test_rejected_items_are_dead_lettered_and_the_rest_pushed(sb, store, erp_adapter, storefront_adapter) -> None:
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1",
                          location_map={"MAIN": "MAIN", "EAST": "EAST", "WEST": "NOWHERE"}))
    assert s.quarantined > 0 and s.done > 0
    assert all("unknown location" in r for _, _, r in s.dead_letters)
    assert store.list_dead_letters(flow="inventory_sync")


def test_fast_lane_pushes_hot_skus_and_the_cycle_leaves_them(sb, store, erp_adapter, storefront_adapter) -> None:
    zero = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1", fast_lane_skus=["SKU-000007"]))
    set_erp_stock(sb, "ITEM-000007", on_hand=42, **zero)
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2", fast_lane_skus=["SKU-000007"]))
    # left to the fast lane at each of its 3 locations (all read: one warehouse changing can move them all)
    assert s.reasons["fast_lane"] == 3 and store_level(storefront_adapter, "SKU-000007")["available"] != 42
    f = inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f1",
                                    fast_lane_skus=["SKU-000007"], budget_seconds=0))
    assert f.done >= 1 and store_level(storefront_adapter, "SKU-000007")["available"] == 42
    again = inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f2",
                                        fast_lane_skus=["SKU-000007"], budget_seconds=0))
    assert again.done == 0


def test_inventory_exports_equal_the_per_record_reads_page_by_page(sb, erp_adapter, storefront_adapter) -> None:
    set_erp_stock(sb, "ITEM-000002", "EAST", on_hand=77)  # changed records come from the overlay
    set_erp_stock(sb, "ITEM-000100", "WEST", on_hand=5)  # the very last record
    storefront_adapter.set_inventory([{"sku": "SKU-000001", "location_id": "MAIN", "available": 9}],
                                     idempotency_key="export-1")
    codes = [f"ITEM-{i:06d}" for i in range(1, 101)]
    skus = [f"SKU-{i:06d}" for i in range(1, 101)]
    erp_blocks = list(erp_adapter.export_stock_rows())
    sf_blocks = list(storefront_adapter.export_inventory_rows())
    assert len(erp_blocks) == len(sf_blocks) == 1  # 300 rows: one page each
    erp_rows = [r for b in erp_blocks for r in b.records()]
    assert erp_rows == erp_adapter.stock_for_items(codes) and len(erp_rows) == 300
    assert {(r["item_code"], r["warehouse"]): r["on_hand"] for r in erp_rows}[("ITEM-000002", "EAST")] == 77
    fields = sf_blocks[0].fields
    assert [list(r.values()) for r in sf_blocks[0].records()] == [
        [r.get(f) for f in fields] for r in storefront_adapter.inventory_for(skus)]
    for base, path, first_block in ((sb.erp_url, "/api/stock/export", erp_blocks[0]),
                                    (sb.storefront_url, "/admin/api/inventory_levels/export", sf_blocks[0])):
        headers = ({"X-Session-Id": erp_adapter._session_id} if base == sb.erp_url
                   else {"Authorization": f"Bearer {sb.token}"})
        rows, after = [], -1
        while after is not None:  # pages of 7: overlay records at page edges, the last page short
            body = requests.get(f"{base}{path}", params={"after": after, "limit": 7}, headers=headers, timeout=5).json()
            assert body["fields"] == list(first_block.fields) and len(body["rows"]) <= 7
            rows += body["rows"]
            after = body["next_after"]
        assert rows == [list(r) for r in first_block.rows]


def test_drift_check_classifies_and_heals(sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    storefront_adapter.set_inventory([{"sku": "SKU-000001", "location_id": "MAIN", "available": 9999}],
                                     idempotency_key="drift-1")
    kit_sku = "SKU-000050"
    storefront_adapter.upsert_product({"title": "Kit", "variants": [{"sku": kit_sku, "price": "9.99"}]},
                                      idempotency_key="kit-50")
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))  # the new kit's stock
    storefront_adapter.set_inventory([{"sku": kit_sku, "location_id": "EAST", "available": 555}],
                                     idempotency_key="drift-2")
    summary, (subject, body), res = inventory_drift.run_with_email(
        ctx("inventory_drift_check", store, erp_adapter, storefront_adapter, "d1"))
    assert res.counts["quantity_mismatch"] == 1
    assert res.counts["kit_mismatch"] == 1
    assert {i["external_id"] for i in res.items} >= {"SKU-000001@MAIN", f"{kit_sku}@EAST"}
    assert "differences" in subject and "quantity_mismatch" in body
    report = store.get_drift_report(res.report_id)
    assert report is not None and report.summary["by_kind"]["quantity_mismatch"] == 1
    assert store_level(storefront_adapter, "SKU-000001")["available"] == 9999  # not healed unless asked

    _, _, healed = inventory_drift.run_with_email(
        ctx("inventory_drift_check", store, erp_adapter, storefront_adapter, "d2", heal=True))
    assert healed.healed == 2
    _, _, clean = inventory_drift.run_with_email(
        ctx("inventory_drift_check", store, erp_adapter, storefront_adapter, "d3"))
    assert sum(clean.counts.values()) == 0


def test_healer_never_overwrites_a_newer_write(sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    storefront_adapter.set_inventory([{"sku": "SKU-000001", "location_id": "MAIN", "available": 9999}],
                                     idempotency_key="drift-3")
    state = InventoryState(store)
    real_pushed_since = state.pushed_since

    def newer_push(keys, since):  # a sync pushed SKU-000001@MAIN while the check ran
        return real_pushed_since(keys, since) | {("SKU-000001", "MAIN")}

    from erpsync.state import inventory as inv_state

    original = inv_state.InventoryState.pushed_since
    inv_state.InventoryState.pushed_since = lambda self, keys, since: newer_push(keys, since)  # type: ignore[method-assign]
    try:
        _, _, res = inventory_drift.run_with_email(
            ctx("inventory_drift_check", store, erp_adapter, storefront_adapter, "d1", heal=True))
    finally:
        inv_state.InventoryState.pushed_since = original  # type: ignore[method-assign]
    assert res.heal_skipped_newer == 1 and res.healed == 0
    assert store_level(storefront_adapter, "SKU-000001")["available"] == 9999


def test_store_orders_not_yet_in_the_erp_are_not_handed_out_again(sb, store, erp_adapter, storefront_adapter) -> None:
    zero = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    set_erp_stock(sb, "ITEM-000008", on_hand=20, **zero)
    params = {"fast_lane_skus": ["SKU-000008"], "budget_seconds": 0}
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1", **params))  # items, store SKUs
    inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f1", **params))
    assert store_level(storefront_adapter, "SKU-000008")["available"] == 20
    order = storefront_adapter.http.request("POST", "/admin/api/orders", json={
        "email": "ann@example.com", "guest": True, "line_items": [{"sku": "SKU-000008", "quantity": 3}]}).body
    set_erp_stock(sb, "ITEM-000008", on_hand=25, **zero)  # a receipt; the order is not in the ERP yet
    f = inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f2", **params))
    assert f.reasons["in_flight_units"] == 3
    assert store_level(storefront_adapter, "SKU-000008")["available"] == 22
    store.upsert_xref("erp", "sales_order", order["id"], "SO-1")  # orders_sync wrote it (and allocated)
    set_erp_stock(sb, "ITEM-000008", allocated=3)
    inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f3", **params))
    assert store_level(storefront_adapter, "SKU-000008")["available"] == 22


def test_checkout_takes_stock_when_the_store_tracks_it(sb, storefront_adapter) -> None:
    sb.admin("storefront", "POST", "inventory_policy", {"policy": "deny"})
    storefront_adapter.set_inventory([{"sku": "SKU-000009", "location_id": loc, "available": n}
                                      for loc, n in (("MAIN", 1), ("EAST", 1), ("WEST", 0))], idempotency_key="t1")
    body = {"email": "bo@example.com", "guest": True, "line_items": [{"sku": "SKU-000009", "quantity": 2}]}
    storefront_adapter.http.request("POST", "/admin/api/orders", json=body)
    assert {r["location_id"]: r["available"] for r in storefront_adapter.inventory_for(["SKU-000009"])} == {
        "MAIN": 0, "EAST": 0, "WEST": 0}
    with pytest.raises(Exception, match="insufficient_stock"):
        storefront_adapter.http.request("POST", "/admin/api/orders", json=body)


def test_drift_summary_goes_through_the_notifier(sb, store, erp_adapter, storefront_adapter) -> None:
    sent: list[tuple[str, str]] = []

    class Notifier:
        def send(self, subject: str, body: str) -> None:
            sent.append((subject, body))

    c = ctx("inventory_drift_check", store, erp_adapter, storefront_adapter, "d1")
    c.notifier = Notifier()
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    inventory_drift.run(c)
    assert len(sent) == 1 and sent[0][0].startswith("[erpsync] inventory_drift_check")
