"""historical_migration: migrate history (or refill a long gap) in resumable batches, on demand."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, task

from erpsync_airflow.defaults import START_DATE, dag_tags, flow_spec, task_defaults

SPEC = flow_spec("historical_migration")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # one migration at a time: it takes the systems' whole rate budget
    default_args=task_defaults(SPEC.name),
    tags=dag_tags(SPEC),
    params={
        "entity": Param("orders", type="string", enum=["customers", "products", "orders", "shipments", "returns"],
                        description="what to migrate: customers, orders and returns go store -> ERP; products "
                                    "and shipments ERP -> store"),
        "direction": Param("store_to_erp", type="string", enum=["store_to_erp", "erp_to_store"],
                           description="store_to_erp or erp_to_store; a combination that makes no sense is "
                                       "refused with the valid ones"),
        "date_from": Param(None, type=["null", "string"],
                           description="records changed at or after (YYYY-MM-DD or ISO 8601, UTC); required"),
        "date_to": Param(None, type=["null", "string"],
                         description="records changed before (exclusive; YYYY-MM-DD or ISO 8601, UTC); empty: now"),
        "batch_size": Param(1000, type="integer", minimum=1, maximum=50000,
                            description="records per checkpointed batch: a stopped run resumes after the last one"),
        "dry_run": Param(True, type="boolean",
                         description="map and check every record, report what would be written, write nothing; "
                                     "untick to migrate for real"),
        "job_id": Param(None, type=["null", "string"],
                        description="resume this job (erpsync migration status lists them; it keeps its own "
                                    "range and settings, the params above are ignored); empty: the job of this "
                                    "run (a retry or a clear of the task resumes it)"),
        "erp_rps": Param(None, type=["null", "number"], minimum=0.1,
                         description="ERP requests per second the migration may use, within the ERP's shared "
                                     "budget (Connection extra rps); none: as much of that budget as it gets"),
        "storefront_rps": Param(None, type=["null", "number"], minimum=0.1,
                                description="storefront requests per second the migration may use, within the "
                                            "storefront's shared budget"),
        "flow_params": Param({}, type="object",
                             description='params of the live flow that writes, e.g. {"guest_policy": "create", '
                                         '"write_concurrency": 8}'),
    },
    doc_md="""
### historical_migration
Triggered by hand (Trigger DAG w/ config) when a new ERP or storefront goes live, or to refill a
gap too long for a backfill of the minute-by-minute `orders_sync`.

1. Trigger with `dry_run` on: the log counts what would be written, skipped or refused (with a
   reason each) and shows sample payloads; nothing is written.
2. Trigger again with `dry_run` off. The records of `entity` changed in [`date_from`, `date_to`)
   are read page by page and written in batches of `batch_size` by the live flow's own writer
   (same quality gate, idempotency ledger, outbox and dead letters), within `erp_rps` /
   `storefront_rps`. Each batch commits its checkpoint; the log shows done / total, rate and ETA.
3. A failed, killed or stopped run resumes where it stopped: Airflow's retries and a clear of the
   task resume the run's job; a new run resumes any job through `job_id`. Nothing is written
   twice (the ledger).
4. It ends with the reconciliation report: counts (orders: and money totals per currency) at
   source and target, and every record that did not make it with its reason (drift report
   `historical_migration` / job id; `erpsync migration report JOB`).

From a terminal: `erpsync migration start|follow|status|report` ([runbook](docs/runbooks/backfill-and-migration.md)).
Logic: `include/erpsync/flows/migration.py`. Connections: `erp_default`, `storefront_default`
(optional `erpsync_state`).
""",
)
def historical_migration() -> None:
    @task
    def migrate(**context: Any) -> dict:
        """Run (or resume) the migration job; the return value is its counts and whether it reconciled."""
        from erpsync_airflow.runtime import run_migration

        return run_migration(context)

    migrate()


historical_migration()
