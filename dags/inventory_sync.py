"""inventory_sync: ERP stock -> store availability every 5 minutes, only the differences."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, task

from erpsync_airflow.assets import CATALOG
from erpsync_airflow.defaults import START_DATE, dag_tags, deadline_for, flow_spec, task_defaults
from erpsync_airflow.inbox_assets import fast_lane_skus

SPEC = flow_spec("inventory_sync")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # every 5 minutes, and at once when catalog_sync published products (their stock goes next)
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable(SPEC.schedule, timezone="UTC"), assets=[CATALOG]
    ),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    params={
        "location_map": Param(None, type=["object", "null"],
                              description="ERP warehouse -> store location (null: the store's locations by name)"),
        "channel_shares": Param(None, type=["object", "null"], description='e.g. {"web": 70, "marketplace": 20, "b2b": 10}'),
        "channel": Param(None, type=["string", "null"], description="this store's channel in channel_shares"),
        "channel_demand": Param(None, type=["string", "object", "null"],
                                description='"observed": each SKU\'s sales per channel in the last demand_window_hours '
                                            "(a channel selling below its share releases units to one selling above it); "
                                            'or fixed units per channel, e.g. {"web": 40}'),
        "demand_window_hours": Param(24, type="number", exclusiveMinimum=0,
                                     description="the sales window of channel_demand observed"),
        "fast_lane_skus": Param(fast_lane_skus(), type="array",
                                description="hot SKUs left to inventory_fast_lane (ERPSYNC_FAST_LANE_SKUS)"),
        "lookback_minutes": Param(5, type="integer", minimum=0, description="overlap before the stock cursor"),
    },
    doc_md="""
### inventory_sync
Every 5 minutes (and right after `catalog_sync` updates the `erpsync://catalog` asset): ERP
stock changed since the cursor becomes store availability, pushing only what differs from what
was last pushed, in batches of the store's limit (250).

- **Available to sell** = on hand - allocated - reserved - damaged - quarantined - safety stock,
  never below zero; per store location through `location_map`; kits from their components;
  the store's share of the pool when `channel_shares` is set, reallocated from the channels'
  observed sales with `channel_demand: "observed"`.
- **Only products the store has**: other SKUs are reported (`not_in_store`), never pushed;
  warehouses the map does not know are reported (`unmapped_location`).
- **Never overlaps**: one run at a time, and a run is stopped after 4 minutes (it takes seconds
  at a million SKU-locations with 1 % changed; see `python -m benchmarks inventory`).
- Hot SKUs in `fast_lane_skus` are left to `inventory_fast_lane`.

Logic: `include/erpsync/flows/inventory.py`. Runbook: docs/runbooks/oversell.md.
""",
)
def inventory_sync() -> None:
    @task(execution_timeout=dt.timedelta(minutes=4))
    def sync_inventory(**context: Any) -> dict:
        """Run the core flow; the return value is its summary."""
        from erpsync.flows import inventory
        from erpsync_airflow.runtime import run_flow

        return run_flow("inventory_sync", inventory.run, context)

    sync_inventory()


inventory_sync()
