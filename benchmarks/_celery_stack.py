"""The stack `make up-celery` runs (scheduler, DAG processor, API server, ``airflow celery worker``
processes; the metadata DB and the state store on PostgreSQL, Redis as the broker), started as
child processes of this one: once here for ``benchmarks/bench_celery.py`` and the scale-out test
(``tests/integration/test_celery_scale_out.py``), so the two start the same stack the same way.

A worker counts as started only once Celery logs it ``ready`` (it consumes the queue): a task
queued before that goes to the workers already up, and a test that needs both workers to take
work would otherwise wait for the next scheduled run to land on the late one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
#: the Airflow components besides the workers, in the order they are started
COMPONENTS = ("scheduler", "dag-processor", "api-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raise(message: str) -> NoReturn:
    raise RuntimeError(message)


def celery_env(root: Path, meta_url: str, state_url: str, connections: dict[str, str], *, broker_url: str,
               queue_prefix: str, drop: tuple[str, ...] = ("AIRFLOW",), extra: dict[str, str] | None = None
               ) -> dict[str, str]:
    """The environment of every component: this process's, less the variables starting with one of
    ``drop``, with Airflow's home, DAGs (``root/airflow``, ``root/dags``) and erpsync's home
    (``root/erpsync``) under ``root``, the metadata DB ``meta_url`` (``postgresql[+driver]://...``),
    the broker ``broker_url`` and a queue of the run's own (``queue_prefix`` + a random tail: no
    other worker on the broker takes its tasks), the Connections ``connections`` (``AIRFLOW_CONN_*``)
    and ``extra`` last."""
    port = free_port()
    meta = meta_url.split("://", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({
        "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # unpaused once the caller has set up
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "erpsync_airflow.worker.hostname",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{meta}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{meta}",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"{queue_prefix}{uuid.uuid4().hex[:8]}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "ERPSYNC_HOME": str(root / "erpsync"),
        "ERPSYNC_STATE_URL": state_url,
        **connections,
        **(extra or {}),
    })
    return env


def healthy(env: dict[str, str]) -> bool:
    """The API server of ``env`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{env['AIRFLOW__API__BASE_URL']}/api/v2/monitor/health", timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


@dataclass
class Stack:
    """The Airflow components as child processes (each in its own session), logs under ``logs``.
    ``fail`` reports what did not happen (a benchmark raises; a test passes ``pytest.fail``)."""

    env: dict[str, str]
    meta_dsn: str
    logs: Path
    state_url: str = ""
    fail: Callable[[str], NoReturn] = _raise
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: where each worker's log stood when it was last started (its "ready" line comes after)
    _log_start: dict[str, int] = field(default_factory=dict)

    def boot(self, workers: Iterable[str], dag_ids: Iterable[str]) -> None:
        """Migrate the metadata DB, sync the pools, start the components and ``workers`` (once
        the API server answers: a task started before it fails its try) and wait until each worker
        is ready and ``dag_ids`` are registered."""
        dag_ids = list(dag_ids)
        self.run("db", "migrate", timeout=400)
        done = subprocess.run([sys.executable, "-m", "erpsync_airflow.cli", "pools", "sync"], env=self.env,
                              capture_output=True, text=True, timeout=300, cwd=self.logs)
        if done.returncode != 0:
            self.fail(f"erpsync pools sync: {done.stderr[-3000:]}")
        for component in COMPONENTS:
            self.start(component, component)
        self.wait("the API server healthy", lambda: healthy(self.env), 240, step=2)
        workers = list(workers)
        for name in workers:  # started together, waited for together
            self.start_worker(name, wait=False)
        for name in workers:
            self.wait_ready(name)
        self.wait(f"the DAGs {', '.join(dag_ids)} registered", lambda: len(self.sql(
            "SELECT dag_id FROM dag WHERE dag_id = ANY(%s)", dag_ids)) == len(dag_ids), 240)

    def start(self, name: str, *args: str, **extra_env: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                ["airflow", *args], env={**self.env, **extra_env}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.logs)

    def start_worker(self, name: str, *, wait: bool = True) -> None:
        """``airflow celery worker`` with one task slot, Celery node ``name@<host>`` and erpsync
        worker name ``name`` (the task instances' hostname); ``wait``: until it is ready."""
        log = self.logs / f"{name}.log"
        self._log_start[name] = log.stat().st_size if log.exists() else 0
        self.start(name, "celery", "worker", "--concurrency", "1", "--queues",
                   self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"], "--celery-hostname", f"{name}@%h",
                   ERPSYNC_WORKER_NAME=name, AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str, timeout: float = 180) -> None:
        """Until Celery logs ``<name>@<host> ready.`` for the worker's latest start (a restarted
        worker appends to the same log: its earlier "ready" does not count)."""
        log, offset = self.logs / f"{name}.log", self._log_start.get(name, 0)

        def ready() -> bool:
            if self.procs[name].poll() is not None:
                self.fail(f"{name} exited with {self.procs[name].returncode}:\n"
                          f"{log.read_text(errors='replace')[-2000:]}")
            with log.open("rb") as f:
                f.seek(offset)
                return b" ready." in f.read()

        self.wait(f"{name} ready (consuming the queue)", ready, timeout, step=0.5)

    def run(self, *args: str, timeout: float = 400) -> str:
        done = subprocess.run(["airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=self.logs)
        if done.returncode != 0:
            self.fail(f"airflow {' '.join(args)}: {done.stderr[-3000:]}")
        return done.stdout

    def sql(self, query: str, *params: Any) -> list[tuple]:
        with psycopg.connect(self.meta_dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}"
                         for log in sorted(self.logs.glob("*.log")))

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float, step: float = 1.0) -> Any:
        limit = time.monotonic() + timeout
        while time.monotonic() < limit:
            value = predicate()
            if value:
                return value
            time.sleep(step)
        self.fail(f"{what}: not within {timeout:.0f} s (logs in {self.logs})\n{self.tail()}")

    def kill_tree(self, name: str) -> None:
        """SIGKILL a component and every process below it (a task process leads its own group)."""
        proc = self.procs[name]
        with contextlib.suppress(psutil.NoSuchProcess):
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            for p in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.kill()
        proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM every component and what it started (task processes lead groups of their own),
        SIGKILL what is still there 20 s later."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                for child in psutil.Process(proc.pid).children(recursive=True):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.terminate()
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
