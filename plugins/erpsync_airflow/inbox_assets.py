"""Assets fed by the webhook inbox (issue 21) and the schedules that combine them with a sweep.

``INBOX["order"]`` is updated by an ``AssetWatcher`` whose ``InboxTrigger`` watches the inbox's
``order`` rows; ``orders_sync`` is scheduled on it OR its cron (``AssetOrTimeSchedule``); the same
for ``shipment`` (shipments_sync), ``stock`` (inventory_fast_lane) and ``return`` (returns_sync). The cron
run is the safety net: it reads by cursor and finds every record whose event never came. Its
expression is ``ERPSYNC_SWEEP_CRON_<DAG_ID>`` (read when the DAG file is parsed), else the DAG's
own default: with webhooks on, a slow sweep (``*/15 * * * *``) is enough; without them the polling
cadence stays as it was.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, AssetWatcher

from erpsync_airflow.triggers import InboxTrigger

#: seconds between two polls of the inbox by the triggerer
POLL_INTERVAL = 1.0


def inbox_asset(entity: str) -> Asset:
    return Asset(name=f"erpsync_inbox_{entity}", uri=f"erpsync://inbox/{entity}",
                 watchers=[AssetWatcher(name=f"erpsync_inbox_{entity}",
                                        trigger=InboxTrigger(entity=entity, poll_interval=POLL_INTERVAL))])


#: the entities whose flows run on events: orders_sync, shipments_sync, the inventory fast lane
#: (ERP ``stock.changed``), returns_sync (store ``return.*`` / ``refund.created``), pricing_sync
#: (ERP ``price.changed``), customer_erasure (store ``customer.redact_requested``)
INBOX = {entity: inbox_asset(entity)
         for entity in ("order", "shipment", "stock", "return", "price", "customer_redact")}


def fast_lane_skus() -> list[str]:
    """``ERPSYNC_FAST_LANE_SKUS`` (comma-separated; read when the DAG files are parsed): the default
    of the param ``fast_lane_skus`` of inventory_sync and inventory_fast_lane, which also holds
    for the runs the scheduler starts on events (a scheduled run takes the DAG's default params)."""
    raw = os.environ.get("ERPSYNC_FAST_LANE_SKUS", "")
    return [s.strip() for s in raw.split(",") if s.strip()]


def fast_lane_budget() -> int:
    """``ERPSYNC_FAST_LANE_BUDGET_SECONDS`` (default 45): how long a scheduled fast-lane run keeps
    polling. With the ERP's stock webhooks on, 0: each cron run is one pass (the sweep) and never
    holds an event run back (``max_active_runs=1``)."""
    raw = os.environ.get("ERPSYNC_FAST_LANE_BUDGET_SECONDS", "").strip()
    if not raw:
        return 45
    if not raw.isdigit() or int(raw) > 50:
        raise ValueError(f"ERPSYNC_FAST_LANE_BUDGET_SECONDS={raw!r} must be a whole number of seconds from 0 to 50 "
                         "(a run must end before the next minute's)")
    return int(raw)


def sweep_cron(dag_id: str, default: str) -> str:
    """``ERPSYNC_SWEEP_CRON_<DAG_ID>`` or ``default``: the cron of the DAG's safety-net sweep."""
    return os.environ.get(f"ERPSYNC_SWEEP_CRON_{dag_id.upper()}", "").strip() or default


def events_or_cron(entity: str, timetable: Any) -> AssetOrTimeSchedule:
    """Run on the entity's inbox Asset events OR on ``timetable`` (the sweep)."""
    return AssetOrTimeSchedule(timetable=timetable, assets=INBOX[entity])


def started_by_event(context: dict[str, Any]) -> bool:
    """The run was started by an inbox Asset event (or triggered with conf ``{"source": "inbox"}``)."""
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    run_type = str(getattr(run_type, "value", run_type) or "")
    conf = getattr(dag_run, "conf", None) or {}
    return run_type == "asset_triggered" or (isinstance(conf, dict) and conf.get("source") == "inbox")
