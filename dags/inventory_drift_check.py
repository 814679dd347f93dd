"""inventory_drift_check: nightly full comparison of ERP availability and store stock."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from erpsync_airflow.defaults import START_DATE, dag_tags, deadline_for, flow_spec, task_defaults

SPEC = flow_spec("inventory_drift_check")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    schedule=CronDataIntervalTimetable(SPEC.schedule, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    tags=dag_tags(SPEC),
    params={
        "heal": Param(False, type="boolean", description="push the ERP value where the store drifted"),
        "max_items": Param(50000, type="integer", minimum=0, description="differences stored as report items"),
        "location_map": Param(None, type=["object", "null"], description="as in inventory_sync"),
        "channel_shares": Param(None, type=["object", "null"], description="as in inventory_sync"),
        "channel": Param(None, type=["string", "null"], description="as in inventory_sync"),
        "channel_demand": Param(None, type=["string", "object", "null"], description="as in inventory_sync"),
        "demand_window_hours": Param(24, type="number", exclusiveMinimum=0, description="as in inventory_sync"),
    },
    doc_md="""
### inventory_drift_check
Nightly (03:15 UTC): every SKU-location's ERP availability against the store's stock, through
both systems' bulk exports (or each record through the adapter's mapping where a system has
none: Tryton, Vendure). It fails, its report stored, when it compared no SKU-location or could
read less than `min_compared_share` of a side's records (the watchdog's `nothing_compared`). Each difference is classified (`quantity_mismatch`, `kit_mismatch`,
`missing_in_store`, `missing_in_erp`, `unmapped_location`) and stored as a drift report
(`erpsync` CLI / state store `drift_reports`); the summary e-mail is rendered, logged and sent (SMTP notifier, when `smtp_default` exists).

With `heal: true` the drifted SKU-locations are re-read from the ERP and pushed, except where a
newer write (inventory_sync or the fast lane) reached them after the check began.

Logic: `include/erpsync/flows/inventory_drift.py`. Runbook: docs/runbooks/oversell.md.
""",
)
def inventory_drift_check() -> None:
    @task
    def check_drift(**context: Any) -> dict:
        """Run the core flow; the return value is its summary."""
        from erpsync.flows import inventory_drift
        from erpsync_airflow.runtime import run_flow

        return run_flow("inventory_drift_check", inventory_drift.run, context)

    check_drift()


inventory_drift_check()
