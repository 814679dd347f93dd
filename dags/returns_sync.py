"""returns_sync: store returns <-> ERP RMAs, credit memos and refunds, on store webhooks and every 10 minutes."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task

from erpsync_airflow.defaults import (
    START_DATE,
    dag_tags,
    deadline_for,
    flow_spec,
    review_dead_letters,
    task_defaults,
)
from erpsync_airflow.inbox_assets import events_or_cron

SPEC = flow_spec("returns_sync")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # the store's return/refund webhooks (inbox Asset, issue 21) OR the cron sweep
    schedule=events_or_cron("return", CronDataIntervalTimetable(SPEC.schedule, timezone="UTC")),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    doc_md="""
### returns_sync
Every 10 minutes: returns opened in the store become ERP RMAs (exactly once); the ERP's status,
dispositions and credit memo come back, and the credited lines are refunded in the store
(param `refund_amount`: `credit_memo` (default) or `storefront`). Each refund is checked
against its credit memo to the cent; a difference is logged, counted as
`refund_mismatch:<cause>` and kept in the run's drift report with its cause (a rounding
difference names the two rounding conventions). Restocked units are back on hand in the ERP
and reach the store through inventory_sync. Both directions pass the `return` quality gate
first (bad records quarantined with the check and value; a batch over 10 % bad fails the run).
The same flow runs on the sandbox or Vendure -> Tryton (a Vendure refund recorded with lines
is the return, a Tryton return sale the RMA): the Connections' `extra.adapter` decides.

A `return.requested`, `return.updated` or `refund.created` webhook from the store starts a run
within seconds (Asset `erpsync://inbox/return`): it reads what changed since the cursors, which
includes the returns the events name, and marks those events done (docs/event-driven.md).

Records that cannot be synced land in the dead letters with their reason
(`erpsync dead-letters list --flow returns_sync`). Logic: `include/erpsync/flows/returns.py`.
Connections: `erp_default`, `storefront_default` (optional `erpsync_state`).
""",
)
def returns_sync() -> None:
    @task
    def sync_returns(**context: Any) -> dict:
        """Run the core flow; the return value is its summary. A run started by an inbox event
        reads everything since the cursors (as a manual run) and marks the events done."""
        from erpsync.flows import returns
        from erpsync_airflow.inbox_assets import started_by_event
        from erpsync_airflow.runtime import run_flow

        if started_by_event(context):
            from erpsync.flows import events

            return run_flow("returns_sync", events.since_cursor_for("return", returns.run), context)
        return run_flow("returns_sync", returns.run, context)

    review_dead_letters("returns_sync")(sync_returns())


returns_sync()
