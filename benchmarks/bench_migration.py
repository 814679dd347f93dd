"""historical_migration of orders into an ERP with a rate limit: throughput as a share of the limit.

The sandbox ERP answers at most ``--rps`` requests per second (its ``rate_limit`` token bucket;
beyond it 429 with ``Retry-After``). ``--orders`` historical orders are seeded in the storefront and
migrated store -> ERP in batches of ``--batch-size`` with the rate budget set to the same limit
(``erp_rps``), through the same writer as orders_sync (customers first, the quality gate, the
ledger). Every ERP call counts against the limit: the sales order itself, and the customer
look-ups and creations and item look-ups the first orders of each customer and SKU need. Shown:
orders written per second, ERP calls per second, both as a share of the limit, and the 429s the
ERP had to send (0 when the budget holds).

``python -m benchmarks migration [--orders N] [--rps R[,R...]] [--batch-size B] [--workers W] [--state-url URL]``
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from typing import Any

DESCRIPTION = "historical_migration: 5,000 orders into an ERP limited to 40 requests/s (rate_limit fault)"


def _api_calls(stats: dict[str, Any]) -> tuple[int, int]:
    """ERP API requests (admin routes aside) and how many of them were answered 429."""
    calls = limited = 0
    for route, by_status in stats["requests"].items():
        if " /api/" not in route:
            continue
        calls += sum(by_status.values())
        limited += int(by_status.get("429", 0) or by_status.get(429, 0) or 0)
    return calls, limited


def main(argv: list[str]) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks migration")
    ap.add_argument("--orders", type=int, default=5_000, help="historical orders seeded in the storefront")
    ap.add_argument("--rps", default="40", help="the ERP's rate limit (requests/s); several: 20,40")
    ap.add_argument("--batch-size", type=int, default=2_500)
    ap.add_argument("--workers", type=int, default=8, help="write_concurrency of the orders writer")
    ap.add_argument("--customers", type=int, default=300)
    ap.add_argument("--state-url", default=None, help="state store (default: a temporary SQLite file)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
    from erpsync.flows import migration
    from erpsync.flows.base import FlowContext
    from erpsync.state import StateStore

    tmp = tempfile.mkdtemp(prefix="bench-migration-")
    os.environ.setdefault("ERPSYNC_HOME", tmp)
    rows: list[dict[str, Any]] = []
    from erpsync.sandbox.launcher import start_sandbox

    # the ERP books every sale on MAIN (its default warehouse): this measures throughput, not warehouses
    with start_sandbox(skus=200, customers=a.customers, orders=a.orders, log_dir=tmp, default_warehouse="MAIN") as sb:
        for n, rps in enumerate(float(r) for r in a.rps.split(",") if r.strip()):
            sb.reset(orders=a.orders)
            store = StateStore.from_url(a.state_url or f"sqlite:///{tmp}/state-{n}.db")
            store.migrate()
            erp = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=30, page_size=1000)
            sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=30, page_size=250)
            sb.set_faults("erp", rate_limit={"rps": rps, "retry_after": 1}, paths=["/api/"])
            params = {"erp_rps": rps, "write_concurrency": a.workers, "quality_max_bad_share": 1.0}
            ctx = FlowContext.for_run(flow=migration.FLOW, run_id=f"bench-{n}", store=store, erp=erp,
                                      storefront=sf, params=params, log=logging.getLogger("bench.migration"),
                                      run_type="manual")
            import erpsync.quality.gx  # noqa: F401  (the GX import is paid before the clock starts)

            spec = migration.MigrationSpec.from_params({
                "entity": "orders", "direction": "store_to_erp", "date_from": "2020-01-01",
                "batch_size": a.batch_size, "flow_params": params})
            before_calls, before_429 = _api_calls(sb.stats("erp"))
            t0 = time.perf_counter()
            job = migration.run_job(ctx, f"bench-{n}", spec)
            seconds = time.perf_counter() - t0
            calls, limited = _api_calls(sb.stats("erp"))
            calls, limited = calls - before_calls, limited - before_429
            report = job.report or {}
            orders_s = job.written / seconds
            rows.append({
                "ERP limit req/s": f"{rps:g}", "orders read": job.processed, "written": job.written,
                "seconds": round(seconds, 1), "orders/s": round(orders_s, 1), "orders/s of limit": f"{orders_s / rps:.0%}",
                "ERP calls": calls, "calls/order": round(calls / max(job.written, 1), 2),
                "calls/s": round(calls / seconds, 1), "calls/s of limit": f"{calls / seconds / rps:.0%}",
                "429s": limited, "reconciled": "yes" if report.get("reconciled") else "NO",
                "duplicates": sb.stats("erp")["duplicate_external_refs"],
            })
            store.close()
    return rows
