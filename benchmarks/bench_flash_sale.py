"""Flash sale on the sandbox: one hot SKU split over two warehouses, multi-unit orders on three
channels, every order through orders_sync; units sold against the units there were.

The story (issue 16, item 9): 500 units of one SKU, 300 in warehouse MAIN and 200 in EAST; demand
that sells them out in about 7 minutes; orders of 1 to 4 units. Simulated clock (5 s ticks over
40 minutes: the cron pushes at 0 and 30); every call is real HTTP against the sandbox (realistic
defaults: the store refuses checkouts beyond its levels and routes each order to a location that
has it, the ERP books a sale on the warehouse it names and lets a warehouse go negative) and the
real flows run:

* web: a shopper's checkout in the store, against the store's levels (what erpsync pushed there);
* marketplace and B2B: sold against the figure last sent to that channel, then entered in the
  store as an order of that channel (``source_name``, ``inventory_behaviour: bypass``);
* orders_sync every simulated minute writes every new store order to the ERP, on the warehouse
  of the store location it ships from (``sale_warehouses_by_location``), else the Connection's
  default warehouse (``sale_warehouse`` MAIN): so marketplace and B2B sales all land on MAIN.

Modes: ``cron_30min`` (one availability figure for every channel, pushed every 30 minutes),
``fast_lane_only`` (the event-driven fast lane every 10 s, no channel shares or in-flight
deduction) and ``erpsync`` (inventory_sync every 5 minutes, the fast lane every 10 s, the 70 / 20
/ 10 channel shares and the deduction of store orders the ERP has not received yet).

Oversold units = units sold beyond the 500 there were; also reported: what the ERP shows per
warehouse at the end (a negative figure is a warehouse booked beyond its stock) and the orders
orders_sync did not write (dead letters: e.g. an ERP that refuses a sale naming no warehouse).

    python -m benchmarks flash_sale [MODE ...]
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._inventory import context, urls_of
from erpsync.rules.availability import allocate_channels

DESCRIPTION = "flash sale: 500 units over two warehouses, orders through orders_sync; oversold units, cron vs fast lane"
HOT_ITEM, HOT_SKU = "ITEM-000002", "SKU-000002"
SPLIT = {"MAIN": 300, "EAST": 200, "WEST": 0}
STOCK = sum(SPLIT.values())
TICK = 5  # simulated seconds
HORIZON = 40 * 60  # the sale, then 10 minutes after the cron's push at 30 (shoppers keep coming)
SHARES = {"web": 70, "marketplace": 20, "b2b": 10}
DEMAND_PER_TICK = 5.5  # units a tick over all channels: 500 units last ~7.6 minutes
ORDER_SIZES = (1, 1, 1, 2, 2, 3, 3, 4)  # units per order: 2.125 on average
#: the ERP Connection's extra (what `make up` configures): the warehouse of each store location
#: (the sandbox's store locations are named as the ERP's warehouses), else MAIN
ERP_EXTRA = {"sale_warehouse": "MAIN", "sale_warehouses_by_location": {w: w for w in SPLIT}}


def simulate(sb: Any, mode: str, db_url: str) -> dict[str, Any]:
    from erpsync.flows import catalog, inventory, orders

    sb.reset(seed=5, skus=50, locations=3, customers=20, orders=0)
    sb.settings("erp", default_warehouse=None)  # as Tryton with several warehouses: the sale must name one
    assert sb.settings("storefront")["inventory_policy"] == "deny"
    urls = urls_of(sb)
    zero = {"allocated": 0, "reserved": 0, "damaged": 0, "quarantined": 0, "safety_stock": 0}
    for wh, on_hand in SPLIT.items():
        sb.admin("erp", "POST", "stock", {"item_code": HOT_ITEM, "warehouse": wh, "on_hand": on_hand, **zero})
    catalog.run(context(urls, db_url, "catalog_sync", "c0"))  # binds the SKUs to ERP items (nightly)
    erpsync = mode == "erpsync"
    params: dict[str, Any] = {"lookback_minutes": 0}  # identity location map: MAIN, EAST, WEST
    if mode != "cron_30min":
        params["fast_lane_skus"] = [HOT_SKU]
    if erpsync:
        params.update(channel_shares=SHARES, channel="web")
    else:
        params["deduct_in_flight"] = False
    sync = context(urls, db_url, "inventory_sync", "s0", **params)
    fast = context(urls, db_url, "inventory_fast_lane", "f0", **params, budget_seconds=0)
    osync = context(urls, db_url, "orders_sync", "o0", guest_policy="shared_account", lookback_minutes=0.05)
    osync.erp.limits = {**(getattr(osync.erp, "limits", None) or {}), **ERP_EXTRA}
    erp, sf, store = sync.erp, sync.storefront, sync.store

    def erp_by_warehouse() -> dict[str, int]:
        return {r["warehouse"]: r["on_hand"] - r["allocated"] for r in erp.stock_for_items([HOT_ITEM])}

    def store_levels() -> dict[str, int]:
        return {r["location_id"]: r["available"] for r in sf.inventory_for([HOT_SKU])}

    def other_channels() -> dict[str, int]:  # what erpsync (or the cron) sends marketplace and B2B
        pool = max(0, sum(erp_by_warehouse().values()))  # the item as a whole: what the ERP has unsold
        if erpsync:  # the same pool the fast lane splits: ERP figure minus orders in flight
            alloc = allocate_channels(max(0, pool - sum(q for _, q in pending)), SHARES)
            return {"marketplace": alloc["marketplace"], "b2b": alloc["b2b"]}
        return {"marketplace": pool, "b2b": pool}

    runs = {"n": 0}

    def run_sync(tick: int) -> None:
        sync.run_id = f"s{tick}"
        inventory.run(sync)

    def run_fast(tick: int) -> None:
        fast.run_id = f"f{tick}"
        inventory.run_fast_lane(fast)

    written = {"done": 0, "dead": 0}

    def run_orders(tick: int) -> None:
        osync.run_id = f"o{tick}"
        summary = orders.run(osync)
        written["done"] += summary.done
        runs["n"] += 1
        pending.clear()

    r = random.Random(1)
    sold = {"web": 0, "marketplace": 0, "b2b": 0}
    refused_orders = 0
    placed_orders = 0
    pending: list[tuple[str, int]] = []  # store orders orders_sync has not run over yet
    run_sync(0)
    if mode != "cron_30min":
        run_fast(0)
    others = other_channels()
    start_levels = store_levels()
    sold_out_at = None
    budget = DEMAND_PER_TICK
    for tick in range(1, HORIZON // TICK + 1):
        t = tick * TICK
        budget_units = int(budget) + (1 if r.random() < budget % 1 else 0)
        while budget_units > 0:
            ch = r.choices(list(SHARES), weights=list(SHARES.values()))[0]
            qty = r.choice(ORDER_SIZES)
            budget_units -= qty
            body: dict[str, Any] = {"email": f"shopper{tick}.{budget_units}@example.com", "guest": True,
                                    "line_items": [{"sku": HOT_SKU, "quantity": qty}], "source_name": ch}
            if ch != "web":
                if others[ch] < qty:  # the channel shows fewer than wanted: the shopper leaves
                    refused_orders += 1
                    continue
                others[ch] -= qty
                body["inventory_behaviour"] = "bypass"  # sold by the channel, entered in the store
            try:
                order = sf.http.request("POST", "/admin/api/orders", json=body).body
            except Exception:  # 422 insufficient_stock: the store shows too few left
                refused_orders += 1
                continue
            placed_orders += 1
            pending.append((order["id"], qty))
            sold[ch] += qty
        if sold_out_at is None and sum(sold.values()) >= STOCK:
            sold_out_at = t
        if t % 60 == 0:  # orders_sync: the store's orders of the last minute reach the ERP
            run_orders(tick)
        if mode == "cron_30min":
            if t % 1800 == 0:
                run_sync(tick)
                others = other_channels()
        else:
            if t % 300 == 0:
                run_sync(tick)
            if t % 10 == 0:  # the fast lane's poll interval
                run_fast(tick)
                others = other_channels()
    run_orders(HORIZON // TICK + 1)  # the last orders reach the ERP
    dead = len(store.list_dead_letters(flow="orders_sync", limit=100_000))
    total = sum(sold.values())
    erp_end = erp_by_warehouse()
    erp_orders = sb.stats("erp")["sales_orders"]
    return {"mode": mode, "stock": f"{STOCK} ({SPLIT['MAIN']}+{SPLIT['EAST']})", "units_sold": total,
            "oversold_units": max(0, total - STOCK), "sold_web": sold["web"],
            "sold_marketplace": sold["marketplace"], "sold_b2b": sold["b2b"], "orders": placed_orders,
            "refused_orders": refused_orders, "erp_sales_orders": erp_orders, "orders_dead_lettered": dead,
            "erp_end_main": erp_end.get("MAIN"), "erp_end_east": erp_end.get("EAST"),
            "store_start": f"{start_levels.get('MAIN')}/{start_levels.get('EAST')}",
            "sold_out_min": round(sold_out_at / 60, 1) if sold_out_at else None}


def main(argv: list[str]) -> list[dict[str, Any]]:
    from erpsync.sandbox.launcher import start_sandbox

    modes = argv or ["cron_30min", "fast_lane_only", "erpsync"]
    rows = []
    with start_sandbox(skus=50, customers=20, orders=0) as sb:
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(simulate(sb, mode, f"sqlite:///{Path(tmp) / 'state.db'}"))
    return rows
