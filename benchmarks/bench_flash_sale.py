"""Flash sale on the sandbox: a hot SKU, a burst of orders on three channels, oversold units.

The seed's story: 500 units, demand that sells them out in about 8 minutes, a 30-minute cron.
Simulated clock (5 s ticks over 30 minutes); every call is real HTTP against the sandbox and the
real flows run: the store refuses checkouts beyond its own level (``inventory_policy`` deny) and
counts itself down; web orders reach the ERP when "orders_sync" runs (every simulated minute,
binding the sales-order cross reference as orders_sync does); the marketplace and B2B channels
sell against the figure last sent to them and write straight to the ERP. Oversold units = units
sold beyond the 500 there were.

* ``cron_30min``: one availability figure for every channel, pushed every 30 minutes (the seed).
* ``erpsync``: inventory_sync every 5 minutes, the fast lane every 10 s (its poll interval),
  the 70 / 20 / 10 channel shares, and the deduction of web orders the ERP has not received yet.
* ``fast_lane_only``: the fast lane without channel shares or the in-flight deduction, to show
  what each part contributes.

    python -m benchmarks flash_sale
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._inventory import context, urls_of
from erpsync.rules.availability import allocate_channels

DESCRIPTION = "flash sale: oversold units, 30-minute cron vs erpsync's fast lane"
HOT_ITEM, HOT_SKU = "ITEM-000002", "SKU-000002"
STOCK = 500
TICK = 5  # simulated seconds
HORIZON = 30 * 60
SHARES = {"web": 70, "marketplace": 20, "b2b": 10}
DEMAND_PER_TICK = 5.5  # units a tick over all channels: 500 units last ~7.6 minutes


def simulate(sb: Any, mode: str, db_url: str) -> dict[str, Any]:
    from erpsync.flows import inventory

    sb.reset(seed=5, skus=50, locations=3, customers=20, orders=5)
    zero = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    for wh, on_hand in (("MAIN", STOCK), ("EAST", 0), ("WEST", 0)):
        sb.admin("erp", "POST", "stock", {"item_code": HOT_ITEM, "warehouse": wh, "on_hand": on_hand, **zero})
    sb.admin("storefront", "POST", "inventory_policy", {"policy": "deny"})
    urls = urls_of(sb)
    erpsync = mode == "erpsync"
    params: dict[str, Any] = {"lookback_minutes": 0}  # identity location map: EAST and WEST get their 0
    if mode != "cron_30min":
        params["fast_lane_skus"] = [HOT_SKU]
    if erpsync:
        params.update(channel_shares=SHARES, channel="web")
    else:
        params["deduct_in_flight"] = False
    sync = context(urls, db_url, "inventory_sync", "s0", **params)
    fast = context(urls, db_url, "inventory_fast_lane", "f0", **params, budget_seconds=0)
    erp, sf, store = sync.erp, sync.storefront, sync.store

    def erp_ats() -> int:
        rec = next(r for r in erp.stock_for_items([HOT_ITEM]) if r["warehouse"] == "MAIN")
        return max(0, rec["on_hand"] - rec["allocated"])

    def other_channels() -> dict[str, int]:  # what erpsync (or the cron) sends marketplace and B2B
        pool = erp_ats()
        if erpsync:  # the same pool the fast lane splits: ERP figure minus web orders in flight
            alloc = allocate_channels(max(0, pool - sum(q for _, q in pending_web)), SHARES)
            return {"marketplace": alloc["marketplace"], "b2b": alloc["b2b"]}
        return {"marketplace": pool, "b2b": pool}

    def run_sync(n: int) -> None:
        sync.run_id = f"s{n}"
        inventory.run(sync)
        if mode == "cron_30min":  # the cron pushes the hot SKU with everything else
            return
        run_fast(n)

    def run_fast(n: int) -> None:
        fast.run_id = f"f{n}"
        inventory.run_fast_lane(fast)

    r = random.Random(1)
    sold = {"web": 0, "marketplace": 0, "b2b": 0}
    refused = 0
    pending_web: list[tuple[str, int]] = []
    so_seq = 0
    run_sync(0)
    others = other_channels()
    sold_out_at = None
    for tick in range(1, HORIZON // TICK + 1):
        t = tick * TICK
        demand = int(DEMAND_PER_TICK) + (1 if r.random() < DEMAND_PER_TICK % 1 else 0)
        for _ in range(demand):
            ch = r.choices(list(SHARES), weights=list(SHARES.values()))[0]
            qty = 1
            if ch == "web":
                try:
                    order = sf.http.request("POST", "/admin/api/orders", json={
                        "email": f"shopper{tick}@example.com", "guest": True,
                        "line_items": [{"sku": HOT_SKU, "quantity": qty}]}).body
                except Exception:  # 422 insufficient_stock: the store shows none left
                    refused += 1
                    continue
                pending_web.append((order["id"], qty))
            else:
                if others[ch] < qty:
                    refused += 1
                    continue
                others[ch] -= qty
                so_seq += 1
                erp.create_sales_order({"external_ref": f"{ch}-{so_seq}", "customer_no": "CUST-000001",
                                        "currency": "USD", "lines": [{"line_no": 1, "item_code": HOT_ITEM, "qty": qty,
                                                                      "unit_price": "10.00"}], "total": "10.00"},
                                       idempotency_key=f"{ch}-{so_seq}")
            sold[ch] += qty
        if sold_out_at is None and sum(sold.values()) >= STOCK:
            sold_out_at = t
        if t % 60 == 0:  # orders_sync: web orders of the last minute reach the ERP
            for oid, q in pending_web:
                rec = erp.create_sales_order({"external_ref": oid, "customer_no": "CUST-000001", "currency": "USD",
                                              "lines": [{"line_no": 1, "item_code": HOT_ITEM, "qty": q,
                                                         "unit_price": "10.00"}], "total": "10.00"},
                                             idempotency_key=f"order:{oid}")
                store.upsert_xref("erp", "sales_order", oid, rec["order_no"])
            pending_web.clear()
        if mode == "cron_30min":
            if t % 1800 == 0:
                run_sync(tick)
                others = other_channels()
        else:
            if t % 300 == 0:
                sync.run_id = f"s{tick}"
                inventory.run(sync)
            if t % 10 == 0:  # the fast lane's poll interval
                run_fast(tick)
                others = other_channels()
    total = sum(sold.values())
    return {"mode": mode, "stock": STOCK, "sold_web": sold["web"], "sold_marketplace": sold["marketplace"],
            "sold_b2b": sold["b2b"], "refused": refused, "oversold_units": max(0, total - STOCK),
            "sold_out_min": round(sold_out_at / 60, 1) if sold_out_at else None}


def main(argv: list[str]) -> list[dict[str, Any]]:
    from erpsync.sandbox.launcher import start_sandbox

    modes = argv or ["cron_30min", "fast_lane_only", "erpsync"]
    rows = []
    with start_sandbox(skus=50, customers=20, orders=5) as sb:
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(simulate(sb, mode, f"sqlite:///{Path(tmp) / 'state.db'}"))
    return rows
