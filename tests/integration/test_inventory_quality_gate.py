"""The quality gate of the inventory flows against the sandbox over HTTP: the changed ERP stock
records of a cycle pass the ``stock`` suite before anything is pushed.

* 3 bad records among 1,000 changed ones: the 3 are dead-lettered with the check and the value,
  their SKU-locations keep the store's figure, every other change reaches the store;
* half of a cycle bad: the run fails before any push and the cursor stays;
* negative on hand (an ERP that allows negative stock) is not bad: it sells as 0;
* the fast lane and the drift check's healer hold a SKU-location whose record was quarantined.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from erpsync.flows import inventory, inventory_drift
from erpsync.flows.base import FlowContext
from erpsync.quality import QualityGateFailed
from erpsync.rules.availability import figures_to_sell, over_allocated, take_shortfall
from erpsync.state import StateStore

pytestmark = pytest.mark.integration

FIGURES = ("on_hand", "allocated", "reserved", "damaged", "quarantined", "safety_stock")
SET = "POST /admin/api/inventory_levels/set"


@pytest.fixture
def sb(seeded: Any) -> Any:
    return seeded(seed=23, skus=400, locations=3, customers=10, orders=5)  # 1,200 stock records


def ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                               log=logging.getLogger(f"test.{flow}"))


def set_erp_stock(sb: Any, key: str, **fields: Any) -> None:
    code, wh = key.split("@")
    requests.post(f"{sb.erp_url}/_admin/stock", json={"item_code": code, "warehouse": wh, **fields},
                  timeout=5).raise_for_status()


def set_calls(sb: Any) -> int:
    return sum(sb.stats("storefront")["requests"].get(SET, {}).values())


def store_levels(sf: Any, codes: set[str]) -> dict[str, int]:
    skus = sorted({c.replace("ITEM-", "SKU-") for c in codes})
    out: dict[str, int] = {}
    for start in range(0, len(skus), 200):
        for r in sf.inventory_for(skus[start:start + 200]):
            out[f"{r['sku'].replace('SKU-', 'ITEM-')}@{r['location_id']}"] = r["available"]
    return out


def erp_available(erp: Any, codes: set[str], locations: tuple[str, ...] = ("MAIN", "EAST", "WEST")) -> dict[str, int]:
    """What each warehouse (= store location of the same name) may sell: its figures, less the
    shortfall of an over-allocated warehouse of the same item (issue 16, 9)."""
    out: dict[str, int] = {}
    ordered = sorted(codes)
    for start in range(0, len(ordered), 200):
        rows: dict[str, list[dict[str, Any]]] = {}
        for r in erp.stock_for_items(ordered[start:start + 200]):
            rows.setdefault(r["item_code"], []).append(r)
        for code, recs in rows.items():
            avail = {r["warehouse"]: figures_to_sell(*(r[f] for f in FIGURES)) for r in recs}
            short = {r["warehouse"]: over_allocated(*(r[f] for f in FIGURES[:5])) for r in recs}
            for wh, n in take_shortfall(avail, short, locations).items():
                out[f"{code}@{wh}"] = n
    return out


def churn(sb: Any, n: int, seed: int) -> list[str]:
    return sb.admin("erp", "POST", "churn", {"entity": "stock", "count": n, "seed": seed})["changed"]


def test_three_bad_of_a_thousand_changed_are_quarantined_and_the_rest_pushed(
        sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))  # first run: baseline
    changed = churn(sb, 1000, seed=5)
    assert len(set(changed)) == 1000
    in_store = [k for k in changed if int(k.split("@")[0][5:]) % 5]  # every 5th item is not published
    bad = {in_store[0]: {"reserved": -40}, in_store[1]: {"on_hand": 10**12}, in_store[2]: {"safety_stock": -7}}
    before = store_levels(storefront_adapter, {k.split("@")[0] for k in bad})
    for key, fields in bad.items():
        set_erp_stock(sb, key, **fields)

    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))

    assert s.quarantined == 3
    letters = {d.external_id: d.reason for d in store.list_dead_letters(flow="inventory_sync")}
    assert set(letters) == set(bad)
    keys = list(bad)
    assert letters[keys[0]].startswith("negative_stock: reserved=-40 (expect_column_values_to_be_between(reserved)")
    assert letters[keys[1]].startswith("implausible_quantity: on_hand=1000000000000")
    assert letters[keys[2]].startswith("negative_stock: safety_stock=-7")
    # the store kept its figure for the 3; every good change of a published item is in the store
    now = store_levels(storefront_adapter, {k.split("@")[0] for k in changed})
    for key in bad:
        assert now[key] == before[key]
    want = erp_available(erp_adapter, {k.split("@")[0] for k in in_store})
    good = [k for k in in_store if k not in bad]
    assert len(good) > 700
    assert [k for k in good if now[k] != want[k]] == []
    # the 3 count as quarantined, nothing else is missing: done + skipped + quarantined covers the read
    assert s.done + s.skipped + s.quarantined >= len(changed)


def test_fixed_record_is_read_again_and_pushed(sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    key = "ITEM-000001@MAIN"
    set_erp_stock(sb, key, on_hand=50, allocated=0, reserved=-10, damaged=0, quarantined=0, safety_stock=0)
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))
    assert s.quarantined == 1
    (letter,) = [d for d in store.list_dead_letters(flow="inventory_sync") if d.external_id == key]
    set_erp_stock(sb, key, reserved=10)  # the ERP user fixes the record
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r3"))
    assert s.quarantined == 0 and s.done >= 1
    assert store_levels(storefront_adapter, {"ITEM-000001"})[key] == 40
    # its dead letter is stale now: resolved by the run that read the fixed record (issue 20 item 8)
    assert store.get_dead_letter(letter.id).status == "resolved"
    assert [d for d in store.list_dead_letters(flow="inventory_sync") if d.external_id == key] == []


def test_a_record_still_bad_keeps_its_one_open_letter_and_a_fixed_one_is_resolved(
        sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    still, fixed = "ITEM-000002@MAIN", "ITEM-000003@EAST"
    for key in (still, fixed):
        set_erp_stock(sb, key, on_hand=50, allocated=0, reserved=-10, damaged=0, quarantined=0, safety_stock=0)
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))
    first = {d.external_id: d for d in store.list_dead_letters(flow="inventory_sync")}
    assert set(first) == {still, fixed}
    set_erp_stock(sb, fixed, reserved=0)
    set_erp_stock(sb, still, reserved=-11)  # changed, still bad: read again, filed again
    for run_id in ("r3", "r4"):
        inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, run_id))
    now = {d.external_id: d for d in store.list_dead_letters(flow="inventory_sync")}
    assert set(now) == {still}
    assert now[still].id == first[still].id and now[still].reason.startswith("negative_stock: reserved=-11")
    assert store.get_dead_letter(first[fixed].id).status == "resolved"
    assert store.list_dead_letters(flow="inventory_sync", status="resolved") == [store.get_dead_letter(first[fixed].id)]


def test_half_a_cycle_bad_fails_the_run_before_any_push(sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    cursor = store.get_cursor("inventory_sync", name="stock")
    keys = churn(sb, 40, seed=9)
    for key in keys[:20]:
        set_erp_stock(sb, key, reserved=-1)
    calls = set_calls(sb)
    with pytest.raises(QualityGateFailed, match=r"20 of 4\d bad"):
        inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))
    assert set_calls(sb) == calls  # nothing of the batch was pushed
    assert store.get_cursor("inventory_sync", name="stock") == cursor  # the next run reads them again
    assert len(store.list_dead_letters(flow="inventory_sync")) == 20


def test_negative_on_hand_sells_as_zero_and_is_not_quarantined(sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    key = "ITEM-000002@EAST"
    set_erp_stock(sb, key, on_hand=-6, allocated=0, reserved=0, damaged=0, quarantined=0, safety_stock=0)
    s = inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r2"))
    assert s.quarantined == 0
    assert store_levels(storefront_adapter, {"ITEM-000002"})[key] == 0


def test_fast_lane_holds_a_hot_sku_with_a_bad_record(sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    hot = ["SKU-000003", "SKU-000004"]
    zero = dict.fromkeys(FIGURES[1:], 0)
    set_erp_stock(sb, "ITEM-000003@MAIN", on_hand=70, **zero)
    set_erp_stock(sb, "ITEM-000004@MAIN", on_hand=80, **{**zero, "damaged": -30})
    before = store_levels(storefront_adapter, {"ITEM-000004"})["ITEM-000004@MAIN"]
    s = inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f1",
                                    fast_lane_skus=hot))
    assert s.quarantined == 1
    (dl,) = store.list_dead_letters(flow="inventory_fast_lane")
    assert dl.external_id == "ITEM-000004@MAIN" and dl.reason.startswith("negative_stock: damaged=-30")
    levels = store_levels(storefront_adapter, {"ITEM-000003", "ITEM-000004"})
    assert levels["ITEM-000003@MAIN"] == 70
    assert levels["ITEM-000004@MAIN"] == before  # not 110: a negative deduction is not stock


def test_drift_healer_does_not_push_a_figure_from_a_quarantined_record(
        sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1"))
    zero = dict.fromkeys(FIGURES[1:], 0)
    # two drifted SKU-locations: one with a good ERP record, one whose record is bad
    set_erp_stock(sb, "ITEM-000006@MAIN", on_hand=12, **zero)
    set_erp_stock(sb, "ITEM-000007@MAIN", on_hand=12, **{**zero, "reserved": -100})
    storefront_adapter.set_inventory([{"sku": "SKU-000006", "location_id": "MAIN", "available": 500},
                                      {"sku": "SKU-000007", "location_id": "MAIN", "available": 500}],
                                     idempotency_key="drift-gate-1")
    summary, _, res = inventory_drift.run_with_email(
        ctx("inventory_drift_check", store, erp_adapter, storefront_adapter, "d1", heal=True))
    assert {"SKU-000006@MAIN", "SKU-000007@MAIN"} <= {i["external_id"] for i in res.items}
    levels = store_levels(storefront_adapter, {"ITEM-000006", "ITEM-000007"})
    assert levels["ITEM-000006@MAIN"] == 12  # healed
    assert levels["ITEM-000007@MAIN"] == 500  # held: 112 from reserved=-100 would be an oversell
    assert summary.quarantined == 1
    (dl,) = store.list_dead_letters(flow="inventory_drift_check")
    assert dl.external_id == "ITEM-000007@MAIN" and dl.reason.startswith("negative_stock: reserved=-100")
