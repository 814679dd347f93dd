"""Event-driven orders through Airflow (issue 21): the sandbox's signed webhooks -> the receiver
(HTTP) -> the inbox -> the triggerer's InboxTrigger (one Asset event for a burst) -> one
orders_sync run (``dag.test()``, in process) that syncs every named order, exactly once; an order
whose event never came is synced by the cron sweep.

``dag.test()`` cannot start an asset-triggered run, so the event run is started with conf
``{"source": "inbox"}``, which takes the same path (``inbox_assets.started_by_event``); the real
scheduler + triggerer path is measured by ``python -m benchmarks events``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

from erpsync import inbox  # noqa: E402
from erpsync.flows.base import format_cursor  # noqa: E402
from erpsync.state import StateStore  # noqa: E402
from tests.fixtures.webhooks import events_until, serve_receiver, settle  # noqa: E402
from tests.integration import test_airflow_flows as _flows  # noqa: E402

_task_states, without_deadline = _flows._task_states, _flows.without_deadline
#: the sandbox as Airflow Connections (fixtures of test_airflow_flows)
connections, no_connections = _flows.connections, _flows.no_connections

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

SECRET, ERP_SECRET = "whsec-event-driven", "whsec-event-driven-erp"


@pytest.fixture(scope="module")
def event_dags() -> dict[str, Any]:
    airflow_home.migrate()
    bag = DagBag(dag_folder=str(airflow_home.DAGS))
    assert bag.import_errors == {}
    return {d: without_deadline(bag.dags[d]) for d in ("orders_sync", "shipments_sync")}


def test_a_burst_is_one_run_that_syncs_every_named_order_and_the_sweep_catches_a_missed_event(
        event_dags, connections, monkeypatch) -> None:
    from erpsync_airflow.hooks import ErpHook, StorefrontHook
    from erpsync_airflow.triggers import InboxTrigger

    sb = connections
    orders_dag = event_dags["orders_sync"]
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_STOREFRONT", SECRET)
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_ERP", ERP_SECRET)
    store = StateStore.from_url()
    store.migrate()
    erp, storefront = ErpHook().get_conn(), StorefrontHook().get_conn()
    # the last sweep ran just before the burst (its cursor): the sweep below reads what came since
    store.set_cursor("orders_sync", format_cursor(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    with serve_receiver(store) as url:
        r = httpx.post(f"{sb.storefront_url}/_admin/webhooks", timeout=5, json={
            "url": f"{url}/storefront", "secret": SECRET, "seed": 5, "events": ["order.paid"],
            "faults": {"duplicate": 0.5, "out_of_order": 0.3}})
        assert r.status_code == 200, r.text
        made = httpx.post(f"{sb.storefront_url}/_admin/orders/generate", json={"count": 12, "seed": 21},
                          timeout=10).json()["orders"]
        counts = settle(sb.storefront_url)
        assert counts["duplicated"] > 0 and counts["reordered"] > 0
        paid = [oid for oid in made if storefront.get_order(oid)["financial_status"] == "paid"]
        rows = inbox.open_rows(store, "order")
        assert sorted(r.record_id for r in rows) == sorted(paid)  # one row per event, duplicates deduped

        # the triggerer's watch: one event claims the whole burst, then nothing while it waits for its run
        fired = asyncio.run(events_until(InboxTrigger(entity="order", poll_interval=0.05), 1))
        assert [e.payload["rows"] for e in fired] == [len(rows)]

        # the one run the Asset event starts: every named order into the ERP, the rows done
        run = orders_dag.test(run_conf={"source": "inbox"})
        assert str(run.state) == "success", _task_states(run)
        last = store.last_runs("orders_sync", limit=1)[0]
        assert last.run_id == run.run_id and last.done == len(paid)
        assert [oid for oid in paid if erp.find_sales_order(oid) is None] == []
        assert inbox.open_rows(store, "order") == []
        # redelivered events of orders already synced: another run writes nothing (exactly once)
        for oid in paid[:3]:
            body = f'{{"id": "evt-again-{oid}", "type": "order.paid", "data": {{"id": "{oid}"}}}}'.encode()
            assert httpx.post(f"{url}/storefront", content=body, headers=inbox.signed_headers(SECRET, body),
                              timeout=5).status_code == 200
        again = orders_dag.test(run_conf={"source": "inbox"})
        assert str(again.state) == "success", _task_states(again)
        assert store.last_runs("orders_sync", limit=1)[0].done == 0
        refs = Counter(str(o.get("external_ref")) for o in erp.list_sales_orders())
        assert {oid: refs[oid] for oid in paid} == {oid: 1 for oid in paid}  # one ERP sales order each

        # the ERP ships one of them: its shipment.created webhook starts shipments_sync, which
        # gives the store order its fulfilment
        r = httpx.post(f"{sb.erp_url}/_admin/webhooks", timeout=5, json={
            "url": f"{url}/erp", "secret": ERP_SECRET, "events": ["shipment.created"]})
        assert r.status_code == 200, r.text
        shipped = httpx.post(f"{sb.erp_url}/_admin/ship", json={"external_ref": paid[0]}, timeout=5).json()
        settle(sb.erp_url)
        assert [r.record_id for r in inbox.open_rows(store, "shipment")] == [shipped["shipment_no"]]
        fired = asyncio.run(events_until(InboxTrigger(entity="shipment", poll_interval=0.05), 1))
        assert [e.payload["rows"] for e in fired] == [1]
        assert not storefront.get_order(paid[0]).get("fulfillments")
        ship_run = event_dags["shipments_sync"].test(run_conf={"source": "inbox"})
        assert str(ship_run.state) == "success", _task_states(ship_run)
        fulfilments = storefront.get_order(paid[0])["fulfillments"]
        assert [f.get("tracking_number") or f.get("tracking_no") for f in fulfilments] == [
            shipped["packages"][0]["tracking_no"]]
        assert inbox.open_rows(store, "shipment") == []

        # an order whose event never came (webhooks off): no inbox row, the trigger fires nothing ...
        httpx.delete(f"{sb.storefront_url}/_admin/webhooks", timeout=5)
        missed = None
        for seed in range(100, 120):
            (oid,) = httpx.post(f"{sb.storefront_url}/_admin/orders/generate", json={"count": 1, "seed": seed},
                                timeout=10).json()["orders"]
            if storefront.get_order(oid)["financial_status"] == "paid":
                missed = oid
                break
        assert missed is not None
        assert inbox.open_rows(store, "order") == []
        # nothing to fire: wait for the trigger to poll its source a few times (not a time window)
        assert asyncio.run(events_until(InboxTrigger(entity="order", poll_interval=0.05), 0, timeout=30)) == []
        assert erp.find_sales_order(missed) is None
        # ... and the sweep (a run of the cron, here by hand: reads by cursor) syncs it
        sweep = orders_dag.test()
        assert str(sweep.state) == "success", _task_states(sweep)
        assert erp.find_sales_order(missed) is not None
