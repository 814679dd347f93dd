"""Event-driven orders through a real Airflow (issue 21): order placed -> ERP sales order written.

``python -m benchmarks events [--orders N] [--rate R] [--sweep CRON]`` starts the sandbox and
``airflow standalone`` (scheduler, DAG processor, triggerer, API server with the erpsync webhook
receiver, LocalExecutor) in a temporary home with only ``orders_sync``, points the sandbox's signed
webhooks at the receiver on the API server, places N paid orders at R per second, and takes each
order's ERP write time from the ERP (``order_date`` of its sales order). Each step comes from the
records the steps leave: the inbox row (received, claimed), Airflow's metadata DB (run queued,
task started), the ERP. The sweep is set to every 15 minutes so every order goes the event path.
Prints the step table; about 3-4 minutes on a 2-core machine (most of it starting Airflow).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

DESCRIPTION = "webhook -> inbox -> triggerer -> scheduler -> task -> ERP write, real Airflow (issue 21)"

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SECRET = "whsec-bench-events"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, dags: Path, port: int, sb: Any, sweep: str, preload: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ERPSYNC"))}
    env.update({
        "PATH": f"{VENV_BIN}:{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW_CONN_ERP_DEFAULT": json.dumps({
            "conn_type": "erpsync_erp", "host": sb.erp_url, "login": sb.erp_user, "password": sb.erp_password,
            "extra": {"adapter": "sandbox", "sale_warehouse": "MAIN", "rps": 100, "concurrency": 4}}),
        "AIRFLOW_CONN_STOREFRONT_DEFAULT": json.dumps({
            "conn_type": "erpsync_storefront", "host": sb.storefront_url, "password": sb.token,
            "extra": {"adapter": "sandbox", "rps": 100, "concurrency": 4}}),
        "ERPSYNC_HOME": str(home / "erpsync"),
        "ERPSYNC_WEBHOOK_SECRET_STOREFRONT": SECRET,
        "ERPSYNC_SWEEP_CRON_ORDERS_SYNC": sweep,
        "ERPSYNC_DEADLINES": "off",  # no SMTP here; deadlines are not what is measured
    })
    if preload == "off":
        env["ERPSYNC_PRELOAD_TASK_MODULES"] = "off"
    return env


def _get(url: str, timeout: float = 3) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def _post(url: str, body: Any, method: str = "POST") -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def _wait(what: str, predicate: Any, timeout: float, log: Path, step: float = 1.0) -> None:
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


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).replace("Z", "+00:00").replace(" ", "T")
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def import_costs() -> list[dict[str, Any]]:
    """Seconds and peak memory of a fresh interpreter importing what a task imports."""
    rows = []
    code = ("import resource, time; t = time.perf_counter(); import {m}; "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    for module in ("pandas", "great_expectations", "erpsync.flows.orders"):
        out = subprocess.run([sys.executable, "-c", code.format(m=module)], capture_output=True, text=True,
                             check=True, cwd=REPO).stdout.split()
        rows.append({"step": f"task start-up: import {module} (fresh process)", "p50_s": float(out[0]),
                     "p95_s": "", "max_s": "", "n": 1, "note": f"peak RSS {int(out[1]) // 1024} MB"})
    return rows


def run(orders: int, rate: float, sweep: str, preload: str = "on") -> list[dict[str, Any]]:
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter
    from erpsync.sandbox.launcher import start_sandbox

    tmp = Path(tempfile.mkdtemp(prefix="erpsync-bench-events-"))
    home, dags = tmp / "airflow", tmp / "dags"
    home.mkdir()
    dags.mkdir()
    shutil.copy(REPO / "dags" / "orders_sync.py", dags / "orders_sync.py")
    sb = start_sandbox(log_dir=tmp, seed=42, skus=60, locations=3, customers=150, orders=20,
                       default_warehouse="MAIN")
    port = _free_port()
    env = _env(home, dags, port, sb, sweep, preload)
    log = tmp / "standalone.log"
    proc = None
    try:
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(["airflow", "standalone"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=tmp)
        _wait("airflow standalone healthy",
              lambda: _get(f"http://127.0.0.1:{port}/api/v2/monitor/health")["scheduler"]["status"] == "healthy",
              240, log)
        subprocess.run(["erpsync", "pools", "sync"], env=env, check=True, capture_output=True, cwd=tmp)
        receiver = f"http://127.0.0.1:{port}/erpsync-webhooks"
        _wait("webhook receiver on the API server", lambda: "inbox" in _get(f"{receiver}/stats"), 60, log)
        _post(f"{sb.storefront_url}/_admin/webhooks",
              {"url": f"{receiver}/storefront", "secret": SECRET, "events": ["order.paid"]})
        erp = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=10)
        boot = time.monotonic() - started

        first_seen: dict[str, float] = {}
        stop = threading.Event()

        def watch() -> None:  # the ERP has no write time of its own: first seen, polled every 0.25 s
            while not stop.is_set():
                try:
                    now = time.time()
                    for o in erp.list_sales_orders():
                        ref = str(o.get("external_ref") or "")
                        if ref and ref not in first_seen:
                            first_seen[ref] = now
                except Exception:  # a slow answer on a loaded machine: try again
                    pass
                stop.wait(0.25)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def written() -> dict[str, float]:
            return dict(first_seen)

        # warm-up: the DAG parsed, its watcher running in the triggerer, one order through
        for warm_seed in range(1, 50):
            warm = _post(f"{sb.storefront_url}/_admin/orders/generate", {"count": 1, "seed": warm_seed})["orders"][0]
            if _storefront_paid(sb, warm):
                break
        _wait("warm-up order in the ERP", lambda: warm in written(), 240, log, step=0.5)

        placed: dict[str, float] = {}
        seed = 1000
        t0 = time.time()
        while len(placed) < orders:
            due = t0 + len(placed) / rate
            time.sleep(max(0.0, due - time.time()))
            seed += 1
            oid = _post(f"{sb.storefront_url}/_admin/orders/generate", {"count": 1, "seed": seed})["orders"][0]
            placed[oid] = time.time()
        # the unpaid ones (about 1 in 10) are never sent to the ERP: only paid orders are measured
        paid = {oid for oid in placed if _storefront_paid(sb, oid)}
        deadline = time.monotonic() + 180
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and len(seen) < len(paid):
            seen = {k: v for k, v in written().items() if k in paid}
            time.sleep(0.5)
        stop.set()
        return _table(home, paid, placed, seen, boot)
    finally:
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # our own standalone and its children
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        sb.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _storefront_paid(sb: Any, oid: str) -> bool:
    req = urllib.request.Request(f"{sb.storefront_url}/admin/api/orders/{oid}",
                                 headers={"Authorization": f"Bearer {sb.token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read()).get("financial_status") == "paid"


def _table(home: Path, paid: set[str], placed: dict[str, float], seen: dict[str, float],
           boot: float) -> list[dict[str, Any]]:
    state = sqlite3.connect(home / "erpsync" / "state.db")
    inbox = {r[0]: r[1:] for r in state.execute(
        "SELECT record_id, received_at, claimed_at, run_id FROM inbox WHERE entity = 'order'")}
    meta = sqlite3.connect(home / "airflow.db")
    runs = {r[0]: r[1:] for r in meta.execute(
        "SELECT run_id, queued_at, start_date, run_type FROM dag_run WHERE dag_id = 'orders_sync'")}
    tis = {r[0]: r[1:] for r in meta.execute(
        "SELECT run_id, start_date, end_date FROM task_instance WHERE dag_id = 'orders_sync' "
        "AND task_id = 'sync_orders'")}
    steps: dict[str, list[float]] = {k: [] for k in (
        "order placed -> webhook stored in the inbox", "stored -> claimed by the InboxTrigger",
        "claimed -> run queued by the scheduler", "run queued -> task process started",
        "task started -> ERP sales order written", "placed -> ERP write (total)")}
    used_runs = set()
    rode_along = 0
    for oid in paid:
        if oid not in seen:
            continue
        steps["placed -> ERP write (total)"].append(seen[oid] - placed[oid])
        row = inbox.get(oid)
        if not row or not row[2] or row[2] not in runs or row[2] not in tis:
            continue
        received, claimed, run_id = _ts(row[0]), _ts(row[1]), row[2]
        used_runs.add(run_id)
        queued, task_start = _ts(runs[run_id][0]), _ts(tis[run_id][0])
        steps["order placed -> webhook stored in the inbox"].append(received - placed[oid])
        if claimed is None:  # still pending when a run started: it rode along with that run
            rode_along += 1
        else:
            steps["stored -> claimed by the InboxTrigger"].append(claimed - received)
            steps["claimed -> run queued by the scheduler"].append(queued - claimed)
        steps["run queued -> task process started"].append(task_start - queued)
        steps["task started -> ERP sales order written"].append(seen[oid] - task_start)
    durations = [(_ts(e) or 0) - (_ts(s) or 0) for r, (s, e) in tis.items() if r in used_runs and s and e]
    rows = [{"step": name, "p50_s": statistics.median(v) if v else float("nan"), "p95_s": _pct(v, 0.95),
             "max_s": max(v) if v else float("nan"), "n": len(v), "note": ""} for name, v in steps.items()]
    rows[-1]["note"] = f"{len(seen)}/{len(paid)} paid orders in the ERP"
    rows[1]["note"] = f"{rode_along} rode along unclaimed with a run already starting"
    rows.append({"step": "sync_orders task duration (whole task)", "p50_s": statistics.median(durations)
                 if durations else float("nan"), "p95_s": _pct(durations, 0.95),
                 "max_s": max(durations) if durations else float("nan"), "n": len(durations),
                 "note": f"{len(used_runs)} event runs for {len(paid)} orders; "
                         f"{sum(1 for r in runs.values() if r[2] == 'asset_triggered')} asset-triggered runs in all"})
    rows.append({"step": "airflow standalone start -> ready (once)", "p50_s": boot, "p95_s": "", "max_s": "",
                 "n": 1, "note": ""})
    return rows + import_costs()


def main(argv: list[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks events", description=DESCRIPTION)
    parser.add_argument("--orders", type=int, default=30, help="orders placed (default 30)")
    parser.add_argument("--rate", type=float, default=2.0, help="orders per second (default 2)")
    parser.add_argument("--sweep", default="*/15 * * * *", help="cron of the orders_sync sweep")
    parser.add_argument("--preload", choices=("on", "off"), default="on",
                        help="the scheduler pre-imports the task modules (ERPSYNC_PRELOAD_TASK_MODULES)")
    args = parser.parse_args(argv)
    return run(args.orders, args.rate, args.sweep, args.preload)
