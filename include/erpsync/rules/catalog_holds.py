"""Risky catalog changes a person approves before the store shows them (issue 20 item 4).

catalog_sync publishes what the ERP says; three kinds of change are held instead (kept in the
approvals table, the store's product stays as it is) while the rest of the batch goes on:

* **bulk retirement**: one run retiring more than ``retire_share_pct`` (default 10 %) of the
  published products, and at least ``retire_min`` (default 5) of them (retiring one product of a
  three-product shop is no accident to catch): every retirement of that run is held (an ERP
  import gone wrong looks like this; a real range clean-up is approved in one bulk action);
* **open orders**: a product retired while one of its SKUs was sold in the last
  ``open_order_days`` (default 14) days and not cancelled (the store's order lines recorded in
  ``channel_sales``; a cancelled order is recorded with 0 units): customers may still wait for it;
* **best seller**: a title or unit-of-measure change on a best seller: a product with a SKU among
  the ``best_seller_top`` (default 50) SKUs by units sold in the last ``days`` (default 30) days
  (``channel_sales`` again; a SKU that sold nothing is never a best seller).

Pure functions: the flow gathers the facts (``erpsync.flows.catalog``), these decide. Settings
come from the environment (``erpsync.config.catalog_hold_settings``, docs/configuration.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

RETIRE = "catalog_retire"
CHANGE = "catalog_change"
KINDS = (RETIRE, CHANGE)


@dataclass(frozen=True, slots=True)
class HoldRules:
    enabled: bool = True
    retire_share_pct: Decimal | int = 10
    retire_min: int = 5
    open_orders: bool = True
    open_order_days: int = 14
    best_seller_top: int = 50
    days: int = 30


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """One product of a run as the rules see it: retired now, or its title and units then and now
    (``title_before`` None: nothing known of it before, e.g. a new product)."""

    code: str
    skus: tuple[str, ...]
    retire: bool
    title_before: str | None
    title_after: str
    uom_before: Mapping[str, str] = field(default_factory=dict)
    uom_after: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hold:
    code: str
    kind: str  # RETIRE | CHANGE (the approval's kind)
    reason: str


def best_sellers(units_by_sku: Mapping[str, int], top: int) -> set[str]:
    """The ``top`` SKUs by units sold (ties at the edge all count); a SKU that sold nothing is none."""
    sold = sorted(((u, s) for s, u in units_by_sku.items() if u > 0), reverse=True)
    if top <= 0 or not sold:
        return set()
    edge = sold[min(top, len(sold)) - 1][0]
    return {s for u, s in sold if u >= edge}


def _share(n: int, of: int) -> Decimal:
    return (Decimal(n) * 100 / Decimal(of)).quantize(Decimal("0.1"))


def bulk_retire_reason(retiring: int, published: int, rules: HoldRules) -> str | None:
    """Why a run's retirements are held as a whole, or None (an empty store holds nothing by share)."""
    if not rules.enabled or published <= 0 or retiring <= 0 or retiring < rules.retire_min:
        return None
    share = _share(retiring, published)
    if Decimal(retiring) * 100 <= Decimal(rules.retire_share_pct) * published:
        return None
    return (f"bulk_retire: this run retires {retiring} of {published} published products ({share}%), "
            f"more than {rules.retire_share_pct}%")


def open_orders_reason(change: CatalogChange, open_orders: Mapping[str, int], rules: HoldRules) -> str | None:
    if not (rules.enabled and rules.open_orders and change.retire):
        return None
    waiting = [(s, open_orders[s]) for s in change.skus if open_orders.get(s, 0) > 0]
    if not waiting:
        return None
    listed = ", ".join(f"{s} ({n} units)" for s, n in waiting)
    return f"retired_with_open_orders: sold in the last {rules.open_order_days} days, open orders for {listed}"


def best_seller_reason(change: CatalogChange, best: set[str], units_by_sku: Mapping[str, int],
                       rules: HoldRules) -> str | None:
    if not rules.enabled or change.retire or change.title_before is None:
        return None
    hot = [s for s in change.skus if s in best]
    if not hot:
        return None
    what = []
    if change.title_before != change.title_after:
        what.append(f"title {change.title_before!r} -> {change.title_after!r}")
    for sku in sorted(set(change.uom_before) & set(change.uom_after)):
        if change.uom_before[sku] != change.uom_after[sku]:
            what.append(f"unit of {sku} {change.uom_before[sku]!r} -> {change.uom_after[sku]!r}")
    if not what:
        return None
    units = sum(units_by_sku.get(s, 0) for s in hot)
    return (f"best_seller_change: {'; '.join(what)} on a best seller ({', '.join(hot)}: {units} units "
            f"in {rules.days} days)")


def decide(changes: Iterable[CatalogChange], *, published: int, open_orders: Mapping[str, int],
           sales: Mapping[str, int], rules: HoldRules) -> list[Hold]:
    """The holds of a run's changes (at most one per product, in the order given): ``published``
    is how many products the store has from us, ``open_orders`` and ``sales`` units by SKU."""
    if not rules.enabled:
        return []
    changes = list(changes)
    bulk = bulk_retire_reason(sum(1 for c in changes if c.retire), published, rules)
    best = best_sellers(sales, rules.best_seller_top)
    holds = []
    for c in changes:
        if c.retire:
            reason = bulk or open_orders_reason(c, open_orders, rules)
            if reason:
                holds.append(Hold(c.code, RETIRE, reason))
        else:
            reason = best_seller_reason(c, best, sales, rules)
            if reason:
                holds.append(Hold(c.code, CHANGE, reason))
    return holds


__all__ = ["CHANGE", "KINDS", "RETIRE", "CatalogChange", "Hold", "HoldRules", "best_seller_reason",
           "best_sellers", "bulk_retire_reason", "decide", "open_orders_reason"]
