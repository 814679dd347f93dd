"""historical_migration through Airflow (``dag.test()``, in process) -> the task runtime -> the core
-> the sandbox over HTTP: a run migrates and reconciles, a new run with ``job_id`` resumes the
(finished) job without writing, bad Params fail at once without retries."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from erpsync.flows.migration import job_id_for  # noqa: E402
from erpsync.state import StateStore  # noqa: E402
from erpsync.state.migration_jobs import MigrationJobs  # noqa: E402
from tests.integration.test_backfill_sandbox import connections  # noqa: E402,F401  (a fixture)

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

CONF = {"entity": "orders", "direction": "store_to_erp", "date_from": "2025-01-01", "batch_size": 40,
        "dry_run": False, "erp_rps": 200}


@pytest.fixture(scope="module")
def dag() -> Any:
    airflow_home.migrate()
    bag = DagBag(dag_folder=str(airflow_home.DAGS / "historical_migration.py"))
    assert bag.import_errors == {}
    return bag.dags["historical_migration"]


def test_a_triggered_run_migrates_reconciles_and_a_job_id_resumes_it(
    dag: Any, clean_sandbox: Any, connections: Any  # noqa: F811
) -> None:
    run = dag.test(run_conf=CONF)
    assert str(run.state) == "success"
    store = StateStore.from_url()
    job = MigrationJobs(store).get(job_id_for(run.run_id, "orders"))
    assert job is not None and job.status == "succeeded" and job.batches == 3  # 120 orders, 40 a batch
    assert job.params["erp_rps"] == 200  # the rate budget stays with the job (a resume keeps it)
    assert job.report["reconciled"] is True and job.report["target"]["records"] == job.written > 80
    assert clean_sandbox.stats("erp")["sales_orders"] == job.written
    assert store.last_runs("historical_migration", limit=1)[0].done == job.written

    again = dag.test(run_conf={**CONF, "job_id": job.id, "entity": "customers"})  # the job's own spec wins
    assert str(again.state) == "success"
    assert clean_sandbox.stats("erp")["sales_orders"] == job.written
    assert MigrationJobs(store).get(job.id).batches == job.batches
    store.close()


def test_a_combination_that_makes_no_sense_fails_without_retries(dag: Any, clean_sandbox: Any,
                                                                  connections: Any) -> None:  # noqa: F811
    run = dag.test(run_conf={**CONF, "entity": "shipments"})
    assert str(run.state) == "failed"
    (ti,) = run.get_task_instances()
    assert str(ti.state) == "failed" and ti.try_number == 1  # not up_for_retry
