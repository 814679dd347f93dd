"""orders_sync: paid storefront orders -> ERP sales orders, every minute."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, dag, task

from erpsync_airflow.defaults import START_DATE, TAGS, deadline_for, review_dead_letters, task_defaults


@dag(
    dag_id="orders_sync",
    # a data-interval timetable: each run reads its own slice [start, end) (every minute)
    schedule=CronDataIntervalTimetable("* * * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    # orders written at the same time (a bounded pool; one customer's orders stay in sequence)
    params={"write_concurrency": 8},
    default_args=task_defaults("orders_sync"),
    deadline=deadline_for("orders_sync", "* * * * *"),
    tags=[*TAGS, "orders"],
    doc_md="""
### orders_sync
Near real time: every minute, paid storefront orders become ERP sales orders, exactly once.

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

Records that cannot be synced land in the dead letters with their reason
(`erpsync dead-letters list --flow orders_sync`). Logic: `include/erpsync/flows/orders.py`.
Connections: `erp_default`, `storefront_default` (optional `erpsync_state`).
""",
)
def orders_sync() -> None:
    @task
    def sync_orders(**context: Any) -> dict:
        """Run the core flow; the return value is its summary."""
        from erpsync.flows import orders
        from erpsync_airflow.runtime import run_flow

        return run_flow("orders_sync", orders.run, context)

    review_dead_letters("orders_sync")(sync_orders())


orders_sync()
