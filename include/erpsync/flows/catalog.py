"""catalog_sync: ERP items -> storefront products (the ERP is the master of the catalog).

Pipeline (OCA connector style): read the items changed since the cursor (minus a lookback
overlap; the param ``full_pass`` reads all), group the variants of a template into one product,
map, skip the product if its content hash equals the one bound in the cross reference, upsert it
through the ledger, bind the cross reference. Only ERP-owned fields are written
(``erpsync.ownership``): the storefront keeps its descriptions, tags and images, and prices are
pricing_sync's (through the price guard), except the first price of a new product.

A product the ERP retires (``active: false``) is unpublished (``status: archived``), never
deleted; a retired item the store never had is not created.

Risky changes are held for a person (``erpsync.rules.catalog_holds``, settings
``ERPSYNC_CATALOG_HOLD_*``): a run retiring more than 10 % of the products in the store, a product
with open orders retired, a title or unit change on a best seller. A held change is an approval
(kind ``catalog_retire`` / ``catalog_change``, the console's Approvals page or ``erpsync
approvals``); the store keeps the product as it is and the rest of the batch goes on. Retirements
wait until the batch is read (the share needs them all). An approved change is applied by the
next run, compare-and-set: its items are read again from the ERP by SKU and written only while
the ERP still says what was approved (else the approval is superseded); a held change the ERP
takes back (or changes again) supersedes its pending approval.

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

from erpsync import config
from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import HostileRecord, MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    CursorTracker,
    FlowContext,
    RunSummary,
    cursor_since,
    dead_letter,
    idempotent_write,
    sync_hash,
)
from erpsync.limits import price_problem
from erpsync.mappings.engine import amount
from erpsync.mappings.refs import CatalogItem
from erpsync.model import Product
from erpsync.quality.settings import allowed_currencies
from erpsync.rules import catalog_holds
from erpsync.rules.catalog_holds import CatalogChange, HoldRules
from erpsync.rules.price_guard import check_price, guard_policy
from erpsync.state.inventory import InventoryState

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
    state = _RunState(ctx)
    try:
        _apply_approved(ctx, summary, state)
        sync_batch(ctx, ctx.erp.list_items(updated_since=since), summary, state=state, tracker=tracker)
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
    _settle_retirements(ctx, summary, state)


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
    return cursor_since(ctx, default_lookback_minutes=DEFAULT_LOOKBACK_MINUTES)


class _RunState:
    """Per run: item code -> SKU (kit components) from what was read and the cross reference."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.skus: dict[str, str] = {}
        self.guard = guard_policy(ctx.params)
        self.erp_map = erp_mapping(ctx.erp)
        self.sf_map = storefront_mapping(ctx.storefront)
        self._store_handles: set[str] | None = None
        self.rules = HoldRules(**config.catalog_hold_settings())  # type: ignore[arg-type]
        #: retirements of this batch, decided once it is read: (code, raws, change)
        self.retiring: list[tuple[str, list[dict[str, Any]], CatalogChange]] = []
        #: product codes whose change was approved and is applied now (the hold rules are passed)
        self.approved: dict[str, Any] = {}
        self._pending: dict[str, Any] | None = None
        self._sales: dict[str, int] | None = None
        self._rejected: set[tuple[str, str]] | None = None
        self._best: set[str] | None = None

    def pending(self) -> dict[str, Any]:
        """Pending catalog approvals by product code (read once per run)."""
        if self._pending is None:
            self._pending = {a.external_id: a for a in self.ctx.store.list_approvals(status="pending", flow=FLOW)
                             if a.kind in catalog_holds.KINDS}
        return self._pending

    def best_sellers(self) -> set[str]:
        """The best-selling SKUs (``catalog_holds.best_sellers``), worked out once per run."""
        if self._best is None:
            self._best = catalog_holds.best_sellers(self.sales(), self.rules.best_seller_top)
        return self._best

    def rejected(self) -> set[tuple[str, str]]:
        """(product code, content hash) of catalog changes a person rejected (not erpsync's superseded)."""
        if self._rejected is None:
            self._rejected = {(a.external_id, str((a.proposed or {}).get("digest")))
                              for a in self.ctx.store.list_approvals(status="rejected", flow=FLOW)
                              if a.kind in catalog_holds.KINDS and not (a.note or "").startswith("superseded:")}
        return self._rejected

    def sales(self) -> dict[str, int]:
        """Units sold by SKU in the best-seller window (the store's order lines, ``channel_sales``)."""
        if self._sales is None:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(days=self.rules.days)
            self._sales = _units(InventoryState(self.ctx.store).channel_demand(since))
        return self._sales

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
    ctx: FlowContext, code: str, raws: list[dict[str, Any]], summary: RunSummary, state: _RunState,
    *, checked: bool = False,
) -> None:
    """One product; a mapping or permanent error dead-letters it and the batch goes on.
    ``checked``: the hold rules were applied already (a retirement settled, an approved change)."""
    try:
        outcome = _sync(ctx, code, raws, state, checked=checked)
    except MappingError as exc:
        dead_letter(ctx, summary, ENTITY, code, raws, f"mapping_error: {exc}", error_kind="mapping")
        return
    except PermanentError as exc:
        dead_letter(ctx, summary, ENTITY, code, raws, f"storefront_rejected: {exc.status} {exc}")
        return
    if outcome in ("unchanged", "retired_not_in_store", "held", "retiring", "rejected_before"):
        if outcome != "retiring":  # counted once settled
            summary.skip(outcome)
        return
    summary.done += 1
    summary.reasons[outcome] += 1
    ctx.store.resolve_dead_letters(ctx.flow, ENTITY, code)


def _sync(ctx: FlowContext, code: str, raws: list[dict[str, Any]], state: _RunState, *,
          checked: bool = False) -> str:
    store = ctx.store
    sf_map = state.sf_map
    product = state.erp_map.product_from_erp(raws, state.sku_of)
    refs = [state.erp_map.catalog_item(r) for r in raws]
    digest = sync_hash(product)
    xref = store.get_xref(SYSTEM, ENTITY, product.code)
    if xref is not None and xref.content_hash == digest:
        _supersede(ctx, state, product.code, "the ERP is back to what the store shows", product)
        return "unchanged"
    if xref is None and not product.active and not state.store_has(sf_map.handle_of(product)):
        return "retired_not_in_store"
    if not checked and xref is not None:
        verdict = _check(ctx, state, product, raws, digest)
        if verdict != "go":
            return verdict
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
    approved = state.approved.pop(product.code, None)
    if approved is not None:
        store.decide_approval(approved.id, "published", "erpsync", note=f"published by {ctx.run_id}")
    return action


# --------------------------------------------------------------------------- held changes


def _units(demand: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    return {sku: sum(by_channel.values()) for sku, by_channel in demand.items()}


def _describe(product: Product) -> str:
    if not product.active:
        return f"retired ({product.name})"
    units = sorted({v.uom for v in product.variants})
    return f"active: {product.name}" + (f" [{', '.join(units)}]" if units else "")


def _previous(ctx: FlowContext, code: str) -> tuple[bool, str | None, dict[str, str]]:
    """What the store was last sent for product ``code`` (the audit row of its last write): active,
    title, unit by SKU; (True, None, {}) when nothing is known (never written, or purged). Read by
    flow (the audit log's index): catalog_sync's writes, else this run's flow's (a migration)."""
    flows = dict.fromkeys((FLOW, ctx.flow))
    entries = [e for f in flows for e in ctx.store.list_audit(flow=f, entity=ENTITY, external_id=code, limit=20)]
    entries.sort(key=lambda e: (e.at, e.id), reverse=True)
    for entry in entries:
        req = entry.request
        if entry.operation.startswith("upsert_product") and entry.result in ("ok", "found") and isinstance(req, dict):
            active = req.get("status") != "archived" if "status" in req else bool(req.get("enabled", True))
            title = req.get("title", req.get("name"))
            uoms = {str(v["sku"]): str(v["uom"]) for v in req.get("variants") or []
                    if isinstance(v, dict) and v.get("sku") and v.get("uom")}
            return active, None if title is None else str(title), uoms
    return True, None, {}


def _change(ctx: FlowContext, product: Product, *, known: bool = True) -> CatalogChange:
    active, title, uoms = _previous(ctx, product.code) if known else (True, None, {})
    return CatalogChange(code=product.code, skus=tuple(v.sku for v in product.variants),
                         retire=active and not product.active, title_before=title, title_after=product.name,
                         uom_before=uoms, uom_after={v.sku: v.uom for v in product.variants})


def _check(ctx: FlowContext, state: _RunState, product: Product, raws: list[dict[str, Any]], digest: str) -> str:
    """The hold rules for one changed product the store has: "go", "held" or "retiring" (decided
    with the batch's other retirements, ``_settle_retirements``)."""
    rules = state.rules
    waiting = state.pending().get(product.code)
    if waiting is not None and (waiting.proposed or {}).get("digest") == digest:
        return "held"  # the same change, still waiting for a person (read again by the lookback)
    if (product.code, digest) in state.rejected():
        return "rejected_before"  # a person said no to exactly this; a later ERP change is looked at again
    if not rules.enabled:
        _supersede(ctx, state, product.code, "the hold rules are off", product)
        return "go"
    if not product.active:
        change = _change(ctx, product)
        if change.retire:
            state.retiring.append((product.code, raws, change))
            return "retiring"
        return "go"  # already retired: another field moved
    best = state.best_sellers()
    if not any(v.sku in best for v in product.variants):
        _supersede(ctx, state, product.code, "a later ERP change is not held", product)
        return "go"
    change = _change(ctx, product)
    reason = catalog_holds.best_seller_reason(change, best, state.sales(), rules)
    if reason is None:
        _supersede(ctx, state, product.code, "a later ERP change is not held", product)
        return "go"
    _hold(ctx, state, product, digest, catalog_holds.CHANGE, reason, change)
    return "held"


def _settle_retirements(ctx: FlowContext, summary: RunSummary, state: _RunState) -> None:
    """The batch's retirements, now that all are known: held (the share, open orders) or written."""
    retiring, state.retiring = state.retiring, []
    if not retiring:
        return
    rules = state.rules
    published = len(ctx.store.list_xrefs(system=SYSTEM, entity=ENTITY, limit=10**9))
    skus = {s for _, _, c in retiring for s in c.skus}
    open_orders: dict[str, int] = {}
    if rules.open_orders:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=rules.open_order_days)
        open_orders = _units(InventoryState(ctx.store).channel_demand(since, skus))
    holds = {h.code: h for h in catalog_holds.decide([c for _, _, c in retiring], published=published,
                                                     open_orders=open_orders, sales={}, rules=rules)}
    for code, raws, change in retiring:
        hold = holds.get(code)
        if hold is None:
            sync_product(ctx, code, raws, summary, state, checked=True)
            continue
        try:
            product = state.erp_map.product_from_erp(raws, state.sku_of)
        except MappingError as exc:  # mapped once already in this run; say it if it does not again
            dead_letter(ctx, summary, ENTITY, code, raws, f"mapping_error: {exc}", error_kind="mapping")
            continue
        _hold(ctx, state, product, sync_hash(product), hold.kind, hold.reason, change)
        summary.skip("held")


def _hold(ctx: FlowContext, state: _RunState, product: Product, digest: str, kind: str, reason: str,
          change: CatalogChange) -> None:
    """Keep the change for a person: an approval; the store keeps the product as it is. A pending
    approval of another proposal of the same product is superseded first (never rewritten)."""
    existing = state.pending().get(product.code)
    if existing is not None and (existing.kind != kind or (existing.proposed or {}).get("digest") != digest):
        _supersede(ctx, state, product.code, "the ERP changed the product again (a new approval is held)", product)
    proposed = {"code": product.code, "skus": list(change.skus), "digest": digest, "active": product.active,
                "title": product.name, "uom": dict(change.uom_after), "summary": _describe(product)}
    before = f"active: {change.title_before}" if change.title_before else "active"
    if change.uom_before:
        before += f" [{', '.join(sorted(set(change.uom_before.values())))}]"
    current = {"active": True, "title": change.title_before, "uom": dict(change.uom_before), "summary": before}
    approval_id = ctx.store.add_approval(FLOW, ENTITY, product.code, kind, proposed, current, reason)
    state.pending()[product.code] = ctx.store.get_approval(approval_id)
    ctx.log.warning("product %s held (approval #%s): %s", product.code, approval_id, reason)


def _supersede(ctx: FlowContext, state: _RunState, code: str, why: str, product: Product | None) -> None:
    """The ERP no longer proposes what a pending approval of ``code`` held: superseded (status
    rejected, note ``superseded: ...``), audited."""
    ap = state.pending().pop(code, None)
    if ap is None:
        return
    note = f"superseded: {why}: the ERP now says {_describe(product) if product else 'nothing'}"
    try:
        ctx.store.decide_approval(ap.id, "superseded", "erpsync", note=note)
    except (KeyError, ValueError):
        return  # decided by a person meanwhile
    ctx.store.audit(flow=ctx.flow, system="erpsync", operation="supersede_approval", entity="approval",
                    external_id=code, request={"approval_id": ap.id, "kind": ap.kind}, response={"note": note},
                    duration_ms=None, result="superseded", run_id=ctx.run_id)
    ctx.log.warning("approval #%s (%s) %s", ap.id, code, note)


def _read_items(store: Any, erp: Any, skus: Iterable[str]) -> tuple[list[dict[str, Any]], list[str]]:
    raws, missing = [], []
    for sku in skus:
        raw = erp.find_item_by_sku(str(sku))
        if isinstance(raw, Mapping):
            raws.append(dict(raw))
        else:
            missing.append(str(sku))
    return raws, missing


def erp_now(store: Any, erp: Any, approval: Any) -> tuple[str, bool | None, str]:
    """What the ERP says now of a held catalog change: (shown, still what was held?, why not).
    Its items are read by SKU; a kit's components resolve through the cross-references."""
    proposed = approval.proposed if isinstance(approval.proposed, dict) else {}
    skus = proposed.get("skus") or []
    if not skus:
        return "not checked", None, "no SKUs recorded with it"
    raws, missing = _read_items(store, erp, skus)
    if missing:
        return "missing", False, f"the ERP no longer has {', '.join(missing)}"
    erp_map = erp_mapping(erp)

    def sku_of(code: str) -> str | None:
        x = store.get_xref_by_internal("erp", "item", code)
        return x.external_id if x else None

    try:
        product = erp_map.product_from_erp(raws, sku_of)
    except MappingError as exc:
        return "unreadable", False, f"the ERP's item cannot be mapped: {exc}"
    shown = _describe(product)
    if sync_hash(product) == proposed.get("digest"):
        return shown, True, ""
    return shown, False, f"the ERP now says {shown}, not the {proposed.get('summary', 'change')} that was held"


def _apply_approved(ctx: FlowContext, summary: RunSummary, state: _RunState) -> None:
    """Approved catalog changes, compare-and-set: each product's items are read again from the ERP;
    written while the ERP still says what was approved, else the approval is superseded."""
    for ap in ctx.store.list_approvals(status="approved", flow=FLOW):
        if ap.kind not in catalog_holds.KINDS:
            continue
        _shown, same, why = erp_now(ctx.store, ctx.erp, ap)
        if not same:
            note = f"superseded: {why or 'the ERP changed the product after it was approved'}; approved by {ap.decided_by}"
            try:
                ctx.store.decide_approval(ap.id, "superseded", "erpsync", note=note)
            except (KeyError, ValueError):
                continue
            ctx.store.audit(flow=ctx.flow, system="erpsync", operation="supersede_approval", entity="approval",
                            external_id=ap.external_id, request={"approval_id": ap.id, "was": "approved"},
                            response={"note": note}, duration_ms=None, result="superseded", run_id=ctx.run_id)
            ctx.log.warning("approval #%s (%s) %s", ap.id, ap.external_id, note)
            continue
        raws, _missing = _read_items(ctx.store, ctx.erp, ap.proposed["skus"])
        state.approved[ap.external_id] = ap
        ctx.log.info("approval #%s (%s): the ERP still says what was approved; applying", ap.id, ap.external_id)
        sync_product(ctx, ap.external_id, raws, summary, state, checked=True)


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

