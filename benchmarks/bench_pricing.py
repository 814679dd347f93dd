"""pricing_sync at the seed's B2B scale: 50,000 SKUs and 2,000 customers with negotiated lists.

``python -m benchmarks pricing [--skus N] [--lists N]``. Against a sandbox started for the run
(ERP page size 1000, storefront 250), with a SQLite state store in a temp dir. Rows: the first run
(reads the store's current prices as the baseline, publishes what differs), a second run with no
change (must write nothing), and a run after an ERP rule cut every price by 90 % (must hold
every change and publish nothing). API calls are counted by the sandbox (both services).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks._util import in_child, peak_rss_mb, timer

#: the clock of every run (pricing.clock is pinned; a run's Params never carry it)
NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)

DESCRIPTION = "pricing_sync: 50,000 SKUs x 2,000 customer lists against the sandbox"


def _bench(skus: int, lists: int) -> list[dict[str, Any]]:
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
    from erpsync.flows import pricing
    from erpsync.flows.base import FlowContext
    from erpsync.sandbox.launcher import start_sandbox
    from erpsync.state import StateStore
    from erpsync.state.price_book import PriceBook

    logging.basicConfig(level=logging.ERROR)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, start_sandbox(
        skus=skus, customers=lists * 20, orders=1, locations=1, log_dir=Path(tmp)
    ) as sb:
        store = StateStore.from_url(f"sqlite:///{tmp}/state.db")
        store.migrate()
        erp = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, page_size=1000, timeout=60)
        sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token, page_size=250, timeout=60)

        def calls() -> tuple[int, int]:
            e, s = sb.stats("erp"), sb.stats("storefront")
            return e["requests_total"] + s["requests_total"], s["writes_committed"]

        def one(label: str, run_id: str, **params: Any) -> None:
            c0, w0 = calls()
            ctx = FlowContext.for_run(flow="pricing_sync", run_id=run_id, store=store, erp=erp, storefront=sf,
                                      params=params,
                                      log=logging.getLogger("bench.pricing"))
            with timer() as t, mock.patch.object(pricing, "clock", lambda: NOW):  # the clock pinned
                summary = pricing.run(ctx)
            c1, w1 = calls()
            rows.append({
                "run": label, "skus": skus, "customer_lists": lists, "wall_s": round(t["seconds"], 1),
                "peak_rss_mb": round(peak_rss_mb(), 1), "api_calls": c1 - c0, "storefront_writes": w1 - w0,
                "published": summary.done, "held": summary.reasons.get("held", 0),
                "dead_letters": summary.quarantined,
            })

        one("first run (baseline + publish)", "b1")
        one("second run, no change", "b2")
        import requests  # the admin call rewrites 306,000 rows: longer than the launcher's 10 s timeout

        requests.post(f"{sb.erp_url}/_admin/prices", json={"scale": {"factor": "0.1"}}, timeout=900).raise_for_status()
        one("after a 90 % cut", "b3")
        rows[-1]["price_book_rows"] = PriceBook(store).count()
        store.close()
    return rows


def main(argv: list[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks pricing", description=DESCRIPTION)
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--lists", type=int, default=2_000, help="customers with a negotiated price list")
    args = parser.parse_args(argv)
    return in_child(_bench, args.skus, args.lists)
