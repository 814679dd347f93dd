"""A real Airflow for the event benchmarks (``benchmarks/bench_events.py``): a temporary home with
one DAG and the sandbox, ``airflow standalone`` (or its components one by one) started in it and
waited for until it can take webhooks, stopped with everything it forked. Once here so the
scenarios start and stop Airflow the same way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 3) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, log: Path, step: float = 1.0) -> None:
    """Until ``predicate()`` is true (an OSError counts as not yet: the server is not up); else a
    RuntimeError with the tail of ``log``."""
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(step)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} not within {timeout:.0f} s; log tail:\n{tail}")


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM ``proc``'s process group (it was started in a session of its own: the component and
    what it forked), SIGKILL it if it is still there after ``timeout`` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_airflow(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    """``airflow <args>`` in a session of its own, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(["airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd)


@contextmanager
def workspace(prefix: str, dag: str) -> Iterator[tuple[Path, Path, Path, Any]]:
    """``(tmp, home, dags, sandbox)``: a temporary directory with an Airflow home and a DAG folder
    holding only ``dag`` (file name in dags/), and the sandbox (seed 42, 60 SKUs, 20 orders, the
    ERP's sales warehouse MAIN); the sandbox stopped and the directory removed afterwards."""
    from erpsync.sandbox.launcher import start_sandbox

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    home, dags = tmp / "airflow", tmp / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(REPO / "dags" / dag, dags / dag)
    sb = start_sandbox(log_dir=tmp, seed=42, skus=60, locations=3, customers=150, orders=20,
                       default_warehouse="MAIN")
    try:
        yield tmp, home, dags, sb
    finally:
        sb.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def await_receiver(env: dict[str, str], port: int, log: Path, cwd: Path, health_timeout: float = 240,
                   receiver_log: Path | None = None) -> str:
    """Once Airflow on ``port`` is started: until its scheduler is healthy, then the erpsync pools
    synced and the webhook receiver on the API server answering; its base URL. ``log`` (and
    ``receiver_log`` for the receiver, if the API server logs elsewhere) is shown if one does not."""
    wait_for("the scheduler healthy",
             lambda: get_json(f"http://127.0.0.1:{port}/api/v2/monitor/health")["scheduler"]["status"] == "healthy",
             health_timeout, log)
    subprocess.run(["erpsync", "pools", "sync"], env=env, check=True, capture_output=True, cwd=cwd)
    receiver = f"http://127.0.0.1:{port}/erpsync-webhooks"
    wait_for("webhook receiver on the API server", lambda: "inbox" in get_json(f"{receiver}/stats"), 60,
             receiver_log or log)
    return receiver


@contextmanager
def standalone(env: dict[str, str], port: int, tmp: Path) -> Iterator[tuple[str, float]]:
    """``airflow standalone`` on ``port`` (log ``tmp/standalone.log``), waited for as
    :func:`await_receiver` says: ``(receiver URL, seconds from start to ready)``; stopped with
    every process it forked afterwards."""
    log = tmp / "standalone.log"
    started = time.monotonic()
    proc = start_airflow(["standalone"], env, log, tmp)
    try:
        receiver = await_receiver(env, port, log, tmp)
        yield receiver, time.monotonic() - started
    finally:
        stop_group(proc)
