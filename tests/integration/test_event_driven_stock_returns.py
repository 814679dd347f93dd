"""The inventory fast lane, returns_sync, pricing_sync and customer_erasure on events through
Airflow (issue 21): the sandbox's
signed webhooks -> the receiver (HTTP) -> the inbox -> the triggerer's InboxTrigger (one Asset
event for the burst) -> one run (``dag.test()``, in process) that re-reads the named records from
the API and syncs them; the rows are done afterwards.

``dag.test()`` cannot start an asset-triggered run, so the event run is started with conf
``{"source": "inbox"}``, which takes the same path (``inbox_assets.started_by_event``); the real
scheduler + triggerer path is measured by ``python -m benchmarks events --scenario stock``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

from erpsync import inbox  # noqa: E402
from erpsync.flows import inventory  # noqa: E402
from erpsync.state import StateStore  # noqa: E402
from tests.fixtures.webhooks import events_until, serve_receiver, settle  # noqa: E402
from tests.integration import test_airflow_flows as _flows  # noqa: E402
from tests.integration.test_flows_sandbox import ctx_for, sync_all  # noqa: E402
from tests.integration.test_shipments_sandbox import place_order  # noqa: E402

_task_states, without_deadline = _flows._task_states, _flows.without_deadline
connections, no_connections = _flows.connections, _flows.no_connections

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

SECRET, ERP_SECRET = "whsec-events-returns", "whsec-events-stock"
ZERO = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
#: seconds the sandbox may take to send its webhooks: a wait for a condition, generous for a loaded
#: machine (latency is measured by `python -m benchmarks events`, not asserted here)
SETTLE = 120


@pytest.fixture(scope="module")
def event_dags() -> dict[str, Any]:
    airflow_home.migrate()
    bag = DagBag(dag_folder=str(airflow_home.DAGS))
    assert bag.import_errors == {}
    return {d: without_deadline(bag.dags[d])
            for d in ("inventory_fast_lane", "returns_sync", "pricing_sync", "customer_erasure")}


def _available(sf: Any, sku: str, loc: str = "MAIN") -> int:
    return int(next(r for r in sf.inventory_for([sku]) if r["location_id"] == loc)["available"])


@pytest.fixture
def store(connections) -> StateStore:
    s = StateStore.from_url()
    s.migrate()
    yield s
    s.close()


def test_a_hot_skus_stock_change_reaches_the_store_on_its_event_and_other_items_are_left_to_the_cycle(
        event_dags, connections, store, monkeypatch) -> None:
    from erpsync_airflow.hooks import ErpHook, StorefrontHook
    from erpsync_airflow.triggers import InboxTrigger

    sb = connections
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_ERP", ERP_SECRET)
    erp, storefront = ErpHook().get_conn(), StorefrontHook().get_conn()
    hot, cold = "SKU-000007", "SKU-000008"
    # the items and the store's SKUs known, the store levelled with the ERP (as inventory_sync leaves it)
    inventory.run(ctx_for("inventory_sync", store, erp, storefront, "inv-0", fast_lane_skus=[hot]))
    cold_before = _available(storefront, cold)
    with serve_receiver(store) as url:
        r = httpx.post(f"{sb.erp_url}/_admin/webhooks", timeout=5, json={
            "url": f"{url}/erp", "secret": ERP_SECRET, "events": ["stock.changed"],
            "faults": {"duplicate": 1.0}})
        assert r.status_code == 200, r.text
        # the ERP's stock moves: the hot SKU's item twice (two events), a cold one once
        for on_hand in (40, 42):
            httpx.post(f"{sb.erp_url}/_admin/stock", json={"item_code": "ITEM-000007", "warehouse": "MAIN",
                                                           "on_hand": on_hand, **ZERO}, timeout=5).raise_for_status()
        httpx.post(f"{sb.erp_url}/_admin/stock", json={"item_code": "ITEM-000008", "warehouse": "MAIN",
                                                       "on_hand": cold_before + 17, **ZERO},
                   timeout=5).raise_for_status()
        counts = settle(sb.erp_url, timeout=SETTLE)
        assert counts["duplicated"] == 3
        rows = inbox.open_rows(store, "stock")
        assert sorted(r.record_id for r in rows) == ["ITEM-000007", "ITEM-000007", "ITEM-000008"]  # deduped
        assert _available(storefront, hot) != 42

        # the burst is one Asset event: the trigger fires once, and its next polls fire nothing
        # (how soon is measured by `python -m benchmarks events --scenario stock`, not here)
        fired = asyncio.run(events_until(InboxTrigger(entity="stock", poll_interval=0.05), 1))
        assert [e.payload["rows"] for e in fired] == [3]
        run = event_dags["inventory_fast_lane"].test(
            run_conf={"source": "inbox", "fast_lane_skus": [hot], "budget_seconds": 0})
        assert str(run.state) == "success", _task_states(run)
        # the event's item read again from the ERP: the store sells what the ERP holds now
        assert _available(storefront, hot) == 42
        assert _available(storefront, cold) == cold_before  # not hot: left to inventory_sync
        last = store.last_runs("inventory_fast_lane", limit=1)[0]
        assert last.run_id == run.run_id and last.done >= 1
        assert inbox.open_rows(store, "stock") == []
        # ... which pushes it on its next cycle (by cursor)
        inventory.run(ctx_for("inventory_sync", store, erp, storefront, "inv-1", fast_lane_skus=[hot]))
        assert _available(storefront, cold) == cold_before + 17


def test_a_return_opened_in_the_store_reaches_the_erp_on_its_event(event_dags, connections, store,
                                                                   monkeypatch) -> None:
    from erpsync_airflow.hooks import ErpHook, StorefrontHook
    from erpsync_airflow.triggers import InboxTrigger

    sb = connections
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_STOREFRONT", SECRET)
    erp, storefront = ErpHook().get_conn(), StorefrontHook().get_conn()
    order = place_order(sb, [("SKU-000002", 3)], email="event.return@example.com")
    sync_all(store, erp, storefront)
    so = erp.find_sales_order(order["id"])
    assert so is not None
    sb.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
    with serve_receiver(store) as url:
        r = httpx.post(f"{sb.storefront_url}/_admin/webhooks", timeout=5, json={
            "url": f"{url}/storefront", "secret": SECRET, "events": ["return.requested", "return.updated"]})
        assert r.status_code == 200, r.text
        ret = httpx.post(f"{sb.storefront_url}/admin/api/orders/{order['id']}/returns",
                         headers={"Authorization": f"Bearer {sb.token}"}, timeout=10,
                         json={"line_items": [{"sku": "SKU-000002", "quantity": 1, "reason": "too small"}]}).json()
        settle(sb.storefront_url, timeout=SETTLE)
        assert [r.record_id for r in inbox.open_rows(store, "return")] == [ret["id"]]
        fired = asyncio.run(events_until(InboxTrigger(entity="return", poll_interval=0.05), 1))
        assert [e.payload["rows"] for e in fired] == [1]
        assert erp.find_return(ret["id"]) is None
        run = event_dags["returns_sync"].test(run_conf={"source": "inbox"})
        assert str(run.state) == "success", _task_states(run)
        rma = erp.find_return(ret["id"])
        assert rma is not None and rma["order_no"] == so["order_no"] and rma["lines"][0]["qty"] == 1
        assert storefront.get_return(ret["id"])["erp_reference"] == rma["rma_no"]
        # the store's update (status open, the RMA number) came back as return.updated: the next
        # event run writes nothing twice
        settle(sb.storefront_url, timeout=SETTLE)
        again = event_dags["returns_sync"].test(run_conf={"source": "inbox"})
        assert str(again.state) == "success", _task_states(again)
        assert store.last_runs("returns_sync", limit=1)[0].done == 0
        assert inbox.open_rows(store, "return") == []


def test_the_fast_lane_and_returns_run_on_their_inbox_assets_or_their_cron(event_dags) -> None:
    from airflow.sdk import AssetOrTimeSchedule

    from erpsync_airflow.triggers import InboxTrigger

    for dag_id, entity, cron in (("inventory_fast_lane", "stock", "* * * * *"),
                                 ("returns_sync", "return", "*/10 * * * *"),
                                 ("pricing_sync", "price", "5 * * * *"),
                                 ("customer_erasure", "customer_redact", "15 * * * *")):
        timetable = event_dags[dag_id].timetable
        assert isinstance(timetable, AssetOrTimeSchedule), dag_id
        assert timetable.timetable.expression == cron  # the sweep stays (Tryton sends no webhooks)
        asset = timetable.asset_condition
        assert asset.uri == f"erpsync://inbox/{entity}"
        (watcher,) = asset.watchers
        assert isinstance(watcher.trigger, InboxTrigger) and watcher.trigger.entity == entity
    params = event_dags["inventory_fast_lane"].params
    assert params["budget_seconds"] == 45 and params["fast_lane_skus"] == []  # polling as before by default


def test_an_erp_price_change_and_a_store_erasure_request_are_synced_on_their_events(
        event_dags, connections, store, monkeypatch) -> None:
    from erpsync_airflow.hooks import ErpHook, StorefrontHook
    from erpsync_airflow.triggers import InboxTrigger

    sb = connections
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_STOREFRONT", SECRET)
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_ERP", ERP_SECRET)
    erp, storefront = ErpHook().get_conn(), StorefrontHook().get_conn()

    def price_of(sku: str) -> str:
        return next(v["price"] for p in storefront.list_products() for v in p["variants"] if v["sku"] == sku)

    # the price book as the hourly run leaves it (the first run reads every ERP price)
    first = event_dags["pricing_sync"].test()
    assert str(first.state) == "success", _task_states(first)
    # the store's variant price comes from the ERP's LIST price (minimum quantity 1); 5 % up: inside
    # the price guard's 20 %, so it is published, not held for approval
    row = next(dict(r) for r in erp.list_prices() if r["item_code"] == "ITEM-000003"
               and r["price_list"] == "LIST" and int(r.get("min_qty") or 1) == 1)
    new_price = str((Decimal(row["price"]) * Decimal("1.05")).quantize(Decimal("0.01")))
    assert Decimal(price_of("SKU-000003")) != Decimal(new_price)
    # the person to erase: a customer of a synced order
    order = place_order(sb, [("SKU-000002", 1)], email="erase.on.event@example.com")
    sync_all(store, erp, storefront)
    cid = order["customer"]["id"]
    with serve_receiver(store) as url:
        for base, target, secret, events in ((sb.erp_url, "erp", ERP_SECRET, ["price.changed"]),
                                             (sb.storefront_url, "storefront", SECRET,
                                              ["customer.redact_requested"])):
            r = httpx.post(f"{base}/_admin/webhooks", timeout=5, json={
                "url": f"{url}/{target}", "secret": secret, "events": events})
            assert r.status_code == 200, r.text
        httpx.post(f"{sb.erp_url}/_admin/prices", timeout=5, json={"set": [{**row, "price": new_price}]}
                   ).raise_for_status()
        sb.admin("storefront", "POST", "erasure_requests", {"customer_id": cid})
        settle(sb.erp_url, timeout=SETTLE)
        settle(sb.storefront_url, timeout=SETTLE)
        assert [r.record_id for r in inbox.open_rows(store, "price")] == ["ITEM-000003"]
        (request,) = [r.record_id for r in inbox.open_rows(store, "customer_redact")]
        for entity in ("price", "customer_redact"):
            fired = asyncio.run(events_until(InboxTrigger(entity=entity, poll_interval=0.05), 1))
            assert [e.payload["rows"] for e in fired] == [1], entity

        run = event_dags["pricing_sync"].test(run_conf={"source": "inbox"})
        assert str(run.state) == "success", _task_states(run)
        assert Decimal(price_of("SKU-000003")) == Decimal(new_price)  # read again from the ERP, through the guard
        assert inbox.open_rows(store, "price") == []

        assert [r["id"] for r in storefront.list_erasure_requests(status="pending")] == [request]
        run = event_dags["customer_erasure"].test(run_conf={"source": "inbox"})
        assert str(run.state) == "success", _task_states(run)
        assert storefront.list_erasure_requests(status="pending") == []
        assert store.last_runs("customer_erasure", limit=1)[0].done == 1
        assert inbox.open_rows(store, "customer_redact") == []
