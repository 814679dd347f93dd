"""shipments_sync against the sandbox: a partial shipment in 3 packages with 2 carriers shows in the store."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from erpsync.flows import shipments
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import ctx_for, sync_all

pytestmark = pytest.mark.integration


def place_order(sb: Any, lines: list[tuple[str, int]], email: str = "ship.test@example.com") -> dict[str, Any]:
    resp = requests.post(f"{sb.storefront_url}/admin/api/orders", headers={"Authorization": f"Bearer {sb.token}"},
                         json={"email": email, "first_name": "Ship", "last_name": "Test",
                               "line_items": [{"sku": s, "quantity": q} for s, q in lines]}, timeout=10)
    resp.raise_for_status()
    return resp.json()


def test_partial_shipment_in_three_packages_with_two_carriers(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    order = place_order(fresh, [("SKU-000002", 3), ("SKU-000003", 2)])
    sync_all(store, erp_adapter, storefront_adapter)
    so = erp_adapter.find_sales_order(order["id"])
    assert so is not None
    a, b = so["lines"][0]["item_code"], so["lines"][1]["item_code"]
    shipment = fresh.admin("erp", "POST", "ship_packages", {"order_no": so["order_no"], "packages": [
        {"carrier": "UPS", "lines": [{"item_code": a, "qty": 1}]},
        {"carrier": "DHL", "lines": [{"item_code": a, "qty": 1}, {"item_code": b, "qty": 1}]},
        {"carrier": "UPS", "lines": [{"item_code": b, "qty": 1}]},
        {"carrier": "DHL", "status": "pending", "lines": [{"item_code": a, "qty": 1}]},  # label only
    ]})
    s1 = shipments.run(ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "ship-1"))
    assert s1.done == 1 and s1.quarantined == 0 and s1.reasons["package_pending"] == 1

    after = storefront_adapter.get_order(order["id"])
    got = [(f["tracking_company"], f["tracking_number"], sorted((x["sku"], x["quantity"]) for x in f["line_items"]))
           for f in after["fulfillments"]]
    pk = shipment["packages"]
    assert got == [
        ("UPS", pk[0]["tracking_no"], [("SKU-000002", 1)]),
        ("DHL Express", pk[1]["tracking_no"], [("SKU-000002", 1), ("SKU-000003", 1)]),
        ("UPS", pk[2]["tracking_no"], [("SKU-000003", 1)]),
    ]
    assert after["fulfillment_status"] == "partial"
    assert fresh.stats("storefront")["customer_notifications"] == 3  # only shipped packages

    # nothing new: a rerun writes nothing; then the pending package is handed to DHL
    s2 = shipments.run(ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "ship-2"))
    assert s2.done == 0
    fresh.admin("erp", "POST", "ship_package", {"shipment_no": shipment["shipment_no"],
                                                 "tracking_no": pk[3]["tracking_no"]})
    s3 = shipments.run(ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "ship-3"))
    assert s3.done == 1
    final = storefront_adapter.get_order(order["id"])
    assert len(final["fulfillments"]) == 4 and final["fulfillment_status"] == "fulfilled"
    assert fresh.stats("storefront")["customer_notifications"] == 4


def test_unknown_item_code_is_dead_lettered_not_guessed(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    order = place_order(fresh, [("SKU-000004", 1)], email="ship.unknown@example.com")
    sync_all(store, erp_adapter, storefront_adapter)
    so = erp_adapter.find_sales_order(order["id"])
    fresh.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
    with store.engine.begin() as conn:  # the binding of that item is lost
        from erpsync.state import schema as t

        conn.execute(t.xref.delete().where(t.xref.c.entity == "item", t.xref.c.internal_id == so["lines"][0]["item_code"]))
    s = shipments.run(ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "ship-x"))
    assert s.quarantined == 1 and "item_xref" in s.dead_letters[0][2]
    assert storefront_adapter.get_order(order["id"])["fulfillments"] == []
