"""The state store refuses SQLite when erpsync's tasks may run on several machines (issue 22).

Under the CeleryExecutor (or any executor that is not Local/Sequential, or ERPSYNC_WORKER_HOSTS
naming several hosts) each worker host would keep its own SQLite file: its own ledger, cursors,
rate budget and breaker, so exactly once and the shared budget would silently break. The store
says so, and how to fix it, before anything is read or written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from erpsync.config import multi_host_reason
from erpsync.errors import ConfigError
from erpsync.state import StateStore


@pytest.fixture(autouse=True)
def _no_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__CORE__EXECUTOR", raising=False)
    monkeypatch.delenv("ERPSYNC_WORKER_HOSTS", raising=False)


@pytest.mark.parametrize(("executor", "name"), [
    ("CeleryExecutor", "CeleryExecutor"),
    ("airflow.providers.celery.executors.celery_executor.CeleryExecutor", "CeleryExecutor"),
    ("LocalExecutor,CeleryExecutor", "CeleryExecutor"),
    ("KubernetesExecutor", "KubernetesExecutor"),
    ("edge:airflow.providers.edge3.executors.EdgeExecutor", "EdgeExecutor"),
])
def test_sqlite_is_refused_under_a_multi_host_executor(executor: str, name: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    for url in (f"sqlite:///{tmp_path / 'state.db'}", None):  # explicit, and the default under ERPSYNC_HOME
        with pytest.raises(ConfigError) as err:
            StateStore.from_url(url)
        text = str(err.value)
        assert "SQLite" in text and "several worker hosts" in text and f"executor is {name}," in text
        assert "ERPSYNC_STATE_URL=postgresql://" in text and "docs/deployment.md" in text
    assert not (tmp_path / "state.db").exists()  # refused before the file was created


def test_sqlite_is_refused_when_several_worker_hosts_are_named(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERPSYNC_WORKER_HOSTS", "erp-worker-a, erp-worker-b")
    with pytest.raises(ConfigError, match=r"ERPSYNC_WORKER_HOSTS names 2 worker hosts \(erp-worker-a, erp-worker-b\)"):
        StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.mark.parametrize("executor", ["", "LocalExecutor", "airflow.executors.local_executor.LocalExecutor"])
def test_sqlite_stays_the_single_machine_default(executor: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    monkeypatch.setenv("ERPSYNC_WORKER_HOSTS", "only-this-one")
    assert multi_host_reason() is None
    with StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.migrate()
        assert store.current_revision()


def test_postgresql_is_accepted_under_celery(pg_database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with StateStore.from_url(pg_database()) as store:
        store.migrate()
        assert store.current_revision()


def test_the_tasks_hook_refuses_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task's store (StateStoreHook, no erpsync_state Connection: the SQLite default) under Celery."""
    pytest.importorskip("airflow")
    from erpsync_airflow.hooks import StateStoreHook

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)
    with pytest.raises(ConfigError, match="several worker hosts"):
        StateStoreHook().get_conn()
