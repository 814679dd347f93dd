"""catalog_sync: ERP items -> storefront products (the ERP is the master of the catalog).

Pipeline (OCA connector style): read the items changed since the cursor (minus a lookback
overlap; the param ``full_pass`` reads all), group the variants of a template into one product,
map, skip the product if its content hash equals the one bound in the cross reference, upsert it
through the ledger, bind the cross reference. Only ERP-owned fields are written
(``erpsync.ownership``): the storefront keeps its descriptions, tags and images, and prices are
pricing_sync's (through the price guard), except the first price of a new product.

A product the ERP retires (``active: false``) is unpublished (``status: archived``), never
deleted; a retired item the store never had is not created.

Cross references written (the inventory flow reads them: stock only for products the store has):
``("storefront", "product", <product code>) -> storefront product id`` with the content hash, and
``("storefront", "variant", <sku>) -> storefront product id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from erpsync.errors import MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    CursorTracker,
    FlowContext,
    RunSummary,
    dead_letter,
    idempotent_write,
    parse_cursor,
    sync_hash,
)
from erpsync.mappings.engine import amount, dec_str
from erpsync.mappings.erp_catalog import product_from_erp
from erpsync.mappings.storefront_catalog import handle_of, product_to_storefront
from erpsync.model import Product
from erpsync.rules.price_guard import check_price, guard_policy

FLOW = "catalog_sync"
SYSTEM = "storefront"
ENTITY = "product"
VARIANT_ENTITY = "variant"
DEFAULT_LOOKBACK_MINUTES = 60  # nightly: a wide overlap costs little, a missed item costs a lot


def run(ctx: FlowContext) -> RunSummary:
    """Sync the items changed since the cursor (all with ``full_pass``); the cursor moves after the batch."""
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    full = _flag(ctx.params.get("full_pass"))
    since = None if full else _since(ctx)
    ctx.log.info("%s: reading ERP items %s", ctx.flow, "(full pass)" if full else f"updated since {since or 'the beginning'}")
    tracker = CursorTracker()
    try:
        sync_batch(ctx, ctx.erp.list_items(updated_since=since), summary, tracker=tracker)
    except TransientError:
        summary.failed += 1
        ctx.log.error("%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render())
        raise
    tracker.save(ctx)
    return summary


def sync_batch(ctx: FlowContext, items: Iterable[dict[str, Any]], summary: RunSummary, *,
               state: _RunState | None = None, tracker: CursorTracker | None = None) -> None:
    """The product-writing path of the nightly run and the historical migration: the items as
    products (variants of a template grouped), each through ``sync_product``."""
    state = state or _RunState(ctx)
    for code, raws in _products(iter(items), tracker or CursorTracker(), state):
        sync_product(ctx, code, raws, summary, state)


def run_state(ctx: FlowContext) -> _RunState:
    """The per-run memo (item code -> SKU, the store's handles read once), for batches of one run."""
    return _RunState(ctx)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")


def _since(ctx: FlowContext) -> dt.datetime | None:
    """The stored cursor minus the lookback (param ``lookback_minutes``, default 60)."""
    value = ctx.store.get_cursor(ctx.flow)
    if not value:
        return None
    minutes = float(ctx.params.get("lookback_minutes", DEFAULT_LOOKBACK_MINUTES))
    return parse_cursor(value) - dt.timedelta(minutes=minutes)


class _RunState:
    """Per run: item code -> SKU (kit components) from what was read and the cross reference."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.skus: dict[str, str] = {}
        self.guard = guard_policy(ctx.params)
        self._store_handles: set[str] | None = None

    def store_has(self, handle: str) -> bool:
        """Whether the storefront has a product with ``handle`` (its product list read once per run)."""
        if self._store_handles is None:
            self._store_handles = {str(p.get("handle")) for p in self.ctx.storefront.list_products()}
        return handle in self._store_handles

    def sku_of(self, item_code: str) -> str | None:
        if item_code in self.skus:
            return self.skus[item_code]
        x = self.ctx.store.get_xref_by_internal("erp", "item", item_code)
        if x is not None:
            self.skus[item_code] = x.external_id
            return x.external_id
        return None  # not read in this run and never bound: the product waits (mapping error)


def _products(
    items: Iterator[dict[str, Any]], tracker: CursorTracker, state: _RunState
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Plain items one by one as they stream; variants of a template grouped and sent at the end."""
    templates: dict[str, list[dict[str, Any]]] = {}
    for raw in items:
        tracker.see({"updated_at": raw.get("modified_at")})
        if raw.get("item_code") and isinstance(raw.get("sku"), str):
            state.skus[str(raw["item_code"])] = raw["sku"].strip().upper()
        parent = raw.get("variant_of")
        if parent:
            templates.setdefault(str(parent), []).append(raw)
        else:
            yield str(raw.get("item_code") or "?"), [raw]
    yield from templates.items()


def sync_product(
    ctx: FlowContext, code: str, raws: list[dict[str, Any]], summary: RunSummary, state: _RunState
) -> None:
    """One product; a mapping or permanent error dead-letters it and the batch goes on."""
    try:
        outcome = _sync(ctx, code, raws, state)
    except MappingError as exc:
        dead_letter(ctx, summary, ENTITY, code, raws, f"mapping_error: {exc}", error_kind="mapping")
        return
    except PermanentError as exc:
        dead_letter(ctx, summary, ENTITY, code, raws, f"storefront_rejected: {exc.status} {exc}")
        return
    if outcome in ("unchanged", "retired_not_in_store"):
        summary.skip(outcome)
        return
    summary.done += 1
    summary.reasons[outcome] += 1
    ctx.store.resolve_dead_letters(ctx.flow, ENTITY, code)


def _sync(ctx: FlowContext, code: str, raws: list[dict[str, Any]], state: _RunState) -> str:
    store = ctx.store
    product = product_from_erp(raws, state.sku_of)
    digest = sync_hash(product)
    xref = store.get_xref(SYSTEM, ENTITY, product.code)
    if xref is not None and xref.content_hash == digest:
        return "unchanged"
    if xref is None and not product.active and not state.store_has(handle_of(product)):
        return "retired_not_in_store"
    payload = product_to_storefront(product)
    action = "updated" if xref is not None else "created"
    if xref is None:
        held = _initial_prices(product, raws, payload, state)
        if held:
            payload["status"] = "draft"
            action = "created_draft"
            ctx.log.warning("product %s created as draft, no valid first price: %s", product.code, held)
    if not product.active:
        action = "unpublished"
    key = f"product:{product.code}:{digest[:16]}"
    result = idempotent_write(
        ctx,
        key=key,
        entity=ENTITY,
        external_id=product.code,
        operation="upsert_product",
        payload=payload,
        write=lambda: ctx.storefront.upsert_product(payload, idempotency_key=key),
        ref_of=lambda rec: str((rec.get("product") or rec)["id"]),
        system=SYSTEM,
    )
    store.upsert_xref(SYSTEM, ENTITY, product.code, result.ref, content_hash=digest)
    for v in product.variants:
        store.upsert_xref(SYSTEM, VARIANT_ENTITY, v.sku, result.ref)
    for raw in raws:
        if raw.get("item_code") and raw.get("sku"):
            store.upsert_xref("erp", "item", str(raw["sku"]).strip().upper(), str(raw["item_code"]))
    ctx.log.info("product %s (%s) %s as %s", product.code, handle_of(product), action, result.ref)
    return action


def _initial_prices(
    product: Product, raws: list[dict[str, Any]], payload: dict[str, Any], state: _RunState
) -> list[str]:
    """A new product gets its ERP list price as first price when the price guard's absolute checks
    pass (no zero price, not below cost); otherwise it is created as a draft (never on sale at 0)."""
    by_sku = {str(r.get("sku") or "").strip().upper(): r for r in raws}
    problems: list[str] = []
    for v in payload["variants"]:
        raw = by_sku.get(v["sku"], {})
        try:
            price = amount(raw.get("list_price"))
            cost: Decimal | None = amount(raw["cost"]) if raw.get("cost") not in (None, "") else None
        except Exception:
            problems.append(f"{v['sku']}: list_price {raw.get('list_price')!r}")
            continue
        verdict = check_price(price, current=None, cost=cost, policy=state.guard)
        if verdict.hold:
            problems.append(f"{v['sku']}: {verdict.reason}")
        else:
            v["price"] = dec_str(price)
    return problems

