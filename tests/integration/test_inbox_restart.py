"""The webhook receiver restarted mid-burst loses no event (issue 21): the sandbox's sender keeps
retrying what was not answered 2xx while the receiver is down, the receiver comes back on the
same address, and every paid order of the burst ends up in the inbox once and, through one event
run, as exactly one ERP sales order (counted from the ERP). The scheduler and triggerer restarts
are measured by ``python -m benchmarks events --scenario restart`` (a real Airflow)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from erpsync import inbox
from erpsync.flows import events
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore
from tests.fixtures.webhooks import free_port, serve_receiver, settle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "whsec-restart"


@pytest.fixture
def store(tmp_path) -> StateStore:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def _place(sb: Any, seeds: range) -> list[str]:
    return [httpx.post(f"{sb.storefront_url}/_admin/orders/generate", json={"count": 1, "seed": seed},
                       timeout=10).json()["orders"][0] for seed in seeds]


def test_the_receiver_restarted_mid_burst_loses_no_event(clean_sandbox, store, erp_adapter,
                                                         storefront_adapter, monkeypatch) -> None:
    sb = clean_sandbox
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_STOREFRONT", SECRET)
    port = free_port()
    placed: list[str] = []
    try:
        with serve_receiver(store, port) as url:
            r = httpx.post(f"{sb.storefront_url}/_admin/webhooks", timeout=5, json={
                "url": f"{url}/storefront", "secret": SECRET, "events": ["order.paid"], "attempts": 10})
            assert r.status_code == 200, r.text
            placed += _place(sb, range(300, 306))
        # the receiver is down: these deliveries are refused at the socket and retried with backoff
        placed += _place(sb, range(306, 312))
        time.sleep(1.0)
        with serve_receiver(store, port):  # back on the same address
            placed += _place(sb, range(312, 318))
            counts = settle(sb.storefront_url, 30, count_failed=True)
    finally:
        httpx.delete(f"{sb.storefront_url}/_admin/webhooks", timeout=5)
    assert counts.get("retried", 0) > 0 and counts.get("failed", 0) == 0, counts
    paid = [oid for oid in placed if storefront_adapter.get_order(oid)["financial_status"] == "paid"]
    assert len(paid) >= 12
    named = Counter(row.record_id for row in inbox.open_rows(store, "order"))
    assert named == Counter(paid)  # every paid order's event once: none lost, none stored twice

    # one event run: every named order into the ERP, exactly once
    ctx = FlowContext.for_run(flow="orders_sync", run_id="restart-1", store=store, erp=erp_adapter,
                              storefront=storefront_adapter, params={}, log=logging.getLogger("test.restart"))
    summary = events.orders_from_inbox(ctx)
    assert summary.done == len(paid), summary.render()
    refs = Counter(str(o.get("external_ref")) for o in erp_adapter.list_sales_orders())
    assert {oid: refs[oid] for oid in paid} == {oid: 1 for oid in paid}
    assert inbox.open_rows(store, "order") == []
