"""Backfills of the time-partitioned flows against the sandbox over HTTP: each run processes exactly
its data interval, half-open ``[start, end)``, and leaves the live cursor alone.

* orders_sync through the task runtime (``run_flow`` with an Airflow-shaped backfill context, as
  ``airflow backfill create`` gives it): day 2 synced live, then days 1-3 backfilled -> every
  order once, nothing written on day 2, the cursor as the live run left it.
* orders_reconciliation as a backfill run of day 2: that day's report, source == target.
* shipments_sync and returns_sync: two records one second apart; a backfill ending exactly at the
  second one's change time takes only the first, the next interval starting there takes the second.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.utils.types import DagRunType  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from erpsync.flows import orders, reconciliation, returns, shipments  # noqa: E402
from erpsync.flows.base import parse_cursor  # noqa: E402
from erpsync.mappings.storefront_sandbox import order_from_storefront  # noqa: E402
from erpsync.model import OrderStatus  # noqa: E402
from erpsync.state import StateStore  # noqa: E402
from erpsync_airflow.runtime import run_flow  # noqa: E402
from tests.integration.test_flows_sandbox import ctx_for, sync_all  # noqa: E402
from tests.integration.test_returns_sandbox import _open_return  # noqa: E402
from tests.integration.test_shipments_sandbox import place_order  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

#: ~10 seeded orders a day over the year before 2026-11-01
DENSE = {"seed": 11, "skus": 40, "customers": 80, "orders": 3650}
DAY1 = dt.datetime(2026, 6, 10, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def connections(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox as Airflow Connections, as `make up` sets them (the state store: ERPSYNC_HOME)."""
    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DEFAULT", json.dumps({
        "conn_type": "erpsync_erp", "host": sandbox.erp_url, "login": sandbox.erp_user,
        "password": sandbox.erp_password, "extra": {"adapter": "sandbox", "timeout": 5, "page_size": 500}}))
    monkeypatch.setenv("AIRFLOW_CONN_STOREFRONT_DEFAULT", json.dumps({
        "conn_type": "erpsync_storefront", "host": sandbox.storefront_url, "password": sandbox.token,
        "extra": {"adapter": "sandbox", "timeout": 5, "page_size": 250}}))
    return sandbox


def airflow_context(run_type: str, start: dt.datetime, end: dt.datetime, **params: Any) -> dict[str, Any]:
    """What the task runtime gets from Airflow for a run of ``run_type`` over [start, end)."""
    return {
        "run_id": f"{run_type}__{start.isoformat()}",
        "dag_run": SimpleNamespace(run_type=DagRunType(run_type)),
        "data_interval_start": start,
        "data_interval_end": end,
        "params": {"write_concurrency": 4, **params},
    }


def paid_in(sf: Any, since: dt.datetime, before: dt.datetime) -> set[str]:
    """Paid, never-cancelled storefront orders updated in [since, before): what must reach the ERP."""
    out = set()
    for raw in sf.list_orders(updated_since=since, updated_before=before):
        if order_from_storefront(raw).status is OrderStatus.PAID:
            out.add(str(raw["id"]))
    return out


def erp_refs(erp: Any) -> Counter[str]:
    return Counter(str(so["external_ref"]) for so in erp.list_sales_orders())


def test_backfill_of_three_days_over_a_synced_day_writes_nothing_twice(
    seeded: Any, connections: Any, erp_adapter: Any, storefront_adapter: Any
) -> None:
    dense = seeded(**DENSE)
    store = StateStore.from_url()
    store.migrate()
    day2, day3, day4 = DAY1 + DAY, DAY1 + 2 * DAY, DAY1 + 3 * DAY

    live = run_flow("orders_sync", orders.run, airflow_context("scheduled", day2, day3))
    assert live["done"] > 5, live
    cursor_after_live = store.get_cursor("orders_sync")
    assert cursor_after_live is not None and parse_cursor(cursor_after_live) < day3

    writes: dict[str, int] = {}
    for name, start in (("day1", DAY1), ("day2", day2), ("day3", day3)):
        before, refs_before = dense.stats("erp")["sales_orders"], set(erp_refs(erp_adapter))
        summary = run_flow("orders_sync", orders.run, airflow_context("backfill", start, start + DAY))
        writes[name] = dense.stats("erp")["sales_orders"] - before
        assert summary["done"] == writes[name], (name, summary)
        assert summary["quarantined"] == 0, summary
        assert store.get_cursor("orders_sync") == cursor_after_live, f"{name}: a backfill moved the live cursor"
        # exactly its slice (plus the lookback): nothing changed at or after its end was written
        new = set(erp_refs(erp_adapter)) - refs_before
        assert new <= paid_in(storefront_adapter, start - dt.timedelta(minutes=5), start + DAY), name

    assert writes["day2"] == 0, writes  # the day synced live: every order skipped by the ledger
    assert writes["day1"] > 5 and writes["day3"] > 5, writes
    refs = erp_refs(erp_adapter)
    expected = paid_in(storefront_adapter, DAY1 - dt.timedelta(minutes=5), day4)
    assert set(refs) == expected  # none skipped at an edge (the lookback reaches 5 min before day 1)
    assert max(refs.values()) == 1 and dense.stats("erp")["duplicate_external_refs"] == 0

    # the daily report of day 2 as a backfill run: its interval [day2 02:30, day3 02:30) is day 2
    run_flow("orders_reconciliation", reconciliation.run,
             airflow_context("backfill", day2 + dt.timedelta(hours=2, minutes=30),
                             day3 + dt.timedelta(hours=2, minutes=30)))
    (report,) = [r for r in store.list_drift_reports(flow="orders_reconciliation") if r.run_id == "2026-06-11"]
    assert report.summary["differences"] == 0, report.summary
    per_currency = report.summary["per_currency"]
    assert sum(c["store_orders"] for c in per_currency.values()) > 5
    for c in per_currency.values():
        assert (c["store_orders"], c["store_total"]) == (c["erp_orders"], c["erp_total"])
    store.close()


def _backfill(ctx: Any, start: dt.datetime, end: dt.datetime) -> Any:
    ctx.run_type, ctx.interval_start, ctx.interval_end = "backfill", start, end
    return ctx


def _at(value: str) -> dt.datetime:
    return parse_cursor(value)


def test_shipments_and_returns_backfills_take_exactly_their_half_open_interval(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    first = place_order(fresh, [("SKU-000002", 1)], email="edge.one@example.com")
    second = place_order(fresh, [("SKU-000003", 1)], email="edge.two@example.com")
    sync_all(store, erp_adapter, storefront_adapter)
    store.set_cursor("shipments_sync", "2026-01-01T00:00:00Z")
    store.set_cursor("returns_sync", "2026-01-01T00:00:00Z", "store")

    def ctx(flow: str, run_id: str) -> Any:
        return ctx_for(flow, store, erp_adapter, storefront_adapter, run_id, lookback_minutes=0)

    fresh.admin("erp", "POST", "ship", {"external_ref": first["id"], "carrier": "UPS"})
    time.sleep(1.1)  # the sandbox stamps changes to the second
    fresh.admin("erp", "POST", "ship", {"external_ref": second["id"], "carrier": "DHL"})
    by_order = {s["external_ref"]: s for s in erp_adapter.list_shipments()}
    t1, t2 = _at(by_order[first["id"]]["modified_at"]), _at(by_order[second["id"]]["modified_at"])
    assert t1 < t2

    s1 = shipments.run(_backfill(ctx("shipments_sync", "bf-1"), t1 - dt.timedelta(hours=1), t2))
    assert s1.done == 1  # the shipment changed exactly at the end belongs to the next interval
    assert storefront_adapter.get_order(first["id"])["fulfillments"]
    assert not storefront_adapter.get_order(second["id"])["fulfillments"]
    s2 = shipments.run(_backfill(ctx("shipments_sync", "bf-2"), t2, t2 + dt.timedelta(hours=1)))
    assert s2.done == 1 and storefront_adapter.get_order(second["id"])["fulfillments"]
    # the default lookback overlap re-reads the first one: the ledger writes nothing twice
    again = ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "bf-3")
    s3 = shipments.run(_backfill(again, t2, t2 + dt.timedelta(hours=1)))
    assert s3.done == 0 and s3.reasons["nothing_new"] == 2
    assert [len(storefront_adapter.get_order(o["id"])["fulfillments"]) for o in (first, second)] == [1, 1]
    assert store.get_cursor("shipments_sync") == "2026-01-01T00:00:00Z"

    r1 = _open_return(fresh, first["id"], [("SKU-000002", 1)])
    time.sleep(1.1)
    r2 = _open_return(fresh, second["id"], [("SKU-000003", 1)])
    u1, u2 = _at(r1["updated_at"]), _at(r2["updated_at"])
    assert u1 < u2
    b1 = returns.run(_backfill(ctx("returns_sync", "bf-r1"), u1 - dt.timedelta(hours=1), u2))
    assert b1.reasons["opened"] == 1 and erp_adapter.find_return(r1["id"]) and not erp_adapter.find_return(r2["id"])
    b2 = returns.run(_backfill(ctx("returns_sync", "bf-r2"), u2, u2 + dt.timedelta(hours=1)))
    assert b2.reasons["opened"] == 1 and erp_adapter.find_return(r2["id"])
    assert store.get_cursor("returns_sync", "store") == "2026-01-01T00:00:00Z"
    assert store.get_cursor("returns_sync", "erp") is None

    # a scheduled run still moves the cursors
    live = ctx("returns_sync", "live-1")
    live.interval_start, live.interval_end = u2, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    returns.run(live)
    assert _at(store.get_cursor("returns_sync", "store")) >= u2
