"""A missed deadline mails through a real SMTP server, via a real running Airflow (``airflow
standalone``: scheduler, DAG processor, triggerer, API server) in a home of its own.

``dag.test()`` cannot run a DAG with a deadline in 3.3.2 (apache/airflow#73428), so this is the
test of the deadline path: a probe DAG with a 10-second deadline (built by the same
``defaults.deadline_for`` every DAG uses) and a task that sleeps 30 s; the scheduler sees the miss,
the triggerer runs ``DeadlineMissNotifier``, and the mail arrives. One test, about a minute.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.dags import airflow_home
from tests.integration.smtp_sink import free_port, smtp  # noqa: F401  (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

REPO = airflow_home.REPO
VENV_BIN = Path(sys.executable).parent

PROBE_DAG = '''
"""A DAG whose run always misses its 10-second deadline: its task sleeps 30 s."""

from __future__ import annotations

import datetime as dt
import time

from airflow.sdk import dag, task

from erpsync_airflow.defaults import DEFAULT_ARGS, START_DATE, deadline_for


@dag(
    dag_id="deadline_probe",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    default_args={**DEFAULT_ARGS, "retries": 0},
    deadline=deadline_for("deadline_probe", dt.timedelta(minutes=1), interval=dt.timedelta(seconds=10)),
    tags=["erpsync", "test"],
)
def deadline_probe():
    @task
    def slow() -> None:
        time.sleep(30)

    slow()


deadline_probe()
'''


def _env(home: Path, dags: Path, port: int, smtp_conn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ERPSYNC_TEST_AIRFLOW"))}
    env.update({
        "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",  # standalone starts its components as `airflow`
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW_CONN_SMTP_DEFAULT": smtp_conn,
        "AIRFLOW__EMAIL__FROM_EMAIL": "erpsync-airflow@example.com",
        "ERPSYNC_ALERT_EMAILS": "ops@example.com",
        "ERPSYNC_HOME": str(home / "erpsync"),
    })
    return env


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _wait(what: str, predicate, timeout: float, log: Path, step: float = 1.0) -> None:
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        if predicate():
            return
        time.sleep(step)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"{what} not within {timeout:.0f} s; standalone log tail:\n{tail}")


def test_a_missed_deadline_mails_through_the_scheduler(smtp, tmp_path: Path) -> None:  # noqa: F811
    home, dags = tmp_path / "airflow", tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / "deadline_probe.py").write_text(textwrap.dedent(PROBE_DAG))
    port = free_port()
    env = _env(home, dags, port, smtp.connection)
    smtp.sink.clear()
    log = tmp_path / "standalone.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["airflow", "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=tmp_path)
    try:
        _wait("airflow standalone healthy", lambda: _healthy(port), 120, log)

        def triggered() -> bool:  # fails until the DAG processor has registered the probe
            done = subprocess.run(["airflow", "dags", "trigger", "deadline_probe"], env=env,
                                  capture_output=True, text=True, timeout=60)
            return done.returncode == 0

        _wait("deadline_probe registered and triggered", triggered, 90, log, step=2)
        mails = smtp.sink.wait(1, timeout=90, match="deadline_probe")
        assert mails, f"no deadline mail; standalone log tail:\n{log.read_text(errors='replace')[-3000:]}"
        mail = mails[0]
        assert mail.subject == "[erpsync] deadline_probe missed its deadline (10 s)"
        assert mail.to == ["ops@example.com"] and mail.sender == "erpsync-airflow@example.com"
        body = mail.text
        assert "DAG:       deadline_probe" in body and "Run:       manual__" in body
        assert "(10 s after it was queued)" in body and "Queued at: 20" in body
        assert "State:     running" in body  # the 30-second task was still running at its deadline
        assert f"Run page:  http://127.0.0.1:{port}/dags/deadline_probe/runs/manual__" in body
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # our own standalone and its children
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
