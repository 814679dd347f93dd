"""catalog_sync: ERP items -> storefront products, nightly."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from erpsync_airflow.assets import CATALOG
from erpsync_airflow.defaults import (
    START_DATE,
    dag_tags,
    deadline_for,
    flow_spec,
    review_dead_letters,
    task_defaults,
)

SPEC = flow_spec("catalog_sync")  # schedule, pool, deadline, tags: erpsync.flows.specs


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
        "full_pass": Param(False, type="boolean", description="read every ERP item, not only those changed"),
        "lookback_minutes": Param(60, type="integer", minimum=0, description="overlap before the cursor"),
    },
    doc_md="""
### catalog_sync
Nightly (02:30 UTC): ERP items become storefront products. The ERP is the master of the catalog.

- **Incremental**: items changed since the flow's cursor minus `lookback_minutes` (param, 60);
  trigger with `full_pass: true` to read every item (a reconciliation pass).
- **Only changes are written**: a product whose content hash equals the one in the cross
  reference is skipped; a rerun writes nothing.
- **System of record per field** (`include/erpsync/ownership.py`): only ERP-owned fields are
  written (title, vendor, type, status, variants); the storefront keeps its descriptions, tags
  and images. Prices belong to `pricing_sync` (through the price guard), except the first price
  of a new product (which must not be zero or below cost, else it is created as a draft).
- **Retired** ERP items are unpublished (`status: archived`), never deleted.

Produces the asset `erpsync://catalog` (the inventory flow waits for it). Records that cannot be
synced land in the dead letters (`erpsync dead-letters list --flow catalog_sync`).
Logic: `include/erpsync/flows/catalog.py`. Connections: `erp_default`, `storefront_default`.
""",
)
def catalog_sync() -> None:
    @task(outlets=[CATALOG])
    def sync_catalog(**context: Any) -> dict:
        """Run the core flow; the return value is its summary."""
        from erpsync.flows import catalog
        from erpsync_airflow.runtime import run_flow

        return run_flow("catalog_sync", catalog.run, context)

    review_dead_letters("catalog_sync")(sync_catalog())


catalog_sync()
