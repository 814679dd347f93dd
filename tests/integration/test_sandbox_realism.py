"""The sandbox's realistic defaults through the real flows (issue 16): an ERP with several
warehouses refuses a sale that names none, and `make up`'s ERP Connection names one, per store
location (the location a checkout was routed to) or by default."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from erpsync.connectors.registry import build_erp
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.flows import orders
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def make_up_erp_extra() -> dict[str, Any]:
    """The extra of the ERP Connection `make up` defines (scripts/airflow-env.sh)."""
    out = subprocess.run(["bash", "-c", 'unset AIRFLOW_CONN_ERP_DEFAULT; source scripts/airflow-env.sh; '
                                        'printf %s "$AIRFLOW_CONN_ERP_DEFAULT"'],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["extra"]


def ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params={},
                               log=logging.getLogger(f"test.{flow}"), run_type="manual")


def checkout(sb: Any, sku: str, qty: int, **extra: Any) -> dict[str, Any]:
    r = requests.post(f"{sb.storefront_url}/admin/api/orders", headers={"Authorization": f"Bearer {sb.token}"},
                      json={"email": f"{sku.lower()}.{qty}@example.com", "guest": True,
                            "line_items": [{"sku": sku, "quantity": qty}], **extra}, timeout=5)
    assert r.status_code == 201, r.text
    return r.json()


def test_orders_reach_the_warehouse_of_their_store_location_with_make_ups_connection(
    seeded: Any, store: StateStore
) -> None:
    sb = seeded(seed=7, skus=40, locations=3, customers=60, orders=0)
    sb.settings("erp", default_warehouse=None)  # as launched by `make up`: no default warehouse
    sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=5)
    base = {"adapter": "sandbox", "conn_id": "erp_default"}
    bare = build_erp(adapter="sandbox", base_url=sb.erp_url, login=sb.erp_user, password=sb.erp_password,
                     extra=base)
    configured = build_erp(adapter="sandbox", base_url=sb.erp_url, login=sb.erp_user, password=sb.erp_password,
                           extra={**make_up_erp_extra(), **base})
    # the store has SKU-000002 only in EAST: the checkout is routed there
    sf.http.request("POST", "/admin/api/inventory_levels/set", json={"items": [
        {"sku": "SKU-000002", "location_id": "MAIN", "available": 0},
        {"sku": "SKU-000002", "location_id": "EAST", "available": 5},
        {"sku": "SKU-000002", "location_id": "WEST", "available": 0}]})
    east = checkout(sb, "SKU-000002", 2)
    assert east["location_id"] == "EAST"
    market = checkout(sb, "SKU-000003", 1, source_name="marketplace", inventory_behaviour="bypass")
    assert "location_id" not in market

    # an ERP Connection naming no warehouse: the ERP refuses every sale, each is a dead letter
    s = orders.run(ctx("orders_sync", store, bare, sf, "o1"))
    assert s.done == 0 and len(s.dead_letters) == 2, s.render()
    assert all("warehouse_required" in d.reason for d in store.list_dead_letters(flow="orders_sync")), \
        [d.reason for d in store.list_dead_letters(flow="orders_sync")]
    assert sb.stats("erp")["sales_orders"] == 0

    before = {r["warehouse"]: r for r in configured.stock_for_items(["ITEM-000002"])}
    s = orders.run(ctx("orders_sync", store, configured, sf, "o2"))
    assert s.done == 2 and not s.dead_letters, s.render()
    assert configured.find_sales_order(east["id"])["warehouse"] == "EAST"  # its store location's
    assert configured.find_sales_order(market["id"])["warehouse"] == "MAIN"  # the Connection's default
    after = {r["warehouse"]: r for r in configured.stock_for_items(["ITEM-000002"])}
    assert after["EAST"]["allocated"] == before["EAST"]["allocated"] + 2
    assert after["MAIN"]["allocated"] == before["MAIN"]["allocated"]
    assert not store.list_dead_letters(flow="orders_sync")  # the retry resolved them
