"""orders_reconciliation: daily report: store orders vs ERP orders of a day."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task

from erpsync_airflow.defaults import START_DATE, dag_tags, deadline_for, flow_spec, task_defaults

SPEC = flow_spec("orders_reconciliation")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    schedule=CronDataIntervalTimetable(SPEC.schedule, timezone="UTC"),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    doc_md="""
### orders_reconciliation
Daily at 02:30 UTC, for the previous day (its data interval; param `date` for another day):
every paid storefront order placed that day against the ERP's sales orders of that day, with
order counts, totals and tax per currency on both sides and every difference listed
(missing, unexpected, duplicate, not confirmed in the ERP, currency, total or tax mismatch,
unmappable) in the day's drift report (`erpsync_state.drift_reports`, run id = the day), with
how many orders of each side it read and compared; both sides are read through the adapters'
mappings. It fails, its report stored, when it compared none (or too few, `min_compared_share`)
of a side's orders. Writes nothing to either system.

Records that cannot be synced land in the dead letters with their reason
(`erpsync dead-letters list --flow orders_reconciliation`). Logic: `include/erpsync/flows/reconciliation.py`.
Connections: `erp_default`, `storefront_default` (optional `erpsync_state`).
""",
)
def orders_reconciliation() -> None:
    @task
    def reconcile_orders(**context: Any) -> dict:
        """Run the core flow; the return value is its summary."""
        from erpsync.flows import reconciliation
        from erpsync_airflow.runtime import run_flow

        return run_flow("orders_reconciliation", reconciliation.run, context)

    reconcile_orders()


orders_reconciliation()
