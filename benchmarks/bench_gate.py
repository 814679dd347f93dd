"""What the quality gate costs: its fixed cost per task process, its cost per record, and an
inventory cycle with the gate against the same cycle without it.

* ``fixed, cold``: a fresh interpreter that has imported the erpsync core (as a task has) runs the
  gate over one batch of 10 stock rows: wall time and resident memory added by that first batch
  (the import of GX and pandas, the GX context, the first validation), then a second batch;
* ``fixed, preload+fork``: the same in a process forked from a parent that imported
  ``erpsync_airflow.preload``'s modules (what a task forked from the scheduler inherits); its
  memory is the pages the task adds (RSS delta) and its private memory (``smaps_rollup``);
* ``per record``: the gate (stock suite, the inventory flow's mapper, chunks of 5,000, 1 % bad)
  over 1k, 10k and 100k rows in a warm process;
* ``inventory``: one inventory_sync cycle (1 % changed) without the gate and with it, side by side
  on the same sandbox, each in a fresh process.

    python -m benchmarks gate [fixed] [records] [inventory [sizes...]]   # default: all, 100000
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DESCRIPTION = "quality gate: fixed cost per task process, cost per record, inventory cycle with/without"
ROOT = Path(__file__).resolve().parent.parent


def memory_mb() -> tuple[float, float]:
    """(resident, private) memory of this process in MB, from /proc (Linux)."""
    rss = private = 0.0
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            name, _, rest = line.partition(":")
            if name == "Rss":
                rss = int(rest.split()[0]) / 1024
            elif name in ("Private_Clean", "Private_Dirty"):
                private += int(rest.split()[0]) / 1024
    return rss, private


def stock_rows(n: int, bad_every: int = 100) -> list[dict[str, Any]]:
    """``n`` raw ERP stock rows; every ``bad_every``-th has a negative deduction (a dead letter)."""
    return [{"item_code": f"ITEM-{i // 3:07d}", "warehouse": f"WH{i % 3}", "on_hand": 50 + i % 7,
             "allocated": -1 if bad_every and i % bad_every == bad_every - 1 else i % 3, "reserved": 0,
             "damaged": 0, "quarantined": 0, "safety_stock": 1} for i in range(n)]


def _context(home: str) -> Any:
    os.environ["ERPSYNC_HOME"] = home
    from erpsync.flows.base import FlowContext
    from erpsync.state import StateStore

    store = StateStore.from_url(f"sqlite:///{Path(home) / 'state.db'}")
    store.migrate()
    log = logging.getLogger("bench.gate")
    log.setLevel(logging.ERROR)
    return FlowContext(flow="inventory_sync", run_id="bench", store=store, erp=None, storefront=None,  # type: ignore[arg-type]
                       params={}, log=log)


def _gate(ctx: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> int:
    from erpsync.flows.base import RunSummary
    from erpsync.mappings import stock
    from erpsync.quality import run_gate

    summary = RunSummary(flow=ctx.flow)
    passed = 0
    for start in range(0, len(rows), chunk):
        passed += len(run_gate(ctx, "stock", rows[start:start + chunk], summary, mapper=stock.stock_level,
                               key=stock.stock_key))
    return passed


def _first_batches(home: str) -> dict[str, float]:
    """In this process: the core imported, then two batches of 10 rows through the gate."""
    import erpsync.flows.base  # noqa: F401  the core a task has imported before its first batch
    import erpsync.mappings.stock  # noqa: F401
    import erpsync.quality  # noqa: F401

    ctx = _context(home)
    rss0, priv0 = memory_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    _gate(ctx, stock_rows(10, bad_every=0))
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1, priv1 = memory_mb()
    t1 = time.perf_counter()
    _gate(ctx, stock_rows(10, bad_every=0))
    second = time.perf_counter() - t1
    ctx.store.close()
    return {"first_batch_s": first, "first_batch_cpu_s": first_cpu, "rss_delta_mb": rss1 - rss0, "private_delta_mb": priv1 - priv0,
            "private_after_mb": priv1, "second_batch_s": second}


_CHILD = """
import json, os, sys
sys.path[:0] = [{root!r}, {root!r} + "/plugins"]
from benchmarks import bench_gate
mode, home = sys.argv[1], sys.argv[2]
if mode == "fork":
    import erpsync.flows.base, erpsync.mappings.stock, erpsync.quality, erpsync.state
    from erpsync_airflow import preload
    preload.preload_for_tasks(["airflow", "scheduler"])  # as the scheduler does, then forks
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = bench_gate._first_batches(home)
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    print(data.decode())
else:
    print(json.dumps(bench_gate._first_batches(home)))
"""


def fixed() -> list[dict[str, Any]]:
    out = []
    for mode in ("cold", "fork"):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "ERPSYNC_HOME": home, "GX_ANALYTICS_ENABLED": "false"}
            proc = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT)), mode, home], env=env,
                                  capture_output=True, text=True, check=True, timeout=600)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append({"measure": "fixed, cold" if mode == "cold" else "fixed, preload+fork",
                    "records": 10, "seconds": round(res["first_batch_s"], 2), "cpu_s": round(res["first_batch_cpu_s"], 2),
                    "rss_delta_mb": round(res["rss_delta_mb"], 1), "private_delta_mb": round(res["private_delta_mb"], 1),
                    "next_batch_s": round(res["second_batch_s"], 3)})
    return out


def _per_record(home: str, sizes: list[int]) -> list[dict[str, Any]]:
    ctx = _context(home)
    _gate(ctx, stock_rows(10, bad_every=0))  # warm: GX imported, context built
    out = []
    for n in sizes:
        rows = stock_rows(n)
        t0, c0 = time.perf_counter(), time.process_time()
        passed = _gate(ctx, rows)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.append({"measure": "per record", "records": n, "seconds": round(wall, 3), "cpu_s": round(cpu, 3),
                    "us_per_record": round(wall / n * 1e6, 1), "cpu_us_per_record": round(cpu / n * 1e6, 1),
                    "passed": passed})
    ctx.store.close()
    return out


def records(sizes: list[int] | None = None) -> list[dict[str, Any]]:
    from benchmarks._util import in_child

    with tempfile.TemporaryDirectory() as home:
        return in_child(_per_record_rows, home, sizes or [1_000, 10_000, 100_000])["rows"]


def _per_record_rows(home: str, sizes: list[int]) -> dict[str, Any]:
    return {"rows": _per_record(home, sizes)}


def inventory(sizes: list[int]) -> list[dict[str, Any]]:
    from benchmarks.bench_inventory import side_by_side

    return [row for n in sizes for row in side_by_side(n)]


def main(argv: list[str]) -> list[dict[str, Any]]:
    parts = [a for a in argv if not a.isdigit()] or ["fixed", "records", "inventory"]
    sizes = [int(a) for a in argv if a.isdigit()] or [100_000]
    rows: list[dict[str, Any]] = []
    if "fixed" in parts:
        rows += fixed()
    if "records" in parts:
        rows += records()
    if "inventory" in parts:
        rows += inventory(sizes)
    return rows
