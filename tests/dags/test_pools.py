"""The rate budget on the Airflow side: every task that calls an external system runs in that
system's pool, and ``erpsync pools sync`` sizes the pools from the Connections' extras."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from erpsync.reliability.budget import pool_name  # noqa: E402
from erpsync_airflow import runtime  # noqa: E402

#: the system each DAG loads (where its writes go, or its heaviest calls): the pool of its tasks.
#: Written out here, apart from erpsync_airflow.defaults.POOL_SYSTEMS, so a change there is a
#: decision this test has to be told about.
EXPECTED_POOLS = {
    "customers_sync": "erpsync_erp",
    "orders_sync": "erpsync_erp",
    "returns_sync": "erpsync_erp",
    "customer_erasure": "erpsync_erp",
    "orders_reconciliation": "erpsync_erp",
    "historical_migration": "erpsync_erp",
    "dead_letter_replay": "erpsync_erp",
    "catalog_sync": "erpsync_storefront",
    "pricing_sync": "erpsync_storefront",
    "inventory_sync": "erpsync_storefront",
    "inventory_fast_lane": "erpsync_storefront",
    "inventory_drift_check": "erpsync_storefront",
    "shipments_sync": "erpsync_storefront",
    "sync_watchdog": None,  # the state store only
}


def _external_entry_points() -> set[str]:
    """The task bodies of ``erpsync_airflow.runtime`` that reach the ERP or the storefront: those
    that build a flow context (the hooks of both Connections), found from the code itself."""
    found = {"flow_context"}
    for name, fn in inspect.getmembers(runtime, inspect.isfunction):
        if fn.__module__ == runtime.__name__ and re.search(r"\b(flow_context|ErpHook|StorefrontHook)\(",
                                                           inspect.getsource(fn)):
            found.add(name)
    return found


def _calls_external(task) -> bool:
    source = inspect.getsource(task.python_callable)
    return any(re.search(rf"\b{name}\(", source) for name in _external_entry_points())


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(airflow_home.DAGS))


def test_the_runtime_entry_points_are_known() -> None:
    assert {"run_flow", "run_dead_letter_replay", "run_migration"} <= _external_entry_points()
    assert "run_watchdog" not in _external_entry_points()


def test_every_task_calling_an_external_system_runs_in_its_pool(dagbag: DagBag) -> None:
    assert set(dagbag.dag_ids) == set(EXPECTED_POOLS), "a new DAG: say which pool its tasks use"
    external = 0
    for dag_id, dag in sorted(dagbag.dags.items()):
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            if _calls_external(task):
                external += 1
                assert EXPECTED_POOLS[dag_id], f"{where} calls an external system but its DAG expects no pool"
                assert task.pool == EXPECTED_POOLS[dag_id], f"{where} runs in {task.pool!r}"
                assert task.pool_slots == 1, where
            else:
                assert task.pool == "default_pool", f"{where} calls no external system: no budget pool"
    assert external >= 13  # one flow task per DAG but the watchdog


def test_pool_names_agree_with_the_core() -> None:
    from erpsync_airflow.defaults import pool_of

    assert pool_of("orders_sync") == pool_name("erp") and pool_of("catalog_sync") == pool_name("storefront")
    with pytest.raises(KeyError, match="POOL_SYSTEMS"):
        pool_of("a_new_dag")


def _sync_pools(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "erpsync_airflow.cli", "pools", "sync", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def _conn(conn_type: str, extra: dict) -> str:
    return json.dumps({"conn_type": conn_type, "host": "127.0.0.1", "port": 1, "login": "u", "password": "secret",
                       "extra": {"adapter": "sandbox", **extra}})


@pytest.mark.airflow
@pytest.mark.slow
def test_pool_sync_sizes_the_pools_from_the_connection_extras(airflow_db: None) -> None:
    from airflow.models.pool import Pool

    env = {**os.environ,
           "AIRFLOW_CONN_ERP_DEFAULT": _conn("erpsync_erp", {"rps": 40, "concurrency": 15}),
           "AIRFLOW_CONN_STOREFRONT_DEFAULT": _conn("erpsync_storefront", {"rps": 2, "concurrency": 3})}
    done = _sync_pools(env)
    assert done.returncode == 0, done.stderr
    assert "pool erpsync_erp: 15 slot(s), 40 req/s shared" in done.stdout
    erp, store = Pool.get_pool("erpsync_erp"), Pool.get_pool("erpsync_storefront")
    assert (erp.slots, store.slots) == (15, 3)
    assert "40 req/s" in erp.description and "2 req/s" in store.description
    assert "secret" not in done.stdout + done.stderr + erp.description

    # a changed limit resizes the pool in place; a Connection without limits gets the defaults
    env["AIRFLOW_CONN_ERP_DEFAULT"] = _conn("erpsync_erp", {"rps": 40, "concurrency": 6})
    env["AIRFLOW_CONN_STOREFRONT_DEFAULT"] = _conn("erpsync_storefront", {})
    done = _sync_pools(env)
    assert done.returncode == 0, done.stderr
    assert Pool.get_pool("erpsync_erp").slots == 6
    assert Pool.get_pool("erpsync_storefront").slots == 4  # budget.DEFAULT_CONCURRENCY


def test_pool_sync_refuses_bad_limits_in_one_line() -> None:
    env = {**os.environ, "AIRFLOW_CONN_ERP_DEFAULT": _conn("erpsync_erp", {"concurrency": "lots"})}
    done = _sync_pools(env, "--dry-run")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("erpsync: Connection erp_default: extra 'concurrency'")
