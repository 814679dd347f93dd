"""customer_erasure: GDPR/CCPA erasure requests -> ERP anonymisation, on store webhooks and hourly."""

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

SPEC = flow_spec("customer_erasure")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # the store's customer.redact_requested webhooks (inbox Asset, issue 21) OR the hourly sweep
    schedule=events_or_cron("customer_redact", CronDataIntervalTimetable(SPEC.schedule, timezone="UTC")),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    doc_md="""
### customer_erasure
Hourly: each pending erasure request of the store anonymises the ERP customers bound to that
customer (the ERP keeps its documents, so it anonymises rather than deletes), forgets what
erpsync keeps about the person (guest cross-reference, stored answers, dead-letter payloads),
then closes the request in the store. The audit log records request id, storefront customer
id and ERP numbers only, never the personal data. An ERP customer that only matches by e-mail
is left alone and the request waits in the dead letters (`erasure_needs_review`). On Tryton
the ERP's own "Erase" wizard does the anonymising and refuses while the party has pending sales
or shipments: the request waits in the dead letters with that reason and is tried again each
run. On Vendure a request is a customer in the group `erasure-requested`.

A `customer.redact_requested` webhook from the store starts a run within seconds (Asset
`erpsync://inbox/customer_redact`): it works the store's open requests, the named one among them,
and marks the events done (docs/event-driven.md).

Records that cannot be synced land in the dead letters with their reason
(`erpsync dead-letters list --flow customer_erasure`). Logic: `include/erpsync/flows/erasure.py`.
Connections: `erp_default`, `storefront_default` (optional `erpsync_state`).
""",
)
def customer_erasure() -> None:
    @task
    def erase_customers(**context: Any) -> dict:
        """Run the core flow; the return value is its summary. A run started by an inbox event
        works the open requests (as every run) and marks the events done."""
        from erpsync.flows import erasure
        from erpsync_airflow.inbox_assets import started_by_event
        from erpsync_airflow.runtime import run_flow

        if started_by_event(context):
            from erpsync.flows import events

            return run_flow("customer_erasure", events.since_cursor_for("customer_redact", erasure.run), context)
        return run_flow("customer_erasure", erasure.run, context)

    review_dead_letters("customer_erasure")(erase_customers())


customer_erasure()
