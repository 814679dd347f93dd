"""Every record read is accounted for (issue 17 item 7): per flow, against the sandbox over HTTP,
records read = synced + skipped by a documented rule + dead-lettered, with hostile records mixed
into what the systems serve (the adapters pass them on as a real API would). No silent skip: a
shipment shipped without packages, ERP stock of an unknown item, a stock record whose change
time is no time and two different copies of one stock record each leave a dead letter with a
reason; a shipment whose packages are all pending is a documented no-op (``nothing_shipped``).

inventory_sync counts its outcomes per store SKU-location (what it pushes), not per ERP stock
record, so its check is that every hostile stock record has its dead letter and that the stock
cursor never becomes a time that is no time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from erpsync.connectors.base import row_blocks
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.flows import catalog, customers, inventory, inventory_drift, orders, pricing, returns, shipments
from erpsync.flows.base import RunSummary
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import ctx_for
from tests.integration.test_returns_sandbox import _open_return
from tests.integration.test_shipments_sandbox import place_order

pytestmark = pytest.mark.integration

LOCATIONS = {"MAIN": "MAIN", "EAST": "EAST", "WEST": "WEST"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class HostileErp(SandboxErpAdapter):
    """The sandbox ERP, serving some extra records of its own after the real ones."""

    extra: dict[str, list[Any]]

    def _plus(self, kind: str, real: Iterator[Any]) -> Iterator[Any]:
        yield from real
        yield from self.extra.get(kind, [])

    def list_items(self, updated_since: Any = None) -> Iterator[Any]:
        return self._plus("items", super().list_items(updated_since))

    def list_prices(self, updated_since: Any = None) -> Iterator[Any]:
        return self._plus("prices", super().list_prices(updated_since))

    def list_stock(self, updated_since: Any = None) -> Iterator[Any]:
        return self._plus("stock", super().list_stock(updated_since))

    def export_stock_rows(self) -> Iterator[Any]:  # the sandbox's export_stock reads these blocks too
        yield from super().export_stock_rows()
        if self.extra.get("stock"):
            yield from row_blocks(self.extra["stock"])

    def list_shipments(self, updated_since: Any = None, updated_before: Any = None) -> Iterator[Any]:
        return self._plus("shipments", super().list_shipments(updated_since, updated_before))


class HostileStore(SandboxStorefrontAdapter):
    extra: dict[str, list[Any]]

    def _plus(self, kind: str, real: Iterator[Any]) -> Iterator[Any]:
        yield from real
        yield from self.extra.get(kind, [])

    def list_customers(self, updated_since: Any = None) -> Iterator[Any]:
        return self._plus("customers", super().list_customers(updated_since))

    def list_orders(self, updated_since: Any = None, updated_before: Any = None) -> Iterator[Any]:
        return self._plus("orders", super().list_orders(updated_since, updated_before))

    def list_returns(self, updated_since: Any = None, updated_before: Any = None) -> Iterator[Any]:
        return self._plus("returns", super().list_returns(updated_since, updated_before))


def accounted(s: RunSummary) -> None:
    assert s.read > 0, s.render()
    assert s.read == s.done + s.skipped + s.quarantined, (
        f"{s.flow}: read {s.read} != synced {s.done} + skipped {s.skipped} + dead-lettered {s.quarantined}\n"
        + s.render())
    assert sum(n for r, n in s.reasons.items() if r not in _EXTRA_REASONS) >= s.skipped + s.quarantined - s.reasons[
        "found_by_key"], s.render()  # every skip and dead letter has its reason


#: reasons counted beside the outcome (not an outcome of their own)
_EXTRA_REASONS = {"package_pending", "found_by_key", "created", "updated", "opened"}


def letters(store: StateStore, flow: str) -> dict[str, str]:
    return {d.external_id: d.reason for d in store.list_dead_letters(flow=flow, limit=10_000)}


def test_every_record_read_is_synced_skipped_by_rule_or_dead_lettered(
    fresh: Any, store: StateStore
) -> None:
    erp = HostileErp(fresh.erp_url, fresh.erp_user, fresh.erp_password, timeout=5, page_size=25)
    sf = HostileStore(fresh.storefront_url, fresh.token, timeout=5, page_size=25)
    erp.extra, sf.extra = {}, {}

    def run(flow: str, fn: Any, run_id: str, **params: Any) -> RunSummary:
        return fn(ctx_for(flow, store, erp, sf, run_id, **params))

    # catalog and prices, with an item without SKU and a price that is no number
    erp.extra = {"items": [{"item_code": "ITEM-NOSKU", "name": "No SKU", "active": True, "modified_at": NOW}],
                 "prices": [{"item_code": "ITEM-000002", "price_list": "BASE", "currency": "USD", "price": "abc",
                             "min_qty": 1, "modified_at": NOW}]}
    accounted(cat := run("catalog_sync", catalog.run, "cat"))
    assert cat.quarantined >= 1 and any("ITEM-NOSKU" in k for k in letters(store, "catalog_sync")), cat.render()
    accounted(pr := run("pricing_sync", pricing.run, "pr"))
    assert pr.quarantined >= 1, pr.render()

    # customers and orders, with records that are not records and one without an id
    sf.extra = {"customers": [None, {"email": "no.id@example.com", "updated_at": NOW}],
                "orders": ["not an order", {"id": "O-NOLINES", "email": "x@example.com", "updated_at": NOW}]}
    accounted(cu := run("customers_sync", customers.run, "cu"))
    assert cu.quarantined == 2, cu.render()
    order = place_order(fresh, [("SKU-000002", 3), ("SKU-000003", 2)], email="counted@example.com")
    accounted(od := run("orders_sync", orders.run, "od"))
    assert od.quarantined >= 2 and "O-NOLINES" in letters(store, "orders_sync"), od.render()
    sf.extra = {}

    # shipments: one shipped, one shipped without any package, one whose packages all wait
    so = erp.find_sales_order(order["id"])
    fresh.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
    erp.extra = {"shipments": [
        {"shipment_no": "SHP-NOPKG", "order_no": so["order_no"], "external_ref": order["id"], "status": "shipped",
         "packages": [], "shipped_at": NOW, "modified_at": NOW},
        {"shipment_no": "SHP-WAIT", "order_no": so["order_no"], "external_ref": order["id"], "status": "shipped",
         "packages": [{"carrier": "DHL", "status": "pending", "tracking_no": "1ZWAIT",
                       "lines": [{"item_code": so["lines"][0]["item_code"], "qty": 1}]}],
         "shipped_at": NOW, "modified_at": NOW}]}
    accounted(sh := run("shipments_sync", shipments.run, "sh"))
    assert sh.done >= 1 and sh.reasons["nothing_shipped"] == 1, sh.render()
    assert letters(store, "shipments_sync")["SHP-NOPKG"].startswith("no_packages:"), letters(store, "shipments_sync")
    erp.extra = {}

    # returns: one real, one without lines
    _open_return(fresh, order["id"], [("SKU-000002", 1)])
    sf.extra = {"returns": [{"id": "R-EMPTY", "order_id": order["id"], "status": "requested", "line_items": [],
                             "updated_at": NOW}]}
    accounted(rt := run("returns_sync", returns.run, "rt"))
    assert rt.done >= 1 and rt.quarantined >= 1, rt.render()
    sf.extra = {}

    # inventory: stock of an unknown item, a change time that is no time, two copies of one record
    first = next(r for r in erp.list_stock() if r["warehouse"] == "MAIN")
    erp.extra = {"stock": [
        dict(first, item_code="ITEM-UNKNOWN"),
        dict(first, item_code="ITEM-000003", modified_at="yesterday-ish"),
        dict(first, on_hand=first["on_hand"] + 7),  # same key, same change time, other figures
    ]}
    run("inventory_sync", inventory.run, "inv1", location_map=LOCATIONS)  # the first run: export + baseline
    second = run("inventory_sync", inventory.run, "inv2", location_map=LOCATIONS)
    dead = letters(store, "inventory_sync")
    assert dead["ITEM-UNKNOWN"].startswith("unknown_item:"), dead
    assert "modified_at" in dead["ITEM-000003@MAIN"], dead
    assert any(r.startswith("duplicate_stock_key:") for r in dead.values()), dead
    assert second.quarantined >= 3, second.render()
    cursor = store.get_cursor("inventory_sync", name="stock")
    assert cursor is None or dt.datetime.fromisoformat(cursor.replace("Z", "+00:00"))

    # the drift check reads the same stock in one export: the second copy is a dead letter, not
    # added to the first (before: the item showed its stock twice over)
    summary, _mail, drift = inventory_drift.run_with_email(
        ctx_for("inventory_drift_check", store, erp, sf, "dr", location_map=LOCATIONS))
    dead = letters(store, "inventory_drift_check")
    key = f"{first['item_code']}@MAIN"
    assert dead[key].startswith("duplicate_stock_key:"), dead
    assert dead["ITEM-UNKNOWN"].startswith("unknown_item:") and "modified_at" in dead["ITEM-000003@MAIN"], dead
    assert summary.read == drift.erp_read + drift.store_read and drift.compared > 0
