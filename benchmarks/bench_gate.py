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
* ``inventory``: inventory_sync cycles (1 % changed) without the gate and with it, side by side
  on the same sandbox in the order without, with, with, without (:func:`side_by_side`), each in a
  fresh process and forked from a preloading parent; the mean of each side.

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
    return FlowContext.for_run(flow="inventory_sync", run_id="bench", store=store, erp=None, storefront=None,  # type: ignore[arg-type]
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


#: the order of one round's cycles: without the gate, with it, with it, without it (ABBA)
ORDER = (False, True, True, False)


def side_by_side(size: int, rounds: int = 1) -> list[dict[str, Any]]:
    """Inventory cycles without the gate and with it on one sandbox (a fresh 1 % churn before
    each), in a fresh process (``cold``) and forked from a parent that ran the scheduler's preload
    (``preload+fork``), ``rounds`` times in the order :data:`ORDER`; the mean of each.

    Each cycle on the sandbox costs a little more than the one before it (measured: a cycle
    without the gate 0.18, 0.37, 0.47 s of CPU as the 1st, 3rd and 5th of a series): one cycle
    without then one with the gate would charge that growth to the gate. In the order without,
    with, with, without, both sides sit at the same mean position."""
    from benchmarks._inventory import LOCATIONS, urls_of, warm
    from benchmarks._util import in_child
    from benchmarks.bench_inventory import _cycle, _forked
    from erpsync.sandbox.launcher import start_sandbox

    runs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(skus=size // LOCATIONS, locations=LOCATIONS,
                                                             customers=10, orders=5, timeout=60) as sb:
        urls = urls_of(sb)
        db_url = f"sqlite:///{Path(tmp) / 'state.db'}"
        warm(sb)
        in_child(_cycle, urls, db_url, "first")
        i = 0
        for mode in ("cold", "preload+fork"):
            for _ in range(rounds):
                for gate in ORDER:
                    i += 1
                    sb.admin("erp", "POST", "churn", {"entity": "stock", "count": max(1, size // 100), "seed": i})
                    args = (urls, db_url, f"cycle-{i}", gate)
                    res = in_child(_cycle, *args) if mode == "cold" else in_child(_forked, _cycle, *args)
                    runs.setdefault((mode, gate), []).append(res)
    out = []
    for mode in ("cold", "preload+fork"):
        off, on = runs[(mode, False)], runs[(mode, True)]

        def mean(rs: list[dict[str, Any]], key: str) -> float:
            return sum(r[key] for r in rs) / len(rs)

        mem = "private_mb" if mode != "cold" else "rss_mb"
        out.append({"measure": f"inventory cycle, {mode}", "records": size, "cycles": len(off) + len(on),
                    "pushed": on[-1]["pushed"], "quarantined": on[-1]["quarantined"],
                    "no_gate_s": round(mean(off, "wall_s"), 2), "gate_s": round(mean(on, "wall_s"), 2),
                    "ratio": round(mean(on, "wall_s") / mean(off, "wall_s"), 2),
                    "no_gate_cpu_s": round(mean(off, "cpu_s"), 2), "gate_cpu_s": round(mean(on, "cpu_s"), 2),
                    "cpu_ratio": round(mean(on, "cpu_s") / mean(off, "cpu_s"), 2),
                    "no_gate_mb": round(mean(off, mem), 1), "gate_mb": round(mean(on, mem), 1),
                    "memory": "peak RSS" if mode == "cold" else "private (forked)"})
    return out


def inventory(sizes: list[int], rounds: int = 1) -> list[dict[str, Any]]:
    return [row for n in sizes for row in side_by_side(n, rounds)]


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
