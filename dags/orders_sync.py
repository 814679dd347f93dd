"""orders_sync: paid storefront orders -> ERP sales orders, on webhook events and every minute."""

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
from erpsync_airflow.inbox_assets import events_or_cron, sweep_cron

SPEC = flow_spec("orders_sync")  # schedule, pool, deadline, tags: erpsync.flows.specs
#: the safety-net sweep (ERPSYNC_SWEEP_CRON_ORDERS_SYNC; with webhooks on, e.g. "*/15 * * * *")
SWEEP = sweep_cron(SPEC.name, SPEC.schedule)


def _partitions() -> int:
    """A run's orders split over this many mapped tasks (several Celery workers write one backlog):
    ERPSYNC_PARTITIONS_ORDERS_SYNC, else the spec's (1: the single task sync_orders, as always)."""
    import os

    raw = os.environ.get("ERPSYNC_PARTITIONS_ORDERS_SYNC", "")
    if not raw.strip():
        return SPEC.partitions
    from erpsync.flows.orders import configured_partitions  # the core only when it is set

    return configured_partitions(SPEC.partitions, raw)


PARTITIONS = _partitions()


@dag(
    dag_id="orders_sync",
    # inbox Asset events (webhooks, issue 21) OR the sweep: a data-interval timetable, each sweep
    # run reads its own slice [start, end)
    schedule=events_or_cron("order", CronDataIntervalTimetable(SWEEP, timezone="UTC")),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    # orders written at the same time (a bounded pool; one customer's orders stay in sequence)
    params={"write_concurrency": 8},
    default_args=task_defaults(SPEC.name),
    deadline=deadline_for(SPEC.name, SWEEP),
    tags=dag_tags(SPEC),
    doc_md="""
### orders_sync
Near real time: paid storefront orders become ERP sales orders, exactly once: seconds after the
store's webhook (a run started by the `erpsync_inbox_order` Asset event reads the orders the
inbox names, all pending events in one run), and every minute by cursor (the sweep,
`ERPSYNC_SWEEP_CRON_ORDERS_SYNC`), which catches every event that never came.

- **Customers first.** An order waits for its customer: the core flow syncs the order's
  customer (or finds the guest's match) before it writes the sales order, order by order. It
  does not wait for a `customers_sync` run.
- **Exactly once.** Every write carries an idempotency key kept in the state store's ledger;
  when a write's outcome is unknown the flow looks the sales order up by its external reference
  before writing again.
- **Slices.** A scheduled run reads the orders updated in its own minute (plus an overlap of
  `lookback_minutes`, param, default 5), reaching back to the flow's cursor when runs were
  missed (scheduler down, catchup off), so no gap is left. A backfill reads exactly its
  interval and leaves the cursor alone. A manual run (Trigger DAG) reads everything changed
  since the cursor (`make up` triggers one at first start). Re-reading is harmless: the ledger
  skips orders already written.
- One run at a time (`max_active_runs=1`), no catchup. Inside a run, up to `write_concurrency`
  (param, default 8) orders are written at once; orders of one customer never run together.
- **Partitions** (`ERPSYNC_PARTITIONS_ORDERS_SYNC=N`, default 1): the run's orders split over N
  mapped `sync_orders` tasks by a stable hash of each order's customer (so several Celery workers
  write one backlog); `save_cursor` moves the cursor once all of them succeeded. An inbox-event
  run is synced by partition 0. See docs/deployment.md (sizing).

Records that cannot be synced land in the dead letters with their reason
(`erpsync dead-letters list --flow orders_sync`). Logic: `include/erpsync/flows/orders.py`.
Connections: `erp_default`, `storefront_default` (optional `erpsync_state`).
""",
)
def orders_sync() -> None:
    @task
    def sync_orders(**context: Any) -> dict:
        """Run the core flow; the return value is its summary. A run started by an inbox event
        syncs the orders the inbox names; any other run reads by cursor (the sweep)."""
        from erpsync_airflow.inbox_assets import started_by_event
        from erpsync_airflow.runtime import run_flow

        if started_by_event(context):
            from erpsync.flows import events

            return run_flow("orders_sync", events.orders_from_inbox, context)
        from erpsync.flows import orders

        return run_flow("orders_sync", orders.run, context)

    if PARTITIONS == 1:
        review_dead_letters("orders_sync")(sync_orders())
        return

    @task(task_id="sync_orders")
    def sync_partition(partition: int, **context: Any) -> dict:
        """One partition of the run's orders (``flows.orders.Partition``); its summary for XCom."""
        from erpsync_airflow.inbox_assets import started_by_event
        from erpsync_airflow.runtime import run_orders_partition

        return run_orders_partition(partition, PARTITIONS, context, by_event=started_by_event(context))

    @task(pool="default_pool")
    def save_cursor(results: list[dict], **context: Any) -> dict:
        """Every partition succeeded: the cursor moves to what they read; the run's summary."""
        from erpsync_airflow.runtime import finish_orders_partitions

        return finish_orders_partitions(results, context)

    review_dead_letters("orders_sync")(save_cursor(sync_partition.expand(partition=list(range(PARTITIONS)))))


orders_sync()
