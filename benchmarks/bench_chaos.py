"""Chaos suite: the writing flows against the real sandbox under faults. Target: 0 duplicated, 0 lost,
exactly the dead letters each scenario's data must produce (none but the returns' over_refund) and
every other record delivered (``ChaosResult.problems``).

``python -m benchmarks chaos [--orders 10000] [--other-orders 2000] [--only NAME ...]``; the
customers_sync / shipments_sync / returns_sync scenarios take ``--other-orders`` as their size
(storefront customers, or orders to ship / return).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.chaos import SCENARIOS, run_scenario
from erpsync.sandbox.launcher import start_sandbox

DESCRIPTION = ("orders_sync under commit-then-timeout (30% of ERP writes), a 10-minute ERP outage, SIGKILL "
               "mid-batch, a 429 storm and out-of-order events; customers_sync, shipments_sync and returns_sync "
               "under commit-then-timeout of their writes, returns_sync during an ERP outage: delivered / duplicated / lost / dead letters")


def main(argv: list[str]) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="python -m benchmarks chaos")
    p.add_argument("--orders", type=int, default=10_000, help="orders in the commit-then-timeout scenarios")
    p.add_argument("--other-orders", type=int, default=2_000, help="orders in the other scenarios")
    p.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(message)s")
    rows: list[dict[str, Any]] = []
    # the ERP's default warehouse pinned as the tests pin it (tests/fixtures/sandbox.py): the
    # scenarios' orders name no warehouse, and an ERP with two refuses them (warehouse_required),
    # which dead-letters every order (the suite reports it as FAILED: 0 delivered)
    with tempfile.TemporaryDirectory(prefix="erpsync-chaos-") as tmp, start_sandbox(
        skus=60, locations=2, customers=200, orders=10, log_dir=Path(tmp) / "sandbox", default_warehouse="MAIN"
    ) as sb:
        for name in args.only or list(SCENARIOS):
            n = args.orders if name.startswith("commit_then_timeout") else args.other_orders
            result = run_scenario(name, sb, Path(tmp), n)
            print(f"  {name}: {result.row()}", flush=True)
            problems = result.problems()
            if problems:
                print(f"    FAILED: {'; '.join(problems)}", flush=True)
            rows.append({**result.row(), "problems": problems})
    bad = [r["scenario"] for r in rows if r["problems"]]
    print("RESULT: " + (f"FAILED in {', '.join(bad)}" if bad else
                        "0 duplicated, 0 lost, the expected dead letters and deliveries in every scenario"))
    return rows
