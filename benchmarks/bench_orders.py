"""orders_sync against a capacity-limited ERP: throughput and placed -> accepted latency.

The sandbox ERP is limited to ``--limit`` concurrent requests of ``--service-ms`` each (default 15
at 200 ms: at most 75 requests/s, so at most 75 orders/s when an order costs one ERP write).
Customers and the catalog are synced first, untimed (customers_sync runs every 15 minutes and
catalog_sync nightly in production, so an order's customer and SKUs are usually bound already; the
generated orders are by known customers and guests on the shared web-guest account), then:

* ``backlog``: ``--orders`` orders are placed at once and one manual run drains them; throughput is
  orders written per second of that run, as a share of the limit's maximum.
* ``stream``: ``--orders`` orders are placed at ``--rate`` (default 90 % of the maximum) in one-second
  batches while orders_sync runs back to back (as the every-minute schedule plus its look-back
  would, but without waiting for the next minute); latency is ERP acceptance time minus the store's
  placing time (both whole seconds).

``python -m benchmarks orders [--orders N] [--workers W] [--phases backlog,stream] [--state-url URL]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from typing import Any

DESCRIPTION = "orders_sync: 10,000 orders to an ERP limited to 15 concurrent requests x 200 ms"


def _ctx(flow: str, store: Any, erp: Any, sf: Any, run_id: str, **params: Any) -> Any:
    from erpsync.flows.base import FlowContext

    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                               log=logging.getLogger(f"bench.{flow}"), run_type="manual")


def _t(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _latencies(erp: Any, sf: Any, since: dt.datetime, placed_ids: set[str]) -> list[float]:
    placed = {o["id"]: _t(o["created_at"]) for o in sf.list_orders(updated_since=since) if o["id"] in placed_ids}
    out = []
    for so in erp.list_sales_orders(updated_since=since):
        ref = so.get("external_ref")
        if ref in placed:
            out.append(max(0.0, _t(so["modified_at"]) - placed[ref]))  # created then, never changed since
    return out


def _calls_since(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> Counter[str]:
    """ERP requests per endpoint sent between two stats readings (admin calls aside)."""
    out: Counter[str] = Counter()
    for endpoint, by_status in after.items():
        n = sum(by_status.values()) - sum(before.get(endpoint, {}).values())
        if n and "/_admin" not in endpoint:
            out[endpoint] = n
    return out


def _generate(sb: Any, count: int, seed: int) -> list[str]:
    ids: list[str] = []
    while count > 0:
        n = min(count, 10_000)
        ids += sb.admin("storefront", "POST", "orders/generate",
                        {"count": n, "guest_share": 0.15, "new_customer_share": 0.0, "seed": seed + len(ids)})["orders"]
        count -= n
    return ids


def main(argv: list[str]) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(prog="python -m benchmarks orders")
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--limit", type=int, default=15)
    ap.add_argument("--service-ms", type=float, default=200.0)
    ap.add_argument("--workers", type=int, default=24)
    ap.add_argument("--rate", type=float, default=None, help="stream arrival rate, orders/s (default 90 %% of max)")
    ap.add_argument("--phases", default="backlog,stream")
    ap.add_argument("--quality-chunk", type=int, default=500, help="orders validated together by the quality gate")
    ap.add_argument("--state-url", default=None, help="state store (default: a temporary SQLite file)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
    from erpsync.flows import catalog, customers, orders
    from erpsync.sandbox.launcher import start_sandbox
    from erpsync.state import StateStore

    max_rate = a.limit / (a.service_ms / 1000)
    rate = a.rate or 0.9 * max_rate
    tmp = tempfile.mkdtemp(prefix="bench-orders-")
    os.environ.setdefault("ERPSYNC_HOME", tmp)
    rows: list[dict[str, Any]] = []
    # the ERP books every sale on MAIN (its default warehouse): this measures throughput, not warehouses
    with start_sandbox(skus=200, customers=2000, orders=0, log_dir=tmp, default_warehouse="MAIN") as sb:
        store = StateStore.from_url(a.state_url or f"sqlite:///{tmp}/state.db")
        store.migrate()
        erp = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=30, page_size=1000)
        sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=30, page_size=250)
        customers.run(_ctx("customers_sync", store, erp, sf, "bench-customers"))
        catalog.run(_ctx("catalog_sync", store, erp, sf, "bench-catalog"))  # binds SKUs to ERP items
        sb.set_faults("erp", concurrency={"limit": a.limit, "service_ms": a.service_ms}, paths=["/api/"])
        params = {"write_concurrency": a.workers, "lookback_minutes": 0.05, "guest_policy": "shared_account",
                  "quality_max_bad_share": 1.0, "quality_chunk": a.quality_chunk}
        for phase in [p.strip() for p in a.phases.split(",") if p.strip()]:
            start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
            before = sb.stats("erp")["sales_orders"]
            calls_before = sb.stats("erp")["requests"]
            if phase == "backlog":
                ids = _generate(sb, a.orders, seed=1)
                t0 = time.perf_counter()
                summary = orders.run(_ctx("orders_sync", store, erp, sf, f"bench-{phase}", **params))
                seconds = time.perf_counter() - t0
            else:
                ids: list[str] = []
                stop = threading.Event()

                def place(ids: list[str] = ids, stop: threading.Event = stop) -> None:
                    n, nxt = 0, time.monotonic()
                    while n < a.orders:
                        batch = min(int(rate), a.orders - n)
                        ids.extend(_generate(sb, batch, seed=1_000_000 + n))
                        n += batch
                        nxt += batch / rate
                        time.sleep(max(0.0, nxt - time.monotonic()))
                    stop.set()

                placer = threading.Thread(target=place, daemon=True)
                t0 = time.perf_counter()
                placer.start()
                done = 0
                k = 0
                while True:
                    finished = stop.is_set()
                    k += 1
                    s = orders.run(_ctx("orders_sync", store, erp, sf, f"bench-{phase}-{k}", **params))
                    done += s.done
                    if finished:
                        break
                seconds = time.perf_counter() - t0
                summary = s
                summary.done = done
            written = sb.stats("erp")["sales_orders"] - before
            calls = _calls_since(calls_before, sb.stats("erp")["requests"])
            if os.environ.get("BENCH_VERBOSE"):
                print(phase, dict(calls.most_common()))
            lat = _latencies(erp, sf, start, set(ids))
            thr = written / seconds if seconds else 0.0
            rows.append({
                "phase": phase, "orders placed": len(ids), "written": written, "seconds": round(seconds, 1),
                "orders/s": round(thr, 1), "share of max": f"{thr / max_rate:.0%}" if phase == "backlog"
                else f"{thr / max_rate:.0%} (arrivals {rate:.0f}/s)",
                "p50 s": _p(lat, 50), "p95 s": _p(lat, 95), "max s": max(lat) if lat else float("nan"),
                "ERP calls": sum(calls.values()), "calls/order": round(sum(calls.values()) / max(written, 1), 2),
                "dead letters": summary.quarantined, "duplicates": sb.stats("erp")["duplicate_external_refs"],
            })
        store.close()
    return rows
