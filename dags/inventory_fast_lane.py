"""inventory_fast_lane: hot SKUs' stock reaches the store within seconds (ERP stock webhooks) or 60 s."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from erpsync_airflow.defaults import START_DATE, dag_tags, deadline_for, flow_spec, task_defaults
from erpsync_airflow.inbox_assets import events_or_cron, fast_lane_budget, fast_lane_skus

SPEC = flow_spec("inventory_fast_lane")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # the ERP's stock.changed webhooks (inbox Asset, issue 21) OR every minute; inside a scheduled
    # run the hot SKUs are polled every poll_seconds for budget_seconds (docs/architecture.md)
    schedule=events_or_cron("stock", CronDataIntervalTimetable(SPEC.schedule, timezone="UTC")),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name, retries=1, retry_delay=dt.timedelta(seconds=5)),
    tags=dag_tags(SPEC),
    params={
        "fast_lane_skus": Param(fast_lane_skus(), type="array", description="the hot SKUs (flash sales, launches)"),
        "poll_seconds": Param(10, type="integer", minimum=1, description="seconds between two reads of the hot SKUs"),
        "budget_seconds": Param(fast_lane_budget(), type="integer", minimum=0,
                                description="how long one run keeps polling (ERPSYNC_FAST_LANE_BUDGET_SECONDS)"),
        "location_map": Param(None, type=["object", "null"], description="as in inventory_sync"),
        "channel_shares": Param(None, type=["object", "null"], description="as in inventory_sync"),
        "channel": Param(None, type=["string", "null"], description="as in inventory_sync"),
        "channel_demand": Param(None, type=["string", "object", "null"], description="as in inventory_sync"),
        "demand_window_hours": Param(24, type="number", exclusiveMinimum=0, description="as in inventory_sync"),
    },
    doc_md="""
### inventory_fast_lane
For the configured hot SKUs only (`fast_lane_skus`): a run starts every minute and polls the ERP
stock of those SKUs every `poll_seconds` (10) for `budget_seconds` (45), pushing any difference at
once. A change reaches the store within about one poll interval plus a push (~10-12 s), so well
inside 60 s even when the scheduler starts a run a few seconds late. `inventory_sync` leaves these
SKUs to this DAG, so the two never write the same SKU.

A `stock.changed` webhook from the ERP starts a run within seconds (Asset `erpsync://inbox/stock`):
one pass over the hot SKUs the named items feed, their stock read again from the ERP (never from
the event); named items that feed no hot SKU are left to `inventory_sync`. Tryton sends no
webhooks: there the polling runs stay. With webhooks on, set `ERPSYNC_FAST_LANE_BUDGET_SECONDS=0`
so the cron runs are single passes (docs/event-driven.md). Default hot SKUs:
`ERPSYNC_FAST_LANE_SKUS` (comma-separated; also the default of `inventory_sync`'s).

Logic: `include/erpsync/flows/inventory.py` (`run_fast_lane`, `run_fast_lane_for`).
""",
)
def inventory_fast_lane() -> None:
    @task(execution_timeout=dt.timedelta(seconds=58))
    def push_hot_skus(**context: Any) -> dict:
        """Poll and push the hot SKUs for one minute; a run started by an inbox event does one pass
        over the hot SKUs its events name. The return value is the summary."""
        from erpsync_airflow.inbox_assets import started_by_event
        from erpsync_airflow.runtime import run_flow

        if started_by_event(context):
            from erpsync.flows import events

            return run_flow("inventory_fast_lane", events.stock_from_inbox, context)
        from erpsync.flows import inventory

        return run_flow("inventory_fast_lane", inventory.run_fast_lane, context)

    push_hot_skus()


inventory_fast_lane()
