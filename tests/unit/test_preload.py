"""The scheduler (and Celery workers) pre-import the task modules; no other Airflow process does."""

from __future__ import annotations

import sys

import pytest

from erpsync_airflow import preload


@pytest.mark.parametrize(("argv", "forks"), [
    (["/venv/bin/airflow", "scheduler"], True),
    (["airflow", "celery", "worker", "-q", "default"], True),
    (["airflow", "api-server"], False),
    (["airflow", "triggerer"], False),
    (["airflow", "dag-processor"], False),
    (["airflow", "standalone"], False),
    (["/venv/bin/pytest", "scheduler"], False),
])
def test_only_the_processes_that_fork_tasks_preload(argv, forks, monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_PRELOAD_TASK_MODULES", "json,erpsync.inbox")
    assert preload.preload_for_tasks(argv) == (["json", "erpsync.inbox"] if forks else [])


def test_what_was_preloaded_is_frozen_out_of_the_garbage_collector(monkeypatch) -> None:
    import gc

    monkeypatch.setenv("ERPSYNC_PRELOAD_TASK_MODULES", "json")
    try:
        assert preload.preload_for_tasks(["airflow", "scheduler"]) == ["json"]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_modules_setting(monkeypatch) -> None:
    monkeypatch.delenv("ERPSYNC_PRELOAD_TASK_MODULES", raising=False)
    assert preload.modules() == preload.DEFAULT
    monkeypatch.setenv("ERPSYNC_PRELOAD_TASK_MODULES", "off")
    assert preload.preload_for_tasks(["airflow", "scheduler"]) == []


def test_a_module_that_does_not_import_is_skipped_with_a_warning(monkeypatch, caplog) -> None:
    monkeypatch.setenv("ERPSYNC_PRELOAD_TASK_MODULES", "erpsync_no_such_module,json")
    assert preload.preload_for_tasks(["airflow", "scheduler"]) == ["json"]
    assert "erpsync_no_such_module not imported" in caplog.text
    assert "erpsync_no_such_module" not in sys.modules


def test_an_entry_with_a_function_calls_it_once_imported(monkeypatch) -> None:
    import erpsync.quality.gx as gx_module

    calls: list[str] = []
    monkeypatch.setattr(gx_module, "preload", lambda: calls.append("gx"))
    monkeypatch.setenv("ERPSYNC_PRELOAD_TASK_MODULES", "erpsync.quality.gx:preload,erpsync.quality.gx:no_such")
    assert preload.preload_for_tasks(["airflow", "scheduler"]) == ["erpsync.quality.gx:preload"]
    assert calls == ["gx"]


def test_the_gx_preload_loads_the_project_context(monkeypatch) -> None:
    from erpsync.quality import gx

    monkeypatch.setattr(gx, "_loaded", {})
    monkeypatch.setattr(gx, "_objects", {})
    gx.preload()
    assert len(gx._loaded) == 1 and len(gx._objects) == 1 and "pandas" in sys.modules
