"""The PostgreSQL state store's own ceiling: records written per second by 1, 2, 4 worker
processes at once (issue 22), what every Celery worker shares.

One record costs what a synced order costs the store: ``ledger_begin`` (the intent, its own
transaction), then one transaction with ``ledger_complete``, ``upsert_xref`` and its ``audit``
row. No external system is called: this is the store alone, the ceiling above which adding
workers cannot help. Each process writes distinct keys for ``--seconds``.

    python -m benchmarks state_store [--processes 1,2,4] [--seconds 5] [--dsn postgresql://...]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
import uuid
from typing import Any

import psycopg
from psycopg import sql

DESCRIPTION = "the PostgreSQL state store alone: records written per second by 1, 2, 4 processes"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _writer(url: str, tag: str, seconds: float, start_at: float) -> int:
    from erpsync.state import StateStore

    store = StateStore.from_url(url)
    while time.time() < start_at:
        time.sleep(0.005)
    done, stop = 0, start_at + seconds
    while time.time() < stop:
        key = f"bench:{tag}:{done}"
        store.ledger_begin(key, "orders_sync", "erp")
        with store.transaction():
            store.ledger_complete(key, f"SO-{tag}-{done}")
            store.upsert_xref("erp", "sales_order", f"{tag}-{done}", f"SO-{tag}-{done}")
            store.audit(flow="orders_sync", system="erp", operation="create_sales_order", entity="sales_order",
                        external_id=f"{tag}-{done}", request={"n": done}, response={"order_no": done},
                        duration_ms=1.0, result="ok")
        done += 1
    store.close()
    return done


def main(argv: list[str]) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks state_store")
    ap.add_argument("--processes", default="1,2,4")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--dsn", default=os.environ.get("ERPSYNC_TEST_PG_DSN") or DEFAULT_DSN,
                    help="server to create the throwaway database on")
    a = ap.parse_args(argv)
    from erpsync.state import StateStore

    name = f"erpsync_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(a.dsn, autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = a.dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    rows = []
    try:
        with StateStore.from_url(url) as store:
            store.migrate()
        ctx = mp.get_context("spawn")
        for n in (int(x) for x in a.processes.split(",")):
            start_at = time.time() + 3.0  # every process connected and imported before the clock starts
            with ctx.Pool(n) as pool:
                counts = pool.starmap(_writer, [(url, f"p{n}-{i}", a.seconds, start_at) for i in range(n)])
            total = sum(counts)
            rows.append({"processes": n, "seconds": a.seconds, "records": total,
                         "records_per_s": total / a.seconds, "transactions_per_s": 2 * total / a.seconds,
                         "cpu_cores": os.cpu_count()})
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()
    return rows
