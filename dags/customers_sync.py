"""customers_sync: storefront customers -> ERP customers, every 15 minutes."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task

from erpsync_airflow.assets import CUSTOMERS
from erpsync_airflow.defaults import (
    START_DATE,
    dag_tags,
    deadline_for,
    flow_spec,
    review_dead_letters,
    task_defaults,
)

SPEC = flow_spec("customers_sync")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # a data-interval timetable: each run reads its own slice [start, end) (every 15 minutes)
    schedule=CronDataIntervalTimetable(SPEC.schedule, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    tags=dag_tags(SPEC),
    doc_md="""
### customers_sync
Copies new and changed storefront customers to the ERP every 15 minutes: each run reads the
customers changed since the flow's cursor (minus a `lookback_minutes` overlap).

Each customer is matched to an ERP customer on the normalised email, then on name + postcode,
and created when there is no match; the cross reference is stored, so a rerun or a backfill
updates instead of duplicating. Records that cannot be synced land in the dead letters with
their reason (`erpsync dead-letters list --flow customers_sync`).

Produces the asset `erpsync://customers`. Logic: `include/erpsync/flows/customers.py`.
Connections: `erp_default`, `storefront_default` (optional `erpsync_state`).
""",
)
def customers_sync() -> None:
    @task(outlets=[CUSTOMERS])
    def sync_customers(**context: Any) -> dict:
        """Run the core flow; the return value is its summary."""
        from erpsync.flows import customers
        from erpsync_airflow.runtime import run_flow

        return run_flow("customers_sync", customers.run, context)

    review_dead_letters("customers_sync")(sync_customers())


customers_sync()
