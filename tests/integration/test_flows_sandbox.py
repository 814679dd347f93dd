"""customers_sync and orders_sync end to end against the sandbox ERP and storefront over HTTP.

Uses the ``sandbox``, ``erp_adapter`` and ``storefront_adapter`` fixtures of
tests/fixtures/sandbox.py and a real state store (SQLite under the test's ERPSYNC_HOME). Each test
reseeds the sandbox small, so the whole module runs in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from erpsync.errors import MappingError, TransientError
from erpsync.flows import customers, orders
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.mappings.storefront_sandbox import order_from_storefront
from erpsync.model import OrderStatus
from erpsync.state import StateStore
from tests.integration.conftest import SEED

pytestmark = pytest.mark.integration



def ctx_for(
    flow: str, store: StateStore, erp: Any, storefront: Any, run_id: str, **params: Any
) -> FlowContext:
    return FlowContext.for_run(
        flow=flow,
        run_id=run_id,
        store=store,
        erp=erp,
        storefront=storefront,
        params=params,
        log=logging.getLogger(f"test.{flow}"),
    )


def run_with_retries(
    run: Callable[[FlowContext], RunSummary], make: Callable[[str], FlowContext]
) -> RunSummary:
    """Like Airflow task retries: a transient failure is retried with the same run id."""
    for attempt in range(1, 4):
        try:
            return run(make("run-1"))
        except TransientError:
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


def sync_all(store: StateStore, erp: Any, sf: Any, run_id: str = "run-1") -> tuple[RunSummary, RunSummary]:
    c = run_with_retries(customers.run, lambda r: ctx_for("customers_sync", store, erp, sf, run_id))
    o = run_with_retries(orders.run, lambda r: ctx_for("orders_sync", store, erp, sf, run_id))
    return c, o


def paid_orders(sf: Any) -> dict[str, Any]:
    """Storefront orders that must reach the ERP: paid and never cancelled (mappable ones)."""
    out = {}
    for raw in sf.list_orders():
        try:
            order = order_from_storefront(raw)
        except MappingError:
            continue
        if order.status is OrderStatus.PAID:
            out[order.external_id] = raw
    return out


def open_dead_letters(store: StateStore, flow: str) -> dict[str, str]:
    return {d.external_id: d.reason for d in store.list_dead_letters(flow=flow)}


def assert_every_paid_order_once(store: StateStore, erp: Any, sf: Any) -> None:
    """0 lost: each paid order is in the ERP or in dead letters; 0 duplicates: at most one per ref."""
    dead = open_dead_letters(store, "orders_sync")
    missing = []
    for oid in paid_orders(sf):
        so = erp.find_sales_order(oid)
        if so is None and oid not in dead:
            missing.append(oid)
        if so is not None:
            assert store.get_xref("erp", "sales_order", oid).internal_id == so["order_no"]
    assert missing == []


def test_customers_then_orders_end_to_end(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    c, o = sync_all(store, erp_adapter, storefront_adapter)
    assert c.failed == 0 and c.done > 0
    assert o.failed == 0 and o.done > 0
    assert "total_mismatch" not in o.reasons  # the mapping reads the sandbox's money the way it adds up
    assert "unknown_sku" not in o.reasons
    pending = [
        r
        for r in storefront_adapter.list_orders()
        if r["financial_status"] == "pending" and not r["cancelled_at"]
    ]
    assert o.reasons.get("unpaid", 0) == len(pending)  # counted, not written; they come again when paid
    assert_every_paid_order_once(store, erp_adapter, storefront_adapter)
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
    # a storefront customer that was already in the ERP (same e-mail, other case) was matched, not copied
    shared = [x for x in store.list_audit(flow="customers_sync") if x.operation == "update_customer"]
    assert shared, "expected at least one storefront customer matched to an existing ERP customer"


def test_rerun_writes_nothing_twice(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    sync_all(store, erp_adapter, storefront_adapter)
    before = fresh.stats("erp")
    c, o = sync_all(store, erp_adapter, storefront_adapter, run_id="run-2")
    after = fresh.stats("erp")
    assert (c.done, o.done) == (0, 0)
    assert after["writes_committed"] == before["writes_committed"]
    assert after["sales_orders"] == before["sales_orders"]
    assert after["duplicate_external_refs"] == 0


@pytest.mark.slow
def test_commit_then_timeout_on_30_percent_of_erp_writes(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    fresh.set_faults(
        "erp", seed=11, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.2}, methods=["POST", "PUT"]
    )
    c, o = sync_all(store, erp_adapter, storefront_adapter)
    injected = fresh.stats("erp")["faults_injected"].get("commit_then_timeout", 0)
    fresh.clear_faults("erp")
    assert injected > 0
    assert o.done > 0
    stats = fresh.stats("erp")
    assert stats["duplicate_external_refs"] == 0  # 0 duplicates
    assert_every_paid_order_once(store, erp_adapter, storefront_adapter)  # 0 lost
    assert not [r for r in open_dead_letters(store, "orders_sync").values() if r.startswith("erp_rejected")]
    # and a clean rerun finds everything in place
    c2, o2 = sync_all(store, erp_adapter, storefront_adapter, run_id="run-2")
    assert (c2.done, o2.done) == (0, 0)
    assert fresh.stats("erp")["sales_orders"] == stats["sales_orders"]


def test_unknown_sku_lands_in_dead_letters(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    # the ERP knows fewer items than the storefront sells: SKU-000031.. are unknown to it
    fresh.reset("erp", **{**SEED, "skus": 30})
    _, o = sync_all(store, erp_adapter, storefront_adapter)
    unknown = {
        oid: r for oid, r in open_dead_letters(store, "orders_sync").items() if r.startswith("unknown_sku")
    }
    assert unknown, "the seed should hold paid orders with SKUs the ERP does not know"
    for oid, reason in unknown.items():
        assert erp_adapter.find_sales_order(oid) is None  # never a partial order
        sku = reason.split(": ", 1)[1].split(", ")[0]
        assert int(sku.removeprefix("SKU-")) > 30
    assert o.reasons["unknown_sku"] == len(unknown)
    assert_every_paid_order_once(store, erp_adapter, storefront_adapter)
    rendered = o.render()
    assert "unknown_sku" in rendered and "erpsync dead-letters replay --id" in rendered


def test_malformed_storefront_records_are_quarantined_not_fatal(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    fresh.set_faults("storefront", seed=5, malformed_rate=0.2)
    c, o = sync_all(store, erp_adapter, storefront_adapter)
    assert c.failed == 0 and o.failed == 0
    assert c.quarantined > 0 and o.quarantined > 0
    reasons = set(o.reasons)
    assert reasons & {"mapping_error", "unknown_sku", "erp_rejected"}
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
