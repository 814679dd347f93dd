"""Both DAGs run for real: Airflow (``dag.test()``, in process, own metadata DB) -> hooks -> the
core flows -> the sandbox ERP and storefront over HTTP, with the state store on SQLite.

``dag.test()`` crashes on a DAG with a ``deadline=`` in 3.3.2 (apache/airflow#73428), so the
``dags`` fixture strips the deadlines of its in-memory copies; the deadlines themselves are tested
through a running scheduler (tests/integration/test_alerts_deadline.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

CONN_VARS = ("AIRFLOW_CONN_ERP_DEFAULT", "AIRFLOW_CONN_STOREFRONT_DEFAULT", "AIRFLOW_CONN_ERPSYNC_STATE")


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    airflow_home.migrate()
    bag = DagBag(dag_folder=str(airflow_home.DAGS))
    assert bag.import_errors == {}
    return {dag_id: without_deadline(dag) for dag_id, dag in bag.dags.items()}


def without_deadline(dag: Any) -> Any:
    """The DAG without its deadline alert: ``dag.test()`` cannot run one (apache/airflow#73428)."""
    dag.deadline = None
    return dag


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in CONN_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def connections(clean_sandbox, no_connections, monkeypatch: pytest.MonkeyPatch):
    """The sandbox as Airflow Connections (JSON form, full URL in host), as `make up` sets them."""
    sb = clean_sandbox
    monkeypatch.setenv(
        "AIRFLOW_CONN_ERP_DEFAULT",
        json.dumps(
            {
                "conn_type": "erpsync_erp",
                "host": sb.erp_url,
                "login": sb.erp_user,
                "password": sb.erp_password,
                "extra": {"adapter": "sandbox", "timeout": 5},
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_STOREFRONT_DEFAULT",
        json.dumps(
            {
                "conn_type": "erpsync_storefront",
                "host": sb.storefront_url,
                "password": sb.token,
                "extra": {"adapter": "sandbox", "timeout": 5},
            }
        ),
    )
    return sb


def _task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_customers_then_orders_sync_for_real(dags, connections) -> None:
    from erpsync.state import StateStore

    customers_run = dags["customers_sync"].test()
    assert str(customers_run.state) == "success", _task_states(customers_run)

    orders_run = dags["orders_sync"].test()
    assert str(orders_run.state) == "success", _task_states(orders_run)

    store = StateStore.from_url()
    runs = {flow: store.last_runs(flow, limit=1) for flow in ("customers_sync", "orders_sync")}
    assert runs["customers_sync"] and runs["customers_sync"][0].run_id == customers_run.run_id
    assert runs["orders_sync"] and runs["orders_sync"][0].run_id == orders_run.run_id
    assert runs["customers_sync"][0].done > 0
    assert runs["orders_sync"][0].done > 0

    # the orders the run counted as done are in the ERP, found by their storefront id
    from erpsync_airflow.hooks import ErpHook, StorefrontHook

    erp, storefront = ErpHook().get_conn(), StorefrontHook().get_conn()
    order_ids = [str(o["id"]) for o in storefront.list_orders()]
    in_erp = [oid for oid in order_ids if erp.find_sales_order(oid) is not None]
    assert len(in_erp) >= runs["orders_sync"][0].done

    # a second run writes nothing new: every order is already synced (the ledger and the xref say so)
    again = dags["orders_sync"].test()
    assert str(again.state) == "success", _task_states(again)
    assert store.last_runs("orders_sync", limit=1)[0].done == 0
    assert [oid for oid in order_ids if erp.find_sales_order(oid) is not None] == in_erp


def test_missing_connection_is_one_clear_line(no_connections, caplog: pytest.LogCaptureFixture) -> None:
    from erpsync_airflow.runtime import flow_context

    caplog.set_level(logging.ERROR)
    with pytest.raises(AirflowFailException) as raised:
        with flow_context("orders_sync", {"run_id": "manual__test", "params": {}}):
            pytest.fail("the context must not be entered without connections")
    line = str(raised.value)
    assert "\n" not in line
    assert "erp_default" in line and "is not defined" in line
    assert "AIRFLOW_CONN_ERP_DEFAULT" in line  # says how to fix it
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [line]


def test_missing_connection_fails_the_dag_run_without_retries(dags, no_connections) -> None:
    dag_run = dags["orders_sync"].test()
    assert str(dag_run.state) == "failed"
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == "sync_orders")  # then review_dead_letters
    assert str(ti.state) == "failed"  # not up_for_retry: retrying cannot fix a missing connection
    assert ti.try_number == 1
