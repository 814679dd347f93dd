"""catalog_sync: ERP items -> storefront products (the ERP is the master of the catalog).

Pipeline (OCA connector style): read the items changed since the cursor (minus a lookback
overlap; the param ``full_pass`` reads all), group the variants of a template into one product,
map, skip the product if its content hash equals the one bound in the cross reference, upsert it
through the ledger, bind the cross reference. Only ERP-owned fields are written
(``erpsync.ownership``): the storefront keeps its descriptions, tags and images, and prices are
pricing_sync's (through the price guard), except the first price of a new product.

A product the ERP retires (``active: false``) is unpublished (``status: archived``), never
deleted; a retired item the store never had is not created.

Before anything is written, the products of the batch pass the quality gate (``ctx.gate``, suite
``product``): a product that cannot be mapped or fails an expectation is a dead letter with the
check and the value, the rest goes on; a batch whose bad share is above the flow's limit
(``erpsync.quality.settings``) fails the run before anything of it is written.

The mappings come from the adapters (``erpsync.connectors.registry``): the same flow runs
against the sandbox or Tryton -> Vendure. The ERP mapping reads an item (``catalog_item``) and
maps the items of a product (``product_from_erp``); the storefront mapping names the product
(``handle_of``, ``product_handle``) and builds its payload (``product_to_storefront``).

Cross references written (the inventory flow reads them: stock only for products the store has):
``("storefront", "product", <product code>) -> storefront product id`` with the content hash, and
``("storefront", "variant", <sku>) -> storefront product id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import HostileRecord, MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    CursorTracker,
    FlowContext,
    RunSummary,
    dead_letter,
    idempotent_write,
    parse_cursor,
    sync_hash,
)
from erpsync.limits import price_problem
from erpsync.mappings.engine import amount
from erpsync.mappings.refs import CatalogItem
from erpsync.model import Product
from erpsync.quality.settings import allowed_currencies
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
    products (variants of a template grouped), through the quality gate (suite ``product``: what
    fails is quarantined, not written), each through ``sync_product``."""
    state = state or _RunState(ctx)
    products = _products(iter(items), tracker or CursorTracker(), state)
    passed = ctx.gate(ENTITY, products, summary, mapper=lambda g: _product(g, state), key=lambda g: g.code)
    for group in passed:
        sync_product(ctx, group.code, list(group), summary, state)


def _product(group: _Group, state: _RunState) -> Product:
    """The product of ``group``; its list prices pass the price checks of pricing_sync
    (``erpsync.limits.price_problem``: a number, finite, not negative, within the currency's
    bound), or the product is a dead letter (``bad_price``/``absurd_amount``)."""
    product = state.erp_map.product_from_erp(group, state.sku_of)
    for raw in group:
        ref = state.erp_map.catalog_item(raw)
        if ref.list_price not in (None, ""):
            problem = price_problem(ref.list_price, ref.currency, what=f"list price of {ref.sku or ref.code}")
            if problem:
                raise HostileRecord(problem)
    return product


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
        self.erp_map = erp_mapping(ctx.erp)
        self.sf_map = storefront_mapping(ctx.storefront)
        self._store_handles: set[str] | None = None

    def store_has(self, handle: str) -> bool:
        """Whether the storefront has a product with ``handle`` (its product list read once per run)."""
        if self._store_handles is None:
            self._store_handles = {str(self.sf_map.product_handle(p)) for p in self.ctx.storefront.list_products()}
        return handle in self._store_handles

    def sku_of(self, item_code: str) -> str | None:
        if item_code in self.skus:
            return self.skus[item_code]
        x = self.ctx.store.get_xref_by_internal("erp", "item", item_code)
        if x is not None:
            self.skus[item_code] = x.external_id
            return x.external_id
        return None  # not read in this run and never bound: the product waits (mapping error)


class _Group(list):  # type: ignore[type-arg]
    """The raw items of one product (a list: its dead letter's payload), with the product's code."""

    __slots__ = ("code",)

    def __init__(self, code: str, raws: Iterable[dict[str, Any]] = ()) -> None:
        super().__init__(raws)
        self.code = code


def _products(items: Iterator[dict[str, Any]], tracker: CursorTracker, state: _RunState) -> Iterator[_Group]:
    """Plain items one by one as they stream; variants of a template grouped and sent at the end."""
    templates: dict[str, _Group] = {}
    for raw in items:
        if not isinstance(raw, Mapping):  # not a record (null, malformed JSON left as text): the gate quarantines it
            yield _Group("?", [raw])
            continue
        ref = state.erp_map.catalog_item(raw)
        tracker.see({"updated_at": ref.updated_at})
        if ref.code and ref.sku:
            state.skus[ref.code] = ref.sku
        if ref.template:
            templates.setdefault(ref.template, _Group(ref.template)).append(raw)
        else:
            yield _Group(ref.code or "?", [raw])
    yield from templates.values()


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
    sf_map = state.sf_map
    product = state.erp_map.product_from_erp(raws, state.sku_of)
    refs = [state.erp_map.catalog_item(r) for r in raws]
    digest = sync_hash(product)
    xref = store.get_xref(SYSTEM, ENTITY, product.code)
    if xref is not None and xref.content_hash == digest:
        return "unchanged"
    if xref is None and not product.active and not state.store_has(sf_map.handle_of(product)):
        return "retired_not_in_store"
    action = "updated" if xref is not None else "created"
    if xref is None:
        prices, held = _initial_prices(product, refs, state)
        payload = sf_map.product_to_storefront(product, prices=prices, draft=bool(held))
        if held:
            action = "created_draft"
            ctx.log.warning("product %s created as draft, no valid first price: %s", product.code, held)
    else:
        payload = sf_map.product_to_storefront(product)
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
    for ref in refs:
        if ref.code and ref.sku:
            store.upsert_xref("erp", "item", ref.sku, ref.code)
    ctx.log.info("product %s (%s) %s as %s", product.code, sf_map.handle_of(product), action, result.ref)
    return action


def _initial_prices(
    product: Product, refs: list[CatalogItem], state: _RunState
) -> tuple[dict[str, Decimal], list[str]]:
    """A new product gets its ERP list price as first price when the price guard's absolute checks
    pass (no zero price, not below cost) and its currency is an allowed one (never a price in an
    unknown currency shown as the shop's); otherwise it is created as a draft (never on sale at 0).
    Returns the prices by SKU and what was wrong."""
    by_sku = {r.sku: r for r in refs if r.sku}
    prices: dict[str, Decimal] = {}
    problems: list[str] = []
    for v in product.variants:
        ref = by_sku.get(v.sku)
        list_price = ref.list_price if ref else None
        currency = ref.currency if ref else None
        if currency not in (None, "") and currency not in allowed_currencies():
            problems.append(f"{v.sku}: list_price currency {currency!r} is not an allowed currency")
            continue
        try:
            price = amount(list_price)
            cost: Decimal | None = amount(ref.cost) if ref and ref.cost not in (None, "") else None
        except Exception:
            problems.append(f"{v.sku}: list_price {list_price!r}")
            continue
        verdict = check_price(price, current=None, cost=cost, policy=state.guard)
        if verdict.hold:
            problems.append(f"{v.sku}: {verdict.reason}")
        else:
            prices[v.sku] = price
    return prices, problems

