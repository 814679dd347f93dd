"""shipments_sync against the sandbox: a partial shipment in 3 packages with 2 carriers shows in the
store; the quality gate quarantines bad shipments with their reasons and loads the rest, and a
batch over the bad-share limit fails the run before anything of it is loaded."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests

from erpsync.flows import shipments
from erpsync.quality import QualityGateFailed
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


class Corrupting:
    """The sandbox adapter with some records of one list call broken the way a real system's
    data goes bad (``damage[id](record)``); everything else is the adapter's, over HTTP."""

    def __init__(self, adapter: Any, method: str, key: str, damage: dict[str, Any]) -> None:
        self._adapter, self._method, self._key, self._damage = adapter, method, key, damage

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._adapter, name)
        if name != self._method:
            return value

        def listed(*args: Any, **kwargs: Any) -> Any:
            for raw in value(*args, **kwargs):
                fix = self._damage.get(str(raw.get(self._key)))
                yield fix(copy.deepcopy(raw)) if fix else raw

        return listed


def _shipped_orders(fresh: Any, store: StateStore, erp: Any, sf: Any, n: int) -> list[dict[str, Any]]:
    """``n`` storefront orders synced to the ERP and shipped there (one package each)."""
    while True:
        sync_all(store, erp, sf)
        open_orders = [so for so in erp.list_sales_orders() if so.get("status") == "open"]
        if len(open_orders) >= n:
            break
        for i in range(n - len(open_orders)):
            place_order(fresh, [("SKU-000002", 1)], email=f"gate.{len(open_orders)}.{i}@example.com")
    return [fresh.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
            for so in open_orders[:n]]


def _qty_two(raw: dict[str, Any]) -> dict[str, Any]:
    raw["packages"][0]["lines"][0]["qty"] = "two"
    return raw


def _no_order(raw: dict[str, Any]) -> dict[str, Any]:
    return {**raw, "order_no": None, "external_ref": None}


def _empty_package(raw: dict[str, Any]) -> dict[str, Any]:
    raw["packages"][0]["lines"] = []
    return raw


def test_quality_gate_quarantines_3_bad_shipments_with_reasons_and_loads_the_rest(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    shipped = _shipped_orders(fresh, store, erp_adapter, storefront_adapter, 32)
    bad = {shipped[3]["shipment_no"]: _qty_two, shipped[10]["shipment_no"]: _no_order,
           shipped[20]["shipment_no"]: _empty_package}
    erp = Corrupting(erp_adapter, "list_shipments", "shipment_no", bad)
    s = shipments.run(ctx_for("shipments_sync", store, erp, storefront_adapter, "gate-1"))
    assert (s.done, s.quarantined, s.failed) == (29, 3, 0), s.render()
    reasons = {ext: reason for _, ext, reason in s.dead_letters}
    assert set(reasons) == set(bad)
    assert "mapping_error" in reasons[shipped[3]["shipment_no"]] and "quantity" in reasons[shipped[3]["shipment_no"]]
    assert "external_ref" in reasons[shipped[10]["shipment_no"]]
    assert reasons[shipped[20]["shipment_no"]].startswith(
        "empty_package: empty_packages=1 (expect_column_values_to_be_in_set(empty_packages)")
    kinds = {d.external_id: d.error_kind for d in store.list_dead_letters(flow="shipments_sync")}
    assert kinds == {shipped[3]["shipment_no"]: "mapping", shipped[10]["shipment_no"]: "mapping",
                     shipped[20]["shipment_no"]: "quality"}
    fulfilled = {sh["external_ref"]: len(storefront_adapter.get_order(sh["external_ref"])["fulfillments"])
                 for sh in shipped}
    assert [sh["shipment_no"] for sh in shipped if not fulfilled[sh["external_ref"]]] == list(bad)
    # once the ERP sends them right, the next run loads them and resolves their dead letters
    again = shipments.run(ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "gate-2"))
    assert (again.done, again.quarantined) == (3, 0), again.render()
    assert store.list_dead_letters(flow="shipments_sync") == []


def test_a_batch_of_shipments_over_the_bad_share_limit_fails_the_run_and_loads_nothing(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    shipped = _shipped_orders(fresh, store, erp_adapter, storefront_adapter, 10)
    erp = Corrupting(erp_adapter, "list_shipments", "shipment_no", {sh["shipment_no"]: _qty_two for sh in shipped[:5]})
    with pytest.raises(QualityGateFailed, match=r"shipments_sync/shipment: 5 of 10 bad \(50.0%, limit 10%\)"):
        shipments.run(ctx_for("shipments_sync", store, erp, storefront_adapter, "gate-x"))
    assert all(storefront_adapter.get_order(sh["external_ref"])["fulfillments"] == [] for sh in shipped)
    assert len(store.list_dead_letters(flow="shipments_sync")) == 5
