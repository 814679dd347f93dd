"""One inventory_sync cycle at 10k, 100k and 1M SKU-locations with 1 % of the ERP stock changed.

Per size: start the sandbox (3 locations), warm it, run the first cycle (full export + baseline,
reported as ``first_s``), change 1 % of the stock records in the ERP (``/_admin/churn``), then time
one cycle in a fresh process (its own peak RSS). API calls are the store's inventory writes counted
by the sandbox, against the minimum ceil(changed / 250).

    python -m benchmarks inventory [sizes...]      # default: 10000 100000 1000000
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._inventory import LOCATIONS, context, set_calls, urls_of, warm
from benchmarks._util import in_child, peak_rss_mb

DESCRIPTION = "inventory_sync cycle, 1 % changed: wall, peak RSS, API calls vs minimum"
SIZES = [10_000, 100_000, 1_000_000]


def _cycle(urls: dict[str, str], db_url: str, run_id: str, gate: bool = True) -> dict[str, Any]:
    from erpsync.flows import inventory

    if not gate:  # the same cycle with every stock row passed unchecked (benchmarks gate)
        import erpsync.quality

        erpsync.quality.run_gate = lambda ctx, entity, rows, summary, **kw: list(rows)  # type: ignore[assignment]
    ctx = context(urls, db_url, "inventory_sync", run_id)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = inventory.run(ctx)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ctx.store.close()
    return {"wall_s": wall, "cpu_s": cpu, "rss_mb": peak_rss_mb(), "pushed": summary.done,
            "not_in_store": summary.reasons.get("not_in_store", 0), "quarantined": summary.quarantined}


def one(size: int) -> dict[str, Any]:
    from erpsync.sandbox.launcher import start_sandbox

    skus = size // LOCATIONS
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(skus=skus, locations=LOCATIONS, customers=10,
                                                             orders=5, timeout=60) as sb:
        urls = urls_of(sb)
        db_url = f"sqlite:///{Path(tmp) / 'state.db'}"
        t0 = time.perf_counter()
        warm(sb)
        warm_s = time.perf_counter() - t0
        first = in_child(_cycle, urls, db_url, "first")
        changed = max(1, size // 100)
        sb.admin("erp", "POST", "churn", {"entity": "stock", "count": changed, "seed": 1})
        before = set_calls(sb)
        res = in_child(_cycle, urls, db_url, "cycle")
        calls = set_calls(sb) - before
        return {"sku_locations": size, "changed_erp": changed, "pushed": res["pushed"],
                "not_in_store": res["not_in_store"], "wall_s": round(res["wall_s"], 2),
                "peak_rss_mb": round(res["rss_mb"], 1), "api_calls": calls,
                "min_calls": math.ceil(res["pushed"] / 250), "warm_s": round(warm_s, 1),
                "first_s": round(first["wall_s"], 1), "first_pushed": first["pushed"],
                "first_rss_mb": round(first["rss_mb"], 1)}


def _forked(fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a process forked from this one once it imported what
    ``erpsync_airflow.preload`` imports in the scheduler (how Airflow starts a task); adds the
    private memory the forked process made its own (``private_mb``)."""
    import json
    import os
    import sys

    from benchmarks.bench_gate import ROOT, memory_mb

    sys.path.insert(0, str(ROOT / "plugins"))
    from erpsync_airflow import preload

    preload.preload_for_tasks(["airflow", "scheduler"])  # what the scheduler does before it forks tasks
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _, private0 = memory_mb()
        out = fn(*args)
        out["private_mb"] = memory_mb()[1] - private0
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    return dict(json.loads(data.decode()))


def side_by_side(size: int, rounds: int = 1) -> list[dict[str, Any]]:
    """One cycle without the quality gate and one with it, ``rounds`` times on one sandbox (a
    fresh 1 % churn before each cycle), each in a fresh process (``cold``: it imports everything)
    and forked from a parent that ran the scheduler's preload (``preload+fork``: a task under
    Airflow); the best wall time of each."""
    from erpsync.sandbox.launcher import start_sandbox

    runs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(skus=size // LOCATIONS, locations=LOCATIONS,
                                                             customers=10, orders=5, timeout=60) as sb:
        urls = urls_of(sb)
        db_url = f"sqlite:///{Path(tmp) / 'state.db'}"
        warm(sb)
        in_child(_cycle, urls, db_url, "first")
        i = 0
        for _ in range(rounds):
            for mode in ("cold", "preload+fork"):
                for gate in (False, True):
                    i += 1
                    sb.admin("erp", "POST", "churn", {"entity": "stock", "count": max(1, size // 100), "seed": i})
                    args = (urls, db_url, f"cycle-{i}", gate)
                    res = in_child(_cycle, *args) if mode == "cold" else in_child(_forked, _cycle, *args)
                    runs.setdefault((mode, gate), []).append(res)
    out = []
    for mode in ("cold", "preload+fork"):
        off = min(runs[(mode, False)], key=lambda r: r["wall_s"])
        on = min(runs[(mode, True)], key=lambda r: r["wall_s"])
        mem = "private_mb" if mode != "cold" else "rss_mb"
        out.append({"measure": f"inventory cycle, {mode}", "records": size, "pushed": on["pushed"],
                    "quarantined": on["quarantined"], "no_gate_s": round(off["wall_s"], 2),
                    "gate_s": round(on["wall_s"], 2), "ratio": round(on["wall_s"] / off["wall_s"], 2),
                    "no_gate_cpu_s": round(off["cpu_s"], 2), "gate_cpu_s": round(on["cpu_s"], 2),
                    "cpu_ratio": round(on["cpu_s"] / off["cpu_s"], 2),
                    "no_gate_mb": round(off[mem], 1), "gate_mb": round(on[mem], 1),
                    "memory": "peak RSS" if mode == "cold" else "private (forked)"})
    return out


def main(argv: list[str]) -> list[dict[str, Any]]:
    sizes = [int(a) for a in argv] or SIZES
    return [one(n) for n in sizes]
