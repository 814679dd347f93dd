"""orders_sync with concurrent writes: still 0 duplicates when 30 % of ERP writes commit then time out."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.flows import customers, orders
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import assert_every_paid_order_once, ctx_for, run_with_retries

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_concurrent_writes_with_30_percent_commit_then_timeout(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    fresh.admin("storefront", "POST", "orders/generate", {"count": 40, "guest_share": 0.2, "new_customer_share": 0.3,
                                                          "seed": 3})
    fresh.set_faults("erp", seed=11, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.2}, methods=["POST", "PUT"])
    run_with_retries(customers.run, lambda r: ctx_for("customers_sync", store, erp_adapter, storefront_adapter, r))
    # each lost answer is a failed call for the breaker now (no silent resend inside the client, the
    # order is looked up first): 8 writers at 30 % can meet 5 in a row, and these retries do not wait
    # out its cooldown as Airflow's would; this test is about duplicates, not the breaker
    o = run_with_retries(orders.run, lambda r: ctx_for("orders_sync", store, erp_adapter, storefront_adapter, r,
                                                       write_concurrency=8, breaker_threshold=25))
    injected = fresh.stats("erp")["faults_injected"].get("commit_then_timeout", 0)
    fresh.clear_faults("erp")
    assert injected > 0 and o.done > 0
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
    assert_every_paid_order_once(store, erp_adapter, storefront_adapter)
    again = orders.run(ctx_for("orders_sync", store, erp_adapter, storefront_adapter, "run-2", write_concurrency=8))
    assert again.done == 0


def test_capacity_limited_erp_queues_requests_beyond_its_workers(fresh: Any, erp_adapter: Any) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    from erpsync.connectors.sandbox_erp import SandboxErpAdapter

    fresh.set_faults("erp", concurrency={"limit": 2, "service_ms": 100}, paths=["/api/items"])
    adapters = [SandboxErpAdapter(fresh.erp_url, fresh.erp_user, fresh.erp_password) for _ in range(6)]
    for a in adapters:
        a.login()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda a: a.find_item_by_sku("SKU-000001"), adapters))
    elapsed = time.perf_counter() - t0
    assert 0.29 <= elapsed < 1.5  # 6 requests on 2 workers of 100 ms: three rounds
