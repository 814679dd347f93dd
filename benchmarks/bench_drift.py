"""inventory_drift_check at 10k / 1M SKU-locations, after a first sync plus injected drift.

Per size: sandbox (3 locations), warm, first inventory_sync cycle (so ERP and store agree), then
drift: 0.5 % of the ERP stock changed without a sync, and 0.5 % of the store's levels overwritten.
The check runs in a fresh process (its own peak RSS); then a second check with ``heal`` on.

    python -m benchmarks drift [sizes...]      # default: 1000000
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._inventory import LOCATIONS, context, set_calls, urls_of, warm
from benchmarks._util import in_child, peak_rss_mb

DESCRIPTION = "inventory_drift_check: wall, peak RSS, differences by kind, unreadable (dead-lettered), healed"
SIZES = [1_000_000]


def _sync(urls: dict[str, str], db_url: str) -> dict[str, Any]:
    from erpsync.flows import inventory

    ctx = context(urls, db_url, "inventory_sync", "first")
    t0 = time.perf_counter()
    s = inventory.run(ctx)
    return {"wall_s": time.perf_counter() - t0, "pushed": s.done}


def _check(urls: dict[str, str], db_url: str, run_id: str, heal: bool) -> dict[str, Any]:
    from erpsync.flows import inventory_drift

    ctx = context(urls, db_url, "inventory_drift_check", run_id, heal=heal)
    t0 = time.perf_counter()
    _, _, res = inventory_drift.run_with_email(ctx)
    return {"wall_s": time.perf_counter() - t0, "rss_mb": peak_rss_mb(), **res.summary()}


def one(size: int) -> list[dict[str, Any]]:
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
    from erpsync.sandbox.launcher import start_sandbox

    skus = size // LOCATIONS
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(skus=skus, locations=LOCATIONS, customers=10,
                                                             orders=5, timeout=60) as sb:
        urls = urls_of(sb)
        db_url = f"sqlite:///{Path(tmp) / 'state.db'}"
        warm(sb)
        first = in_child(_sync, urls, db_url)
        n = max(1, size // 200)
        sb.admin("erp", "POST", "churn", {"entity": "stock", "count": n, "seed": 2})
        sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token)
        r = random.Random(3)
        items = [{"sku": f"SKU-{r.randrange(skus) + 1:06d}", "location_id": r.choice(["MAIN", "EAST", "WEST"]),
                  "available": r.randint(1000, 2000)} for _ in range(n)]
        for i in range(0, len(items), 250):
            sf.set_inventory(items[i : i + 250], idempotency_key=f"drift-bench-{i}")
        rows = []
        for run_id, heal in (("check", False), ("heal", True)):
            before = set_calls(sb)
            res = in_child(_check, urls, db_url, run_id, heal)
            kinds = res.pop("by_kind")
            rows.append({"sku_locations": size, "run": run_id, "wall_s": round(res["wall_s"], 2),
                         "peak_rss_mb": round(res["rss_mb"], 1), "compared": res["compared"],
                         **{k: v for k, v in kinds.items()}, "unreadable": res["unreadable"], "healed": res["healed"],
                         "heal_calls": set_calls(sb) - before, "first_sync_s": round(first["wall_s"], 1)})
        return rows


def main(argv: list[str]) -> list[dict[str, Any]]:
    sizes = [int(a) for a in argv] or SIZES
    return [row for n in sizes for row in one(n)]
