"""Restocked returns feed inventory (issue 5, returns): units a return puts back on hand in the ERP
reach the store's availability through the next inventory_sync, and only that SKU is pushed."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.flows import inventory, returns
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import ctx_for, sync_all
from tests.integration.test_inventory_flows import erp_stock, store_level
from tests.integration.test_returns_sandbox import _open_return
from tests.integration.test_shipments_sandbox import place_order

pytestmark = pytest.mark.integration


def test_restocked_units_reach_the_store_with_the_next_inventory_cycle(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    sku = "SKU-000004"
    order = place_order(fresh, [(sku, 3)], email="restock.test@example.com")
    sync_all(store, erp_adapter, storefront_adapter)
    so = erp_adapter.find_sales_order(order["id"])
    code = so["lines"][0]["item_code"]
    fresh.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
    first = inventory.run(ctx_for("inventory_sync", store, erp_adapter, storefront_adapter, "inv-1"))
    assert first.done > 0
    before = {r["location_id"]: r["available"] for r in storefront_adapter.inventory_for([sku])}

    ret = _open_return(fresh, order["id"], [(sku, 2)])
    returns.run(ctx_for("returns_sync", store, erp_adapter, storefront_adapter, "ret-1"))
    rma = erp_adapter.find_return(ret["id"])
    on_hand = erp_stock(erp_adapter, code)["on_hand"]
    fresh.admin("erp", "POST", "returns/receive", {"rma_no": rma["rma_no"], "lines": [
        {"item_code": code, "qty": 2, "disposition": "restock"}]})
    assert erp_stock(erp_adapter, code)["on_hand"] == on_hand + 2

    again = inventory.run(ctx_for("inventory_sync", store, erp_adapter, storefront_adapter, "inv-2"))
    assert again.done == 1, again.render()  # the restocked SKU-location, nothing else
    assert store_level(storefront_adapter, sku)["available"] == before["MAIN"] + 2
