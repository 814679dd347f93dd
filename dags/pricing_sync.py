"""pricing_sync: ERP prices -> storefront prices and price lists, on ERP webhooks and hourly, behind the price guard."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from erpsync_airflow.defaults import START_DATE, dag_tags, deadline_for, flow_spec, task_defaults
from erpsync_airflow.inbox_assets import events_or_cron

SPEC = flow_spec("pricing_sync")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    # the ERP's price.changed webhooks (inbox Asset, issue 21) OR the hourly sweep
    schedule=events_or_cron("price", CronDataIntervalTimetable(SPEC.schedule, timezone="UTC")),
    start_date=START_DATE,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    params={
        "full_pass": Param(False, type="boolean", description="read every ERP price and the store's prices"),
        "lookback_minutes": Param(15, type="integer", minimum=0, description="overlap before the cursor"),
        "price_guard_threshold_pct": Param(20, type="number", minimum=0,
                                           description="hold changes beyond this percentage"),
        "price_guard_below_cost": Param(True, type="boolean", description="hold prices below the item cost"),
        "shop_currency": Param("USD", type="string", description="currency of the variant price"),
        "rounding": Param({}, type="object",
                          description='per currency, e.g. {"EUR": {"mode": "half_even", "minor_units": 2}}'),
    },
    doc_md="""
### pricing_sync
Hourly (minute 5): ERP base, sale, group and contract prices, with quantity breaks and per
currency, become storefront variant prices and price lists.

- **Price guard**: a change to zero, below cost, or beyond `price_guard_threshold_pct` (20 %) of
  the price it replaces is **held** in the approvals table and not published; the store keeps the
  old price and the rest of the batch goes on. An e-mail lists what was held. A person decides:
  `erpsync approvals list --flow pricing_sync`, `erpsync approvals approve ID --by NAME`,
  `erpsync approvals reject ID --by NAME --note WHY`; approved changes go out in the next run.
  Runbook: `docs/runbooks/price-cascade.md`.
- **Sales** start and end on their dates (the run after the date, so within the hour).
- **Rounding** per currency (`rounding` param over ISO 4217 minor units, half-up), applied once.
- Only changed prices are written, in batches of 250; a rerun writes nothing.

A `price.changed` webhook from the ERP starts a run within seconds (Asset `erpsync://inbox/price`):
it reads the prices changed since the cursor, which include the named ones, through the same
guard, and marks the events done (docs/event-driven.md). Tryton sends no webhooks: hourly there.

Logic: `include/erpsync/flows/pricing.py`. Connections: `erp_default`, `storefront_default`.
""",
)
def pricing_sync() -> None:
    @task
    def sync_prices(**context: Any) -> dict:
        """Run the core flow; the return value is its summary. A run started by an inbox event
        reads the prices changed since the cursor (as a manual run) and marks the events done."""
        from erpsync.flows import pricing
        from erpsync_airflow.inbox_assets import started_by_event
        from erpsync_airflow.runtime import run_flow

        if started_by_event(context):
            from erpsync.flows import events

            return run_flow("pricing_sync", events.since_cursor_for("price", pricing.run), context)
        return run_flow("pricing_sync", pricing.run, context)

    sync_prices()


pricing_sync()
