"""orders_sync split into partitions, run for real by Airflow (``dag.test()``, in process) against
the sandbox (issue 22): with ``ERPSYNC_PARTITIONS_ORDERS_SYNC=2`` a run is two mapped
``sync_orders`` tasks, each writing its share under its own run id, then ``save_cursor`` (the
cursor moved once both succeeded) and ``review_dead_letters``. Every paid order is in the ERP
once, counted from the sandbox; a second run writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from tests.integration.test_airflow_flows import (  # noqa: E402,F401  (fixtures)
    _task_states,
    connections,
    no_connections,
    without_deadline,
)
from tests.integration.test_flows_sandbox import assert_every_paid_order_once, paid_orders  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture
def partitioned(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Any:
    from erpsync.state import StateStore

    airflow_home.migrate()
    url = f"sqlite:///{tmp_path / 'state.db'}"  # a state store of its own: no ledger of other tests
    monkeypatch.setenv("ERPSYNC_STATE_URL", url)
    with StateStore.from_url(url) as store:
        store.migrate()
    monkeypatch.setenv("ERPSYNC_PARTITIONS_ORDERS_SYNC", "2")
    bag = DagBag(dag_folder=str(airflow_home.DAGS / "orders_sync.py"))
    assert bag.import_errors == {}
    return without_deadline(bag.dags["orders_sync"])


@pytest.mark.usefixtures("connections")  # the sandbox as the Airflow Connections
def test_two_partitions_write_every_order_once_then_move_the_cursor(partitioned) -> None:
    from erpsync.state import StateStore
    from erpsync_airflow.hooks import ErpHook, StorefrontHook

    store = StateStore.from_url()
    assert store.get_cursor("orders_sync") is None
    run = partitioned.test()
    states = [(ti.task_id, ti.map_index, str(ti.state)) for ti in run.get_task_instances()]
    assert str(run.state) == "success", states
    assert sorted(states) == [("review_dead_letters", -1, "success"), ("save_cursor", -1, "success"),
                              ("sync_orders", 0, "success"), ("sync_orders", 1, "success")]
    metrics = {m.run_id: m for m in store.last_runs("orders_sync", limit=10)}
    parts = [metrics[f"{run.run_id}#p{i}"] for i in range(2)]
    assert all(p.done > 0 for p in parts), parts  # both partitions wrote their share
    erp, sf = ErpHook().get_conn(), StorefrontHook().get_conn()
    assert sum(p.done for p in parts) == len(paid_orders(sf))
    assert_every_paid_order_once(store, erp, sf)
    assert store.get_cursor("orders_sync") is not None  # save_cursor moved it

    again = partitioned.test()
    assert str(again.state) == "success", _task_states(again)
    metrics = {m.run_id: m for m in store.last_runs("orders_sync", limit=10)}
    assert sum(metrics[f"{again.run_id}#p{i}"].done for i in range(2)) == 0
    assert_every_paid_order_once(store, erp, sf)
