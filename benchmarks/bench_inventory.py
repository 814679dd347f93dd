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


def _cycle(urls: dict[str, str], db_url: str, run_id: str) -> dict[str, Any]:
    from erpsync.flows import inventory

    ctx = context(urls, db_url, "inventory_sync", run_id)
    t0 = time.perf_counter()
    summary = inventory.run(ctx)
    wall = time.perf_counter() - t0
    ctx.store.close()
    return {"wall_s": wall, "rss_mb": peak_rss_mb(), "pushed": summary.done,
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


def main(argv: list[str]) -> list[dict[str, Any]]:
    sizes = [int(a) for a in argv] or SIZES
    return [one(n) for n in sizes]
