"""Issue 17 item 9: an ERP that silently ignores Idempotency-Key gets no duplicate sales orders.

A keyed write whose answer was lost is resent by the HTTP client only when the remote is known
to replay keys (``HttpClient.key_replay``, Connection extra ``idempotency_key_replay``); by
default the flow looks the order up by its external reference first (``idempotent_write``), and
the audit keeps a row for every attempt (``unknown`` when no answer came), so a write sent twice
shows. Proven through orders_sync against the sandbox with its ``ignore_idempotency_keys`` and
``commit_then_timeout`` faults.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from erpsync.flows import customers, orders
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import assert_every_paid_order_once, ctx_for, run_with_retries

pytestmark = pytest.mark.integration


def erp_orders_by_ref(erp: Any) -> Counter[str]:
    """Every sales order the ERP holds, counted per external reference."""
    return Counter(str(o.get("external_ref")) for o in erp.list_sales_orders())


def audit_results(store: StateStore) -> Counter[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT operation, result FROM audit_log WHERE entity = 'order'")).all()
    return Counter(f"{op}:{res}" for op, res in rows)


def test_sandbox_replays_keys_only_when_it_honours_them(clean_sandbox: Any, erp_adapter: Any) -> None:
    """The capability flag's proof: the sandbox answers a repeated keyed write with the stored
    answer and ``Idempotent-Replayed: true``; with ``ignore_idempotency_keys`` it writes twice."""
    body = {"external_ref": "O-KEY-1", "customer_no": "CUST-000002", "currency": "USD",
            "lines": [{"line_no": 1, "item_code": "ITEM-000001", "qty": 1, "unit_price": "5.00"}], "total": "5.00"}
    erp_adapter.login()
    headers = {"X-Session-Id": erp_adapter._session_id, "Idempotency-Key": "so-O-KEY-1"}
    url = f"{clean_sandbox.erp_url}/api/sales-orders"
    first = requests.post(url, json=body, headers=headers, timeout=5)
    again = requests.post(url, json=body, headers=headers, timeout=5)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    clean_sandbox.set_faults("erp", ignore_idempotency_keys=True)
    body["external_ref"] = "O-KEY-2"
    headers["Idempotency-Key"] = "so-O-KEY-2"
    one = requests.post(url, json=body, headers=headers, timeout=5)
    two = requests.post(url, json=body, headers=headers, timeout=5)
    assert one.status_code == two.status_code == 201
    assert "Idempotent-Replayed" not in two.headers and one.json()["order_no"] != two.json()["order_no"]


@pytest.mark.slow
def test_orders_sync_makes_no_duplicate_when_the_erp_ignores_keys_and_answers_are_lost(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    fresh.admin("storefront", "POST", "orders/generate", {"count": 60, "guest_share": 0.2, "new_customer_share": 0.3,
                                                          "seed": 9})
    run_with_retries(customers.run, lambda r: ctx_for("customers_sync", store, erp_adapter, storefront_adapter, r))
    assert erp_adapter.http.key_replay is False  # never assumed
    fresh.set_faults("erp", seed=13, ignore_idempotency_keys=True,
                     commit_then_timeout={"rate": 0.4, "hold_seconds": 0.2}, methods=["POST"],
                     paths=["/api/sales-orders"])
    before = erp_orders_by_ref(erp_adapter)
    summaries = []
    for attempt in range(8):  # Airflow's retries: a run stopped by a transient error runs again
        try:
            summaries.append(orders.run(ctx_for("orders_sync", store, erp_adapter, storefront_adapter, f"r{attempt}")))
            break
        except Exception as exc:  # TransientError / UnknownOutcomeError after the last in-run attempt
            summaries.append(exc)
    injected = fresh.stats("erp")["faults_injected"].get("commit_then_timeout", 0)
    fresh.clear_faults("erp")
    assert injected >= 5, injected
    after = erp_orders_by_ref(erp_adapter)
    new = after - before
    duplicates = {ref: n for ref, n in after.items() if n > 1}
    assert new and duplicates == {}, duplicates  # 0 duplicate ERP orders
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
    assert_every_paid_order_once(store, erp_adapter, storefront_adapter)
    # the audit shows every attempt: each lost answer is an "unknown" row, then a look-up that found it
    results = audit_results(store)
    assert results["create_sales_order:unknown"] == injected, results
    assert results["create_sales_order.lookup:found"] >= 1, results
    assert results["create_sales_order:ok"] + results["create_sales_order.lookup:found"] == sum(new.values())


@pytest.mark.slow
def test_trusting_keys_on_an_erp_that_ignores_them_would_duplicate(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    """The contrast that shows the fault bites: with key replay wrongly declared, resends duplicate."""
    fresh.admin("storefront", "POST", "orders/generate", {"count": 30, "guest_share": 0.0, "seed": 5})
    run_with_retries(customers.run, lambda r: ctx_for("customers_sync", store, erp_adapter, storefront_adapter, r))
    erp_adapter.http.key_replay = True  # what an operator claiming `idempotency_key_replay: true` does
    fresh.set_faults("erp", seed=13, ignore_idempotency_keys=True,
                     commit_then_timeout={"rate": 0.4, "hold_seconds": 0.2}, methods=["POST"],
                     paths=["/api/sales-orders"])
    for attempt in range(8):
        try:
            orders.run(ctx_for("orders_sync", store, erp_adapter, storefront_adapter, f"t{attempt}"))
            break
        except Exception:
            continue
    fresh.clear_faults("erp")
    assert any(n > 1 for n in erp_orders_by_ref(erp_adapter).values())
