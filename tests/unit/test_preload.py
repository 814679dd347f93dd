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
