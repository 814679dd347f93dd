"""Channel reallocation from observed sales (``channel_demand: "observed"``), against the sandbox:
one pool split 70 / 30 between the web store and a marketplace; when the marketplace sells below
its share, the web store gets what it released, up to what the web store sold in the window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from erpsync.flows import inventory, inventory_drift
from erpsync.state.inventory import InventoryState
from tests.integration.test_inventory_flows import ctx, set_erp_stock, store_level

pytestmark = pytest.mark.integration

SEED = {"seed": 11, "skus": 100, "locations": 3, "customers": 10, "orders": 5}
ZERO = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
PARAMS = {"channel_shares": {"web": 70, "marketplace": 30}, "channel": "web", "channel_demand": "observed",
          "location_map": {"MAIN": "MAIN"}}


@pytest.fixture
def sb(seeded: Any) -> Any:
    return seeded(**SEED)


def sell(sf: Any, store: Any, sku: str, qty: int, source: str) -> str:
    """A paid store order, already written to the ERP by orders_sync (so not in flight)."""
    order = sf.http.request("POST", "/admin/api/orders", json={
        "email": "ann@example.com", "guest": True, "source_name": source,
        "line_items": [{"sku": sku, "quantity": qty}]}).body
    store.upsert_xref("erp", "sales_order", order["id"], f"SO-{order['id']}")
    return order["id"]


def cycle(sb: Any, store: Any, erp: Any, sf: Any, run_id: str, **params: Any) -> Any:
    set_erp_stock(sb, "ITEM-000011", on_hand=10, **ZERO)  # a change, so the cycle recomputes the SKU
    return inventory.run(ctx("inventory_sync", store, erp, sf, run_id, **{**PARAMS, **params}))


def test_a_slow_channel_releases_units_to_a_channel_selling_above_its_share(
        sb, store, erp_adapter, storefront_adapter) -> None:
    sku = "SKU-000011"
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r0", **PARAMS))
    cycle(sb, store, erp_adapter, storefront_adapter, "r1")
    assert store_level(storefront_adapter, sku)["available"] == 7  # no sales yet: the shares, 7 / 3

    web = [sell(storefront_adapter, store, sku, 3, "web") for _ in range(3)]  # web sold 9 > its 7
    cycle(sb, store, erp_adapter, storefront_adapter, "r2")
    state = InventoryState(store)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)
    assert state.channel_demand(since, [sku]) == {sku: {"web": 9}}
    # the marketplace sold 0 of its 3: keeps half (1), releases 2; the web store wants 2 more
    assert store_level(storefront_adapter, sku)["available"] == 9

    cycle(sb, store, erp_adapter, storefront_adapter, "r3")  # orders read again count once
    assert state.channel_demand(since, [sku]) == {sku: {"web": 9}}
    assert store_level(storefront_adapter, sku)["available"] == 9

    sell(storefront_adapter, store, sku, 3, "marketplace")  # the marketplace sells its share: no release
    cycle(sb, store, erp_adapter, storefront_adapter, "r4")
    assert state.channel_demand(since, [sku]) == {sku: {"web": 9, "marketplace": 3}}
    assert store_level(storefront_adapter, sku)["available"] == 7

    # the drift check computes the same allocation: no false mismatch
    _, _, res = inventory_drift.run_with_email(
        ctx("inventory_drift_check", store, erp_adapter, storefront_adapter, "d1", **PARAMS))
    assert not [i for i in res.items if i["external_id"] == f"{sku}@MAIN"]

    for oid in web:  # cancelled web orders are no demand
        storefront_adapter.http.request("POST", f"/admin/api/orders/{oid}/cancel")
    cycle(sb, store, erp_adapter, storefront_adapter, "r5")
    assert state.channel_demand(since, [sku]) == {sku: {"marketplace": 3}}


def test_a_static_or_bad_demand_param(sb, store, erp_adapter, storefront_adapter) -> None:
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r0", **PARAMS))
    s = cycle(sb, store, erp_adapter, storefront_adapter, "r1", channel_demand={"web": 10, "marketplace": 0})
    assert s.failed == 0 and store_level(storefront_adapter, "SKU-000011")["available"] == 9
    with pytest.raises(Exception, match="channel_demand"):
        cycle(sb, store, erp_adapter, storefront_adapter, "r2", channel_demand="lots")
