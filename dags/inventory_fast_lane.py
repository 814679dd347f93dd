"""inventory_fast_lane: hot SKUs' stock reaches the store within 60 seconds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from erpsync_airflow.defaults import START_DATE, dag_tags, deadline_for, flow_spec, task_defaults

SPEC = flow_spec("inventory_fast_lane")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # every minute; inside the run the hot SKUs are polled every poll_seconds (docs/architecture.md)
    schedule=CronDataIntervalTimetable(SPEC.schedule, timezone="UTC"),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name, retries=1, retry_delay=dt.timedelta(seconds=5)),
    tags=dag_tags(SPEC),
    params={
        "fast_lane_skus": Param([], type="array", description="the hot SKUs (flash sales, launches)"),
        "poll_seconds": Param(10, type="integer", minimum=1, description="seconds between two reads of the hot SKUs"),
        "budget_seconds": Param(45, type="integer", minimum=0, description="how long one run keeps polling"),
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

Why a schedule and not an Asset watcher: see docs/architecture.md ("inventory_fast_lane").
Logic: `include/erpsync/flows/inventory.py` (`run_fast_lane`).
""",
)
def inventory_fast_lane() -> None:
    @task(execution_timeout=dt.timedelta(seconds=58))
    def push_hot_skus(**context: Any) -> dict:
        """Poll and push the hot SKUs for one minute; the return value is the summary."""
        from erpsync.flows import inventory
        from erpsync_airflow.runtime import run_flow

        return run_flow("inventory_fast_lane", inventory.run_fast_lane, context)

    push_hot_skus()


inventory_fast_lane()
