"""orders_reconciliation (daily): the store's orders of a day against the ERP's, every difference listed.

For the day (the data interval of a scheduled run, param ``date`` = ``YYYY-MM-DD``, else
yesterday, UTC): every storefront order placed that day that should be in the ERP (paid, not
cancelled) against the ERP sales orders of that day by external reference. Each difference is an
item of the day's drift report: ``missing_in_erp`` (with its dead letter's reason when it has one),
``unexpected_in_erp`` (the store says unpaid/cancelled, or has no such order), ``duplicate_in_erp``,
``currency_mismatch``, ``total_mismatch``, ``tax_mismatch``, ``unmappable`` (the store's record does
not map), ``not_confirmed_in_erp`` (the ERP has the sale but left it unconfirmed: a draft left by a
failed confirm, or cancelled). Both sides are read through their adapter's mapping
(``order_from_storefront``, ``sales_order_summary``), so the same comparison runs on the sandbox,
Tryton or Vendure. The summary has order counts, totals and tax per currency on both sides, and
how many orders of each side were read and compared; a run that read orders of the day on
either side and compared none of them (or too small a share: ``flows.base.check_sides``) fails
after its report is stored. Re-running the same day replaces its report.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import ConfigError, MappingError
from erpsync.flows.base import FlowContext, RunSummary, check_sides
from erpsync.model import ModelError, Order, OrderStatus

FLOW = "orders_reconciliation"
ZERO = Decimal("0")


def day_of(ctx: FlowContext) -> dt.date:
    if ctx.params.get("date"):
        try:
            return dt.date.fromisoformat(str(ctx.params["date"]))
        except ValueError:
            raise ConfigError(f"param date={ctx.params['date']!r} is not YYYY-MM-DD") from None
    if ctx.interval_start is not None:
        return ctx.interval_start.astimezone(dt.UTC).date()
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()


def erp_view(ctx: FlowContext) -> Any:
    """The ERP mapping's ``sales_order_summary`` (``mappings.sales_orders``): what is compared of
    one ERP sales order."""
    view = getattr(erp_mapping(ctx.erp), "sales_order_summary", None)
    if view is None:
        raise ConfigError(f"{type(ctx.erp).__name__}: its mapping has no sales_order_summary; "
                          "orders_reconciliation cannot read its sales orders (docs/adding-a-connector.md)")
    return view


def _raw_id(raw: Any, *names: str) -> str:
    if isinstance(raw, dict):
        for n in names:
            if raw.get(n) not in (None, ""):
                return str(raw[n])
    return "?"


def run(ctx: FlowContext) -> RunSummary:
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    day = day_of(ctx)
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    tolerance = Decimal(str(ctx.params.get("amount_tolerance", "0")))
    items: list[dict[str, Any]] = []
    store_orders: dict[str, Order] = {}
    order_from_storefront = storefront_mapping(ctx.storefront).order_from_storefront
    view = erp_view(ctx)
    read = {"store": 0, "erp": 0}
    for raw in ctx.storefront.list_orders(updated_since=start):
        try:
            order = order_from_storefront(raw)
        except (MappingError, ModelError, TypeError, ValueError) as exc:
            read["store"] += 1  # its day cannot be told: reported, never dropped
            items.append({"kind": "unmappable", "side": "store", "order": _raw_id(raw, "code", "id"),
                          "detail": str(exc)})
            continue
        if not start <= order.placed_at < end:
            continue  # another day's order, changed since: that day's reconciliation has it
        read["store"] += 1
        store_orders[order.external_id] = order
    erp_by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for so in ctx.erp.list_sales_orders(updated_since=start):
        try:
            v = view(so)
        except (MappingError, TypeError, ValueError) as exc:
            read["erp"] += 1
            items.append({"kind": "unmappable", "side": "erp",
                          "order": _raw_id(so, "reference", "external_ref", "number", "order_no", "id"),
                          "detail": str(exc)})
            continue
        if v["placed_on"] != day:
            continue
        read["erp"] += 1
        erp_by_ref[v["ref"] or f"(no reference: {v['order_no']})"].append(v)

    dead = {d.external_id: d.reason for d in ctx.store.list_dead_letters(flow="orders_sync")}
    found, totals, summary.done = compare_orders(store_orders, erp_by_ref, dead, tolerance)
    items += found
    for it in items:
        summary.reasons[it["kind"]] += 1
    compared = {"store": len(store_orders), "erp": sum(len(v) for v in erp_by_ref.values())}
    summary.read = read["store"] + read["erp"]
    summary.compared = compared["store"] + compared["erp"]
    summary.compared_unit = "orders"
    per_currency = money_table(totals)
    report = {"day": day.isoformat(), "differences": len(items), "by_kind": dict(summary.reasons),
              "per_currency": per_currency, "read": read, "compared": compared}
    rows = [{"entity": "order", "external_id": str(it["order"]), **it} for it in items]
    ctx.store.add_drift_report(ctx.flow, f"{day.isoformat()}", report, rows)
    ctx.log.info("%s %s: read %d store / %d ERP orders, compared %d / %d; %d difference(s) %s; per currency %s",
                 ctx.flow, day, read["store"], read["erp"], compared["store"], compared["erp"], len(items),
                 dict(summary.reasons), per_currency)
    check_sides(ctx, summary, {"store orders": (read["store"], compared["store"]),
                               "ERP sales orders": (read["erp"], compared["erp"])},
                f"{day}: unreadable orders are the report's 'unmappable' items")
    return summary


def compare_orders(
    store_orders: Mapping[str, Order], erp_by_ref: Mapping[str, list[dict[str, Any]]], dead: Mapping[str, str],
    tolerance: Decimal,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], int]:
    """Store orders (by id) against ERP sales orders (by external reference, each a
    ``sales_order_summary`` of the ERP's mapping): the differences, counts and totals per currency
    on both sides, and how many orders matched. The daily report and the historical migration's
    reconciliation both use it; ``dead`` gives a missing order's reason (its dead letter)."""
    items: list[dict[str, Any]] = []
    matched = 0
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "store_orders": 0, "store_total": ZERO, "store_tax": ZERO, "erp_orders": 0, "erp_total": ZERO, "erp_tax": ZERO})
    for oid, order in sorted(store_orders.items()):
        expected = order.status is OrderStatus.PAID
        found = erp_by_ref.get(oid, [])
        store_tax = sum((x.amount for x in order.taxes), ZERO) + sum((x.amount for ln in order.lines for x in ln.taxes), ZERO)
        if expected:
            t = totals[order.currency]
            t["store_orders"] += 1
            t["store_total"] += order.total
            t["store_tax"] += store_tax
        if not found:
            if expected:
                items.append({"kind": "missing_in_erp", "order": oid, "currency": order.currency,
                              "store_total": order.total, "detail": dead.get(oid, "not synced yet")})
            continue
        if len(found) > 1:
            items.append({"kind": "duplicate_in_erp", "order": oid, "erp": [so["order_no"] for so in found]})
        so = found[0]
        if not expected and order.status is not OrderStatus.REFUNDED:
            items.append({"kind": "unexpected_in_erp", "order": oid, "erp": so["order_no"],
                          "detail": f"store status {order.status.value}"})
        if expected and so.get("confirmed") is False:
            items.append({"kind": "not_confirmed_in_erp", "order": oid, "erp": so["order_no"],
                          "detail": f"ERP state {so.get('state')}: it will not ship"})
        if so["currency"] != order.currency:
            items.append({"kind": "currency_mismatch", "order": oid, "store": order.currency, "erp": so["currency"]})
            continue
        erp_total, erp_tax = so["total"], so["tax"]
        if abs(erp_total - order.total) > tolerance:
            items.append({"kind": "total_mismatch", "order": oid, "currency": order.currency, "store": order.total,
                          "erp": erp_total, "difference": order.total - erp_total})
        if abs(erp_tax - store_tax) > tolerance:
            items.append({"kind": "tax_mismatch", "order": oid, "currency": order.currency, "store": store_tax,
                          "erp": erp_tax, "difference": store_tax - erp_tax})
        matched += 1
    for ref, found in sorted(erp_by_ref.items()):
        for so in found:
            t = totals[str(so["currency"])]
            t["erp_orders"] += 1
            t["erp_total"] += so["total"]
            t["erp_tax"] += so["tax"]
        if ref not in store_orders:
            items.append({"kind": "unexpected_in_erp", "order": ref, "erp": [so["order_no"] for so in found],
                          "detail": "no storefront order placed that day with this reference"})
    return items, totals, matched


def money_table(totals: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-currency counts and totals with money as strings (JSON keeps them exact)."""
    return {c: {k: (format(v, "f") if isinstance(v, Decimal) else v) for k, v in t.items()}
            for c, t in sorted(totals.items())}
