"""Issue 16 items 2 and 9: every sales order names the warehouse it is booked on, from
configuration (per store location, per channel, a default on the ERP Connection), through
orders_sync against the sandbox, whose ERP (like Tryton) refuses an order naming none when it has
several warehouses and no default.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from erpsync.connectors.registry import build_erp
from erpsync.flows import orders
from erpsync.flows.base import FlowContext
from erpsync.flows.replay import replay
from erpsync.state import StateStore

pytestmark = pytest.mark.integration


def erp_with(sb: Any, **extra: Any) -> Any:
    return build_erp("sandbox", sb.erp_url, sb.erp_user, sb.erp_password, {"timeout": 2.0, **extra})


def ctx(store: StateStore, erp: Any, sf: Any, run_id: str) -> FlowContext:
    return FlowContext.for_run(flow="orders_sync", run_id=run_id, store=store, erp=erp, storefront=sf,
                               params={}, log=logging.getLogger("test.orders_sync"))


def checkout(sb: Any, sku: str, **extra: Any) -> dict[str, Any]:
    resp = requests.post(f"{sb.storefront_url}/admin/api/orders", headers={"Authorization": f"Bearer {sb.token}"},
                         json={"email": "wh@example.com", "line_items": [{"sku": sku, "quantity": 2}], **extra},
                         timeout=5)
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_each_order_is_booked_on_its_configured_warehouse(
        clean_sandbox: Any, store: StateStore, storefront_adapter: Any) -> None:
    sb = clean_sandbox
    sb.settings("erp", default_warehouse=None)  # several warehouses and no default, as Tryton
    # the store holds SKU-000003 only at EAST: a checkout of it is fulfilled from EAST
    storefront_adapter.set_inventory([{"sku": "SKU-000003", "location_id": loc, "available": 5 if loc == "EAST" else 0}
                                      for loc in ("MAIN", "EAST", "WEST")], idempotency_key="wh-test")
    east = checkout(sb, "SKU-000003")
    assert east["location_id"] == "EAST"
    pos = checkout(sb, "SKU-000004", source_name="pos", inventory_behaviour="bypass")
    erp = erp_with(sb, sale_warehouse="MAIN", sale_warehouses_by_location={"EAST": "EAST"},
                   sale_warehouses_by_channel={"pos": "WEST"})
    summary = orders.run(ctx(store, erp, storefront_adapter, "wh-1"))
    assert summary.done > 2 and summary.failed == 0, summary.render()
    assert erp.find_sales_order(east["id"])["warehouse"] == "EAST"  # its store location's warehouse
    assert erp.find_sales_order(pos["id"])["warehouse"] == "WEST"  # its channel's
    others = [o for o in erp.list_sales_orders() if o["external_ref"] not in (east["id"], pos["id"])]
    assert others and {o["warehouse"] for o in others} == {"MAIN"}  # the Connection's default


def test_no_warehouse_configured_with_several_is_a_clear_dead_letter(
        clean_sandbox: Any, store: StateStore, storefront_adapter: Any) -> None:
    sb = clean_sandbox
    sb.settings("erp", default_warehouse=None)
    placed = checkout(sb, "SKU-000005", inventory_behaviour="bypass")
    erp = erp_with(sb)
    orders.run(ctx(store, erp, storefront_adapter, "wh-2"))
    dead = {d.external_id: d.reason for d in store.list_dead_letters(flow="orders_sync", limit=1000)}
    assert "warehouse_required" in dead[placed["id"]], dead.get(placed["id"])
    assert erp.find_sales_order(placed["id"]) is None
    assert store.get_xref("erp", "sales_order", placed["id"]) is None
    # the operator sets the default warehouse, then replays the dead letter: booked there, once
    dl = next(d for d in store.list_dead_letters(flow="orders_sync", limit=1000) if d.external_id == placed["id"])
    fixed = erp_with(sb, sale_warehouse="WEST")
    out = replay(ctx(store, fixed, storefront_adapter, "wh-replay"), dl)
    assert out.result == "resolved", out
    assert fixed.find_sales_order(placed["id"])["warehouse"] == "WEST"
    assert store.get_xref("erp", "sales_order", placed["id"]) is not None
