"""The historical_migration DAG: on demand only, the house rules, and Params that refuse bad input."""

from __future__ import annotations

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(airflow_home.DAGS / "historical_migration.py"))
    assert bag.import_errors == {}
    return bag.dags["historical_migration"]


def test_on_demand_with_the_house_rules(dag) -> None:
    assert type(dag.timetable).__name__ == "NullTimetable"  # schedule=None: triggered by hand only
    assert "erpsync" in dag.tags and "migration" in dag.tags and dag.doc_md.strip()
    assert dag.max_active_runs == 1 and dag.catchup is False and dag.owner == "erpsync"
    (task,) = dag.tasks
    assert task.retries >= 1 and task.retry_exponential_backoff > 1 and task.max_retry_delay is not None
    assert "FailureNotifier" in [type(cb).__name__ for cb in task.on_failure_callback]
    assert getattr(dag, "deadline", None) is None  # nothing to be late for: it runs when triggered


def test_params_have_types_enums_and_descriptions(dag) -> None:
    params = dag.params
    for name in ("entity", "direction", "date_from", "date_to", "batch_size", "dry_run", "job_id", "erp_rps",
                 "storefront_rps", "flow_params"):
        assert params.get_param(name).description, f"{name}: no description"
    assert params.get_param("entity").schema["enum"] == ["customers", "products", "orders", "shipments", "returns"]
    assert params.get_param("direction").schema["enum"] == ["store_to_erp", "erp_to_store"]
    assert params["dry_run"] is True  # a trigger without thinking previews only
    assert params.get_param("batch_size").schema["maximum"] == 50000


@pytest.mark.parametrize(("name", "value"), [("entity", "invoices"), ("batch_size", 0), ("dry_run", "maybe")])
def test_bad_params_are_refused_before_the_run(dag, name: str, value: object) -> None:
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    params = ParamsDict(dag.params)
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {name}"):
        params[name] = value
