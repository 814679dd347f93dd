"""Signals in Airflow's own views, through real DAG runs (``dag.test()`` in process -> hooks ->
flows -> the sandbox over HTTP): a run that dead-lettered an order is red on the grid (its
``review_dead_letters`` task failed, the sync task green) and says which order and why; a replay
whose record fails again is not green and names the id and the reason; once the SKU is bound the
replay is green and the order is in the ERP exactly once."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from tests.integration.test_airflow_flows import (  # noqa: E402,F401  (fixtures)
    _task_states,
    connections,
    dags,
    no_connections,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]


def _ti(dag_run: Any, task_id: str) -> Any:
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == task_id)


def test_dead_lettered_run_is_red_and_replay_failing_again_is_not_green(  # noqa: F811 (fixtures)
    dags: dict[str, Any], connections: Any, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    from erpsync.state import StateStore
    from erpsync_airflow.hooks import ErpHook
    from tests.fixtures.sandbox import TEST_SEED

    sb = connections
    sb.reset("erp", **{**TEST_SEED, "skus": TEST_SEED["skus"] - 10})  # the ERP lacks the last 10 SKUs
    assert str(dags["customers_sync"].test().state) == "success"

    run = dags["orders_sync"].test()
    states = _task_states(run)
    assert states == {"sync_orders": "success", "review_dead_letters": "failed"}, states
    assert str(run.state) == "failed"  # red on the grid, though the good orders were written
    store = StateStore.from_url()
    held = [d for d in store.list_dead_letters(flow="orders_sync") if d.reason.startswith("unknown_sku")]
    assert held
    review = [r.getMessage() for r in caplog.records if "review_dead_letters" in r.getMessage()
              or "dead-lettered" in r.getMessage()]
    assert any(f"#{held[0].id} {held[0].external_id}: unknown_sku" in m for m in review), review
    assert _ti(run, "review_dead_letters").try_number == 1  # no retries: retrying cannot help
    # the task log leads with erpsync's lines: Great Expectations' ~200 INFO lines are silenced
    noise = [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]
    assert noise == [], noise[:3]

    dl = held[0]
    # a dry run is honest and stays green (it only previews); a real replay that fails again is red
    caplog.clear()
    preview = dags["dead_letter_replay"].test(run_conf={"ids": [dl.id], "dry_run": True})
    assert str(preview.state) == "success"
    assert any(f"#{dl.id} {dl.external_id}: would_fail: unknown_sku" in r.getMessage() for r in caplog.records)
    caplog.clear()
    again = dags["dead_letter_replay"].test(run_conf={"ids": [dl.id], "dry_run": False})
    assert str(again.state) == "failed", _task_states(again)
    failed_lines = [r.getMessage() for r in caplog.records if "failed again" in r.getMessage()]
    assert any(f"#{dl.id} {dl.external_id}: unknown_sku" in m for m in failed_lines), failed_lines
    assert store.get_dead_letter(dl.id).status == "open" and store.get_dead_letter(dl.id).attempts == 2

    # the operator binds each SKU to the ERP item it is sold as; the replay is green, once
    first_missing = TEST_SEED["skus"] - 10 + 1
    for sku in dl.reason.split(": ", 1)[1].split(", "):
        store.upsert_xref("erp", "item", sku, f"ITEM-{int(sku.removeprefix('SKU-')) - first_missing + 1:06d}")
    done = dags["dead_letter_replay"].test(run_conf={"ids": [dl.id], "dry_run": False})
    assert str(done.state) == "success", _task_states(done)
    assert store.get_dead_letter(dl.id).status == "resolved"
    assert ErpHook().get_conn().find_sales_order(dl.external_id) is not None
    assert sb.stats("erp")["duplicate_external_refs"] == 0


def test_a_run_without_dead_letters_stays_green(dags: dict[str, Any], connections: Any) -> None:  # noqa: F811
    assert str(dags["customers_sync"].test().state) == "success"
    run = dags["orders_sync"].test()
    assert _task_states(run) == {"sync_orders": "success", "review_dead_letters": "success"}
