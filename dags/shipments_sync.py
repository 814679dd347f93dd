"""shipments_sync: ERP shipments -> storefront fulfillments, on ERP webhooks and every 5 minutes."""

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

SPEC = flow_spec("shipments_sync")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # the ERP's shipment.created webhooks (inbox Asset, issue 21) OR the cron sweep
    schedule=events_or_cron("shipment", CronDataIntervalTimetable(SPEC.schedule, timezone="UTC")),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    doc_md="""
### shipments_sync
Every 5 minutes, ERP shipments changed since the flow's cursor become storefront fulfillments:
one per package handed to its carrier (partial shipments, several packages and carriers per
order), each with its carrier and tracking number and the lines and quantities in it, written
once (ledger key `fulfillment:<shipment>:<tracking>`). The store notifies the customer per
fulfillment, so only shipped packages reach the customer; a package still pending comes again
when the ERP marks it shipped. Item codes map back to SKUs through the cross-reference.
Each batch passes the `shipment` quality gate (Great Expectations) first: bad shipments are
quarantined with the failed check and value, a batch over the flow's bad-share limit (10 %,
param `quality_max_bad_share`) fails the run before anything is written. The same flow runs
on the sandbox or Tryton -> Vendure: the Connections' `extra.adapter` decides.

A `shipment.created` webhook from the ERP starts a run within seconds (Asset
`erpsync://inbox/shipment`): it reads the shipments changed since the cursor, which include the
ones the events name, and marks those events done (docs/event-driven.md).

Records that cannot be synced land in the dead letters with their reason
(`erpsync dead-letters list --flow shipments_sync`). Logic: `include/erpsync/flows/shipments.py`.
Connections: `erp_default`, `storefront_default` (optional `erpsync_state`).
""",
)
def shipments_sync() -> None:
    @task
    def sync_shipments(**context: Any) -> dict:
        """Run the core flow; the return value is its summary. A run started by an inbox event
        reads everything since the cursor (as a manual run) and marks the events done."""
        from erpsync.flows import shipments
        from erpsync_airflow.inbox_assets import started_by_event
        from erpsync_airflow.runtime import run_flow

        if started_by_event(context):
            from erpsync.flows import events

            return run_flow("shipments_sync", events.since_cursor_for("shipment", shipments.run), context)
        return run_flow("shipments_sync", shipments.run, context)

    review_dead_letters("shipments_sync")(sync_shipments())


shipments_sync()
