"""orders_sync with ERPSYNC_PARTITIONS_ORDERS_SYNC (issue 22): one mapped ``sync_orders`` task per
partition, then ``save_cursor`` (the run's summary, the cursor moved once all succeeded), then
``review_dead_letters``; without it the DAG is the one task as before; a bad value is refused
when the DAG is parsed, naming the variable."""

from __future__ import annotations

import contextlib
import logging

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

DAG_FILE = str(airflow_home.DAGS / "orders_sync.py")


def _bag(monkeypatch: pytest.MonkeyPatch, value: str | None) -> DagBag:
    if value is None:
        monkeypatch.delenv("ERPSYNC_PARTITIONS_ORDERS_SYNC", raising=False)
    else:
        monkeypatch.setenv("ERPSYNC_PARTITIONS_ORDERS_SYNC", value)
    return DagBag(dag_folder=DAG_FILE)


def test_default_is_the_single_task(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = _bag(monkeypatch, None).dags["orders_sync"]
    assert sorted(t.task_id for t in dag.tasks) == ["review_dead_letters", "sync_orders"]
    assert not getattr(dag.get_task("sync_orders"), "is_mapped", False)


def test_partitions_are_mapped_tasks_then_the_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = _bag(monkeypatch, "3")
    assert bag.import_errors == {}
    dag = bag.dags["orders_sync"]
    sync, save, review = (dag.get_task(t) for t in ("sync_orders", "save_cursor", "review_dead_letters"))
    assert sync.is_mapped and sync.op_kwargs_expand_input.value["partition"] == [0, 1, 2]
    assert sync.pool == "erpsync_erp" and save.pool == review.pool == "default_pool"
    assert save.upstream_task_ids == {"sync_orders"} and review.upstream_task_ids == {"save_cursor"}


def test_a_bad_count_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = _bag(monkeypatch, "many")
    (error,) = bag.import_errors.values()
    assert "ERPSYNC_PARTITIONS_ORDERS_SYNC='many'" in error


def test_save_cursor_adds_the_partitions_up_and_moves_the_cursor(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from erpsync.flows.base import FlowContext
    from erpsync.state import StateStore
    from erpsync_airflow import runtime

    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    store.set_cursor("orders_sync", "2026-11-23T09:00:00Z")
    ctx = FlowContext(flow="orders_sync", run_id="r1", store=store, erp=None, storefront=None, params={},
                      log=logging.getLogger("test"))

    @contextlib.contextmanager
    def fake_context(flow: str, context: object):
        yield ctx

    monkeypatch.setattr(runtime, "flow_context", fake_context)
    parts = [
        {"done": 3, "skipped": 1, "read": 4, "quarantined": 1, "dead_letters": [[7, "O1", "unknown_sku: X"]],
         "reasons": {"already_synced": 1}, "cursor_high": "2026-11-23T10:04:00Z", "partition": [0, 2]},
        {"done": 2, "skipped": 2, "read": 4, "dead_letters": [], "reasons": {"already_synced": 2},
         "cursor_high": "2026-11-23T10:05:00Z", "partition": [1, 2]},
    ]
    merged = runtime.finish_orders_partitions(parts, {"run_id": "r1"})
    assert (merged["done"], merged["skipped"], merged["read"], merged["quarantined"]) == (5, 3, 8, 1)
    assert merged["dead_letters"] == [[7, "O1", "unknown_sku: X"]] and merged["reasons"] == {"already_synced": 3}
    assert merged["cursor"] == store.get_cursor("orders_sync") == "2026-11-23T10:05:00Z"
    store.close()
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.delenv("ERPSYNC_REVIEW_MAX_DEAD_LETTERS", raising=False)
    with pytest.raises(AirflowFailException, match="#7 O1: unknown_sku"):  # the review sees every partition's
        runtime.run_review("orders_sync", merged, {})
