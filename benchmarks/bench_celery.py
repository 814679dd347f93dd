"""orders_sync on Airflow's CeleryExecutor, 1 worker against 2 (issue 22): a backlog of orders
against an ERP limit that one worker cannot fill, as a share of that limit.

The real stack (`make up-celery`'s shape): scheduler, DAG processor and API server, `airflow celery
worker --concurrency 1` processes, the metadata DB and the state store on PostgreSQL, Redis as the
broker, orders_sync split into ``--partitions`` mapped tasks (``ERPSYNC_PARTITIONS_ORDERS_SYNC``)
and the sandbox ERP. The ERP is latency-bound, not CPU-bound, so a shared two-core machine does not
decide the result: every ERP API call takes ``--latency-ms``; a worker writes ``write_concurrency``
orders at once (DAG Param), so it can send at most ``write_concurrency / latency`` orders/s. The
ERP's limit ``--rps`` is both what its Connection publishes (erpsync's shared budget in the state
store) and what the sandbox enforces (429 beyond it).

Cases, each a fresh backlog of store orders (about 9 in 10 paid) and one manual run:

* ``below``: ``--orders`` orders, ``write_concurrency`` ``--below-wc`` (default 4: at most 4
  orders/s a worker at 1 s a call): two workers stay under the limit (12 req/s); target: 2 workers
  >= 1.8 x one worker.
* ``at``: ``--at-orders`` orders, ``--at-wc`` (default 8: 8 orders/s a worker, about 75 % of the
  limit): one worker cannot fill the limit, two could overfill it; target: 2 workers >= 90 % of
  the limit.

Each task's start (Celery hand-over, the task process, the ERP logins of its writer threads)
costs seconds, so a partition must have tens of seconds of writing for the rate to be the ERP's.

Each case runs with worker 1 alone (the partitions one after the other), then with both (the
partitions at once). The rate is measured while the ERP is being written: from the first to the
last new sales order the sandbox has (polled every 0.25 s), ERP requests per second as a share of
``--rps``; "run s" is the DAG run from trigger to success (task start-up included). At the end,
counted from the sandbox's records: every paid order in the ERP exactly once (0 duplicated, 0
lost), no 429.

    python -m benchmarks celery [--orders 160] [--at-orders 300] [--rps 12] [--latency-ms 1000] [--partitions 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from benchmarks._celery_stack import Stack, celery_env

DESCRIPTION = "orders_sync on 1 vs 2 Celery workers against an ERP limit one worker cannot fill"
REPO = Path(__file__).resolve().parent.parent
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Redis DB 11 (`make up-celery` uses 12, the scale-out test 13); the queue is the run's own too
BROKER_URL = "redis://127.0.0.1:6379/11"
WORKERS = ("bench-worker-1", "bench-worker-2")


@contextlib.contextmanager
def _databases(count: int) -> Iterator[list[str]]:
    """Fresh PostgreSQL databases (psycopg URLs), dropped afterwards."""
    names = [f"erpsync_test_celerybench_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield [f"postgresql://postgres@127.0.0.1:5432/{n}" for n in names]
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _connections(sb: Any, state_url: str, rps: float) -> dict[str, str]:
    erp = {"conn_type": "erpsync_erp", "host": "127.0.0.1", "port": int(sb.erp_url.rsplit(":", 1)[1]),
           "login": sb.erp_user, "password": sb.erp_password,
           "extra": {"adapter": "sandbox", "rps": rps, "concurrency": 4, "sale_warehouse": "MAIN"}}
    store = {"conn_type": "erpsync_storefront", "host": "127.0.0.1", "port": int(sb.storefront_url.rsplit(":", 1)[1]),
             "password": sb.token, "extra": {"adapter": "sandbox", "rps": 500, "concurrency": 4}}
    return {"AIRFLOW_CONN_ERP_DEFAULT": json.dumps(erp), "AIRFLOW_CONN_STOREFRONT_DEFAULT": json.dumps(store),
            "AIRFLOW_CONN_ERPSYNC_STATE": json.dumps({"conn_type": "erpsync_state", "host": state_url})}


def _env(root: Path, meta_url: str, state_url: str, sb: Any, a: argparse.Namespace) -> dict[str, str]:
    return celery_env(root, meta_url, state_url, _connections(sb, state_url.replace(
        "postgresql://", "postgresql+psycopg://", 1), a.rps), broker_url=BROKER_URL, queue_prefix="erpsync-bench-",
        drop=("AIRFLOW", "ERPSYNC_"), extra={
            "ERPSYNC_PARTITIONS_ORDERS_SYNC": str(a.partitions),
            # no sweep during the benchmark: only its own manual runs write (a daily cron, far away)
            "ERPSYNC_SWEEP_CRON_ORDERS_SYNC": "0 3 * * *"})


def _requests(stats: dict[str, Any]) -> int:
    return sum(sum(v.values()) for k, v in stats["requests"].items() if "/_admin" not in k)


def _run_case(stack: Stack, sb: Any, sf: Any, case: str, workers: int, wc: int, a: argparse.Namespace,
              seed: int, count: int) -> tuple[dict[str, Any], list[str]]:
    """Place a backlog, trigger one manual run, measure while the ERP is written."""
    ids = sb.admin("storefront", "POST", "orders/generate",
                   {"count": count, "guest_share": 0.15, "new_customer_share": 0.0, "seed": seed})["orders"]
    paid = sum(1 for oid in ids if (sf.get_order(oid) or {}).get("financial_status") == "paid")
    before = sb.stats("erp")
    base, base_req, base_429 = before["sales_orders"], _requests(before), before["faults_injected"].get("rate_limit", 0)
    conf = {"write_concurrency": wc, "lookback_minutes": 0.05, "quality_max_bad_share": 1.0}
    stack.wait("no orders_sync run active", lambda: not stack.sql(
        "SELECT 1 FROM dag_run WHERE dag_id = 'orders_sync' AND state IN ('queued', 'running')"), 300)
    known = {r for (r,) in stack.sql("SELECT run_id FROM dag_run WHERE dag_id = 'orders_sync'")}
    t0 = time.monotonic()
    stack.run("dags", "trigger", "orders_sync", "--conf", json.dumps(conf))
    samples: list[tuple[float, int, int]] = []  # (time, sales orders, ERP requests) while writing
    run_id = None
    while True:
        stats = sb.stats("erp")
        now = time.monotonic()
        written = stats["sales_orders"] - base
        if written > 0:
            samples.append((now, written, _requests(stats)))
        rows = stack.sql("SELECT run_id, state FROM dag_run WHERE dag_id = 'orders_sync' AND run_type = 'manual'")
        mine = [(r, s) for r, s in rows if r not in known]
        if mine and mine[0][1] in ("success", "failed"):
            run_id, state = mine[0]
            break
        if now - t0 > a.timeout:
            raise RuntimeError(f"{case} with {workers} worker(s): the run did not end within {a.timeout:.0f} s")
        time.sleep(0.25)
    run_s = time.monotonic() - t0
    if state != "success":
        raise RuntimeError(f"{case} with {workers} worker(s): run {run_id} ended {state} (logs in {stack.logs})")
    after = sb.stats("erp")
    written = after["sales_orders"] - base
    first = next(s for s in samples if s[1] > 0)
    last = next(s for s in samples if s[1] == samples[-1][1])
    span = max(last[0] - first[0], 1e-3)
    orders_s = (last[1] - first[1]) / span
    req_s = (last[2] - first[2]) / span
    hosts = sorted({h for (h,) in stack.sql(
        "SELECT hostname FROM task_instance WHERE dag_id = 'orders_sync' AND task_id = 'sync_orders' "
        "AND run_id = %s", run_id)})
    row = {
        "case": case, "workers": workers, "write_concurrency": wc,
        "worker max orders/s": round(wc / (a.latency_ms / 1000), 1),
        "orders": len(ids), "paid": paid, "written": written,
        "writing s": round(span, 1), "run s": round(run_s, 1),
        "orders/s": round(orders_s, 2), "ERP req/s": round(req_s, 2), "share of limit": req_s / a.rps,
        "429s": after["faults_injected"].get("rate_limit", 0) - base_429,
        "ERP req/order": round((_requests(after) - base_req) / max(written, 1), 2),
        "hosts": ",".join(hosts),
    }
    return row, ids


def main(argv: list[str]) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks celery")
    ap.add_argument("--orders", type=int, default=160, help="store orders placed per run of the 'below' case")
    ap.add_argument("--at-orders", type=int, default=300, help="store orders placed per run of the 'at' case")
    ap.add_argument("--rps", type=float, default=12.0, help="the ERP's limit (Connection rps; 429 beyond)")
    ap.add_argument("--latency-ms", type=float, default=1000.0, help="time of every ERP API call")
    ap.add_argument("--below-wc", type=int, default=4, help="write_concurrency of the 'below' case")
    ap.add_argument("--at-wc", type=int, default=8, help="write_concurrency of the 'at' case")
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--cases", default="below,at")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import redis

    from erpsync.connectors.sandbox_erp import SandboxErpAdapter
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
    from erpsync.flows import catalog, customers
    from erpsync.flows.base import FlowContext
    from erpsync.sandbox.launcher import start_sandbox
    from erpsync.state import StateStore

    redis.Redis.from_url(BROKER_URL, socket_connect_timeout=5).ping()  # the broker must be up
    cases = [c.strip() for c in a.cases.split(",") if c.strip()]
    wc_of = {"below": a.below_wc, "at": a.at_wc}
    root = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    for d in ("airflow", "dags", "logs", "erpsync"):
        (root / d).mkdir()
    os.environ.setdefault("ERPSYNC_HOME", str(root / "erpsync"))  # the setup flows run in this process
    (root / "dags" / "orders_sync.py").symlink_to(REPO / "dags" / "orders_sync.py")
    rows: list[dict[str, Any]] = []
    all_ids: list[str] = []
    with start_sandbox(skus=100, customers=400, orders=0, log_dir=root / "logs", default_warehouse="MAIN") as sb, \
            _databases(2) as (meta_url, state_url):
        store_url = state_url.replace("postgresql://", "postgresql+psycopg://", 1)
        erp = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=30, page_size=1000)
        sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=30, page_size=250)
        with StateStore.from_url(store_url) as store:  # customers and items bound first, untimed
            store.migrate()
            for flow, run in (("customers_sync", customers.run), ("catalog_sync", catalog.run)):
                run(FlowContext.for_run(flow=flow, run_id=f"bench-{flow}", store=store, erp=erp,
                                        storefront=sf, params={}, log=logging.getLogger(f"bench.{flow}"),
                                        run_type="manual"))
        env = _env(root, meta_url, store_url, sb, a)
        stack = Stack(env, meta_url, root / "logs")
        try:
            stack.boot(WORKERS[:1], ["orders_sync"])
            stack.sql("UPDATE dag SET is_paused = false WHERE dag_id = 'orders_sync'")
            # every ERP API call is slow; beyond the limit the ERP answers 429
            sb.set_faults("erp", latency_ms=a.latency_ms, jitter_ms=a.latency_ms / 10, paths=["/api/"],
                          rate_limit={"rps": a.rps, "retry_after": 1})
            seed = 1
            for workers in (1, 2):
                if workers == 2:
                    stack.start_worker(WORKERS[1])
                for case in cases:
                    count = a.at_orders if case == "at" else a.orders
                    row, ids = _run_case(stack, sb, sf, case, workers, wc_of[case], a, seed, count)
                    seed += count
                    rows.append(row)
                    all_ids += ids
        finally:
            stack.stop()
            sb.clear_faults()
        # exactly once, from the sandbox's own records
        refs = Counter(so.get("external_ref") for so in erp.list_sales_orders())
        paid = [oid for oid in all_ids if (sf.get_order(oid) or {}).get("financial_status") == "paid"]
        duplicated = sum(1 for n in refs.values() if n > 1)
        lost = sum(1 for oid in paid if refs.get(oid, 0) == 0)
        with StateStore.from_url(store_url) as store:
            dead = len(store.list_dead_letters(flow="orders_sync"))
    for case in cases:
        one = next(r for r in rows if r["case"] == case and r["workers"] == 1)
        two = next(r for r in rows if r["case"] == case and r["workers"] == 2)
        two["2w / 1w"] = round(two["orders/s"] / one["orders/s"], 2) if one["orders/s"] else float("nan")
        one["2w / 1w"] = ""
    for row in rows:
        row["share of limit"] = f"{row['share of limit']:.0%}"
    rows.append({"case": "all", "orders": len(all_ids), "paid": len(paid),
                 "written": sum(r["written"] for r in rows if isinstance(r.get("written"), int)),
                 "hosts": f"duplicated {duplicated}, lost {lost}, dead letters {dead}"})
    return rows
