"""orders_sync keeps placed -> ERP per order it wrote (RunSummary.latencies_s), the figure the
dashboard's order latency merges (run_metrics.extra.latency, erpsync.dashboard.latency_histogram)."""

from __future__ import annotations

import datetime as dt

from flow_doubles import FakeErp, FakeStorefront
from test_flows_orders import CUST, erp, run, sf_order, store  # noqa: F401 - fixtures

from erpsync import dashboard
from erpsync.state import StateStore


def test_each_written_order_has_its_placed_to_erp_latency(store: StateStore, erp: FakeErp) -> None:  # noqa: F811
    placed = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # sf_order's created_at
    sf = FakeStorefront([CUST], [sf_order(1, customer=CUST), sf_order(2, customer=CUST)])
    before = dt.datetime.now(dt.UTC)
    summary = run(store, erp, sf)
    after = dt.datetime.now(dt.UTC)
    assert summary.done == 2 and len(summary.latencies_s) == 2
    for seconds in summary.latencies_s:
        assert (before - placed).total_seconds() <= seconds <= (after - placed).total_seconds()
    assert dashboard.latency_histogram(summary.latencies_s) == {"inf": 2}  # placed days ago: over a day

    again = run(store, erp, sf, run_id="run-2")  # nothing written: nothing measured
    assert again.latencies_s == []


def test_an_order_found_by_its_key_is_not_measured(store: StateStore, erp: FakeErp) -> None:  # noqa: F811
    erp.commit_then_timeout("create_sales_order", times=1)
    summary = run(store, erp, FakeStorefront([CUST], [sf_order(1, customer=CUST), sf_order(2, customer=CUST)]))
    assert summary.done == 2 and summary.reasons["found_by_key"] == 1
    assert len(summary.latencies_s) == 1  # the order written this run; the one found was written by the lost try
