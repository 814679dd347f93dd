"""The health dashboard's figures (erpsync.dashboard) on a real state store: SQLite, and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from erpsync import dashboard
from erpsync.state import StateStore
from erpsync.state import schema as t

NOW = dt.datetime(2026, 12, 7, 12, 30, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StateStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/state.db"
    else:
        url = request.getfixturevalue("pg_database")()
    s = StateStore.from_url(url, clock=lambda: NOW)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def _run(store: StateStore, flow: str, minutes_ago: float, *, done: int = 0, failed: int = 0, quarantined: int = 0,
         status: str = "success", error: str | None = None, latency: dict[str, int] | None = None) -> None:
    started = NOW - dt.timedelta(minutes=minutes_ago)
    extra: dict[str, Any] = {"status": status}
    if error:
        extra["error"] = error
    if latency is not None:
        extra["latency"] = latency
    store.record_run(flow, f"run-{flow}-{minutes_ago}", started, started + dt.timedelta(seconds=20), done, failed,
                     quarantined, 0, extra=extra)


def _flow(board: dashboard.Dashboard, name: str) -> dashboard.FlowHealth:
    return next(f for f in board.flows if f.flow == name)


def test_an_empty_store_is_grey_with_its_reason(store: StateStore) -> None:
    board = dashboard.load(store)
    orders = _flow(board, "orders_sync")
    assert orders.verdict == "grey" and orders.reasons == ("no run recorded yet",)
    assert orders.hourly == (0,) * 24 and orders.error_rate is None and orders.last_success_at is None
    assert {s.system for s in board.systems} == {"erp", "storefront"}
    assert all(s.breaker == "unknown" and s.budget_use is None for s in board.systems)
    assert [f.flow for f in board.flows][:2] == ["customers_sync", "orders_sync"]
    assert "sync_watchdog" not in [f.flow for f in board.flows]  # not a sync flow


def test_records_per_hour_error_rate_and_dead_letters_make_a_flow_amber(store: StateStore) -> None:
    _run(store, "orders_sync", 25 * 60, done=1000)  # outside the 24 h window
    _run(store, "orders_sync", 150, done=40)  # 10:00 -> 10:00 bucket
    _run(store, "orders_sync", 20, done=7, quarantined=1)  # 12:10 -> this hour
    _run(store, "orders_sync", 1, done=2)  # 12:29
    store.add_dead_letter("orders_sync", "order", "SO-1", {"id": "SO-1"}, "unknown_sku: SKU-9")
    board = dashboard.load(store)
    orders = _flow(board, "orders_sync")
    assert board.hours[-1] == NOW.replace(minute=0) and board.hours[0] == NOW.replace(minute=0) - dt.timedelta(hours=23)
    assert orders.hourly[-1] == 9 and orders.hourly[-3] == 40 and sum(orders.hourly) == 49
    assert orders.synced_24h == 49 and orders.errors_24h == 1 and orders.runs_24h == 3
    assert orders.error_rate == pytest.approx(1 / 50)
    assert orders.open_dead_letters == 1 and orders.last_status == "success"
    assert orders.last_success_at == NOW - dt.timedelta(minutes=1) + dt.timedelta(seconds=20)
    assert orders.verdict == "amber"
    assert orders.reasons == ("error rate 2.0% over 24 h (1 of 50 records)", "1 open dead letter(s)")


def test_a_failed_last_run_a_stale_flow_and_an_open_breaker_are_red(store: StateStore) -> None:
    _run(store, "customers_sync", 30 * 60, done=5)  # the last success, 30 h ago
    _run(store, "customers_sync", 10, status="failed", error="ConnectError: refused")
    _run(store, "shipments_sync", 40, done=3)  # every 5 min: 40 min quiet is 8 cadences
    _run(store, "returns_sync", 25, done=3)  # every 10 min: 25 min is 2.5 cadences: amber
    board = dashboard.load(store)
    customers = _flow(board, "customers_sync")
    assert customers.verdict == "red"
    assert customers.reasons[0] == "last run failed: ConnectError: refused"
    assert "no successful run for 29 h (runs every 15 min)" in customers.reasons
    assert customers.last_success_at is not None and customers.failed_runs_24h == 1
    shipments = _flow(board, "shipments_sync")
    assert shipments.verdict == "red" and shipments.reasons[0].startswith("no successful run for 39 min")
    returns = _flow(board, "returns_sync")
    assert returns.verdict == "amber" and returns.reasons[0].startswith("no successful run for 24 min")

    with store.engine.begin() as conn:
        conn.execute(sa.insert(t.circuit_breakers).values(system="erp", state="open", failures=5, opened_at=NOW,
                                                          last_error="503 Service Unavailable", updated_at=NOW))
    _run(store, "returns_sync", 2, done=3)
    board = dashboard.load(store)
    returns = _flow(board, "returns_sync")
    assert returns.verdict == "red" and returns.reasons == ("erp circuit open: 503 Service Unavailable",)
    erp = next(s for s in board.systems if s.system == "erp")
    assert erp.breaker == "open" and erp.failures == 5


def test_a_high_error_rate_is_red_at_the_flows_bad_share(store: StateStore) -> None:
    _run(store, "pricing_sync", 5, done=90, quarantined=10)  # pricing's limit is 5 %
    _run(store, "customers_sync", 5, done=95, quarantined=5)  # customers': 10 %
    board = dashboard.load(store)
    assert _flow(board, "pricing_sync").verdict == "red"
    assert _flow(board, "customers_sync").verdict == "amber"


def test_green_says_when_the_last_run_succeeded(store: StateStore) -> None:
    _run(store, "catalog_sync", 60, done=12)
    catalog = _flow(dashboard.load(store), "catalog_sync")
    assert catalog.verdict == "green" and catalog.reasons == ("last run succeeded 59 min ago, nothing open",)


def test_outbox_depth_counts_what_is_not_drained(store: StateStore) -> None:
    from erpsync.reliability.outbox import Outbox

    box = Outbox(store, "orders_sync")
    for i in range(3):
        box.put("erp", "order", f"SO-{i}", {"id": i}, f"k{i}")
    (first,) = box.claim("w", limit=1)
    box.done(first.id)
    orders = _flow(dashboard.load(store), "orders_sync")
    assert orders.outbox_depth == 2 and "2 record(s) waiting in the outbox" in orders.reasons


def test_order_latency_merges_the_runs_histograms(store: StateStore) -> None:
    assert dashboard.latency_histogram([0.2, 1, 3, 40, 100_000]) == {"1": 2, "5": 1, "60": 1, "inf": 1}
    _run(store, "orders_sync", 3, done=10, latency=dashboard.latency_histogram([4] * 9 + [200]))
    _run(store, "orders_sync", 2, done=10, latency=dashboard.latency_histogram([8] * 10))
    orders = _flow(dashboard.load(store), "orders_sync")
    assert orders.latency == dashboard.Latency("placed -> ERP", 10.0, 10.0, 20, True)
    _run(store, "orders_sync", 1, done=20, latency=dashboard.latency_histogram([250] * 10))
    orders = _flow(dashboard.load(store), "orders_sync")
    assert (orders.latency.p50_s, orders.latency.p95_s, orders.latency.samples) == (10.0, 300.0, 30)
    assert _flow(dashboard.load(store), "customers_sync").latency_note == "not measured"
    assert _flow(dashboard.load(store), "returns_sync").latency is None


def test_stock_latency_is_change_to_store(store: StateStore) -> None:
    rows = [{"sku": f"S{i}", "location": "L", "available": 1, "backorderable": False, "restock_date": None,
             "source_modified": (NOW - dt.timedelta(minutes=10, seconds=i)).isoformat().replace("+00:00", "Z"),
             "pushed_at": NOW - dt.timedelta(minutes=10) + dt.timedelta(seconds=30)} for i in range(100)]
    rows.append({**rows[0], "sku": "OLD", "pushed_at": NOW - dt.timedelta(days=3)})  # outside 24 h
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t.inventory_pushed), rows)
    board = dashboard.load(store)
    stock = _flow(board, "inventory_sync").latency
    assert stock is not None and stock.what == "ERP change -> store" and stock.samples == 100
    assert (stock.p50_s, stock.p95_s, stock.bucketed) == (79.0, 124.0, False)


def test_rate_budget_use(store: StateStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t.rate_budgets), [
            {"system": "erp", "tat": NOW.timestamp() + 2.0, "rps": 10.0, "updated_at": NOW},
            {"system": "storefront", "tat": NOW.timestamp() - 100, "rps": 40.0, "updated_at": NOW - dt.timedelta(minutes=3)}])
    systems = {s.system: s for s in dashboard.load(store).systems}
    assert systems["erp"].budget_use == pytest.approx(2.0 / 0.4) and systems["erp"].budget_note == "callers wait 1.6 s"
    assert systems["storefront"].budget_use == 0 and systems["storefront"].budget_note == "idle (last request 3 min ago)"
    _run(store, "orders_sync", 1, done=1)
    orders = next(f for f in dashboard.load(store).flows if f.flow == "orders_sync")
    assert orders.verdict == "amber" and orders.reasons == ("erp rate budget saturated (callers wait 1.6 s)",)
