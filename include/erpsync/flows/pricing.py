"""pricing_sync: ERP prices -> storefront prices, hourly, behind the price guard.

What a storefront shows: the base price of each variant in the shop currency (with
``compare_at_price`` during a sale), and price lists: one per other currency, per customer group
and currency (quantity breaks as rows), per contract customer and currency.

Each run:

1. **Items**: ERP items changed since the ``items`` cursor -> ``pricing_items`` (SKU and cost).
2. **Approvals**: changes a person approved since the last run are accepted into the price book.
3. **Intake**: ERP price rows changed since the cursor (lookback overlap; ``full_pass`` reads all)
   are mapped and rounded by the currency's rounding policy (the one place prices are rounded),
   then each changed *rule* goes through the price guard: zero, below cost, or more than the
   threshold (default 20 %) away from the price it replaces -> held in the approvals table and
   *not* accepted; the price the store shows stays as it was. The rest of the batch goes on.
4. **Publish**: every price key whose accepted rules changed, or whose sale/contract starts or
   ends by now, gets its effective price computed (``rules.pricing``); if it differs from what
   was published, it is written in batches of 250 per target; the price book records it.
5. An e-mail (the context's notifier, else the log) lists what was held in this run.

On the first run (empty price book) or a full pass, the storefront's current prices are read
once: they are the reference of the guard for keys the book does not know yet, and what counts
as already published (so a price the store already shows is not written again).

Quality gate: the price rows pass ``ctx.gate`` (suite ``price``) in batches of ``quality_chunk``
(5,000) before intake: a row that cannot be mapped or fails an expectation (negative price,
unknown currency, ...) is a dead letter with the check and the value and the rest goes on; a
batch whose bad share is above the flow's limit fails the run before anything of it is taken.

The mappings come from the adapters (``erpsync.connectors.registry``), so the same flow runs
against the sandbox or Tryton -> Vendure: the ERP mapping reads items (``catalog_item``) and
price rows (``price_ref``, ``price_spec``, ``price_from_erp``); the storefront mapping says where
a price goes (``target_of``) and how it is written (``variant_price``, ``list_price``) and read
back (``published_prices``). A price the storefront has no place for (Vendure: customer and group
price lists, quantity breaks) raises ``UnsupportedError`` there: its rows are not published and
each such target is kept as one dead letter (entity ``price_target``) with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erpsync import display
from erpsync.connectors.capabilities import lacking, say_unsupported
from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import (
    MappingError,
    PermanentError,
    TransientError,
    UnsupportedByConnector,
    UnsupportedError,
)
from erpsync.flows.base import (
    QUALITY_CHUNK,
    FlowContext,
    RunSummary,
    cursor_since,
    dead_letter,
    idempotent_write,
    refuse_test_seams,
)
from erpsync.mappings.storefront_pricing import VARIANT, Target, price_key, rule_id
from erpsync.model import PriceEntry, PriceKind
from erpsync.quality.stale import StaleLetters
from erpsync.rules.price_guard import GuardPolicy, check_price, guard_policy
from erpsync.rules.pricing import PriceRule, effective_price
from erpsync.rules.rounding import RoundingPolicy, rounding_policy
from erpsync.state.price_book import BookRow, PriceBook, PricingItem, add_approvals
from erpsync.state.repos.cursors import HighWater

FLOW = "pricing_sync"
ENTITY = "price"
APPROVAL_KIND = "price_change"
DEFAULT_LOOKBACK_MINUTES = 15
CHUNK = 1000
ITEMS_CURSOR = "items"
HELD_LISTED = 200


# --------------------------------------------------------------------------- held list (e-mail)


@dataclass(frozen=True, slots=True)
class Held:
    approval_id: int
    key: str
    rule: str
    current: Decimal | None
    proposed: Decimal
    currency: str
    reason: str


def render_held(
    held: list[Held], *, total: int | None = None, pending_total: int | None = None, limit: int = HELD_LISTED
) -> tuple[str, str]:
    """Subject and body of the e-mail listing the price changes held for approval (``total``: how
    many were held when ``held`` lists only the first ones)."""
    n = max(total or 0, len(held))
    subject = f"[erpsync] pricing_sync held {n} price change{'s' if n != 1 else ''} for approval"
    lines = [
        f"{n} price change(s) were NOT published: they broke the price guard and wait for a person.",
        "The storefront keeps showing the previous prices.",
        "",
        f"{'approval':>8}  {'price key':<44} {'rule':<22} {'current':>10} {'proposed':>10}  reason",
    ]
    for h in held[:limit]:  # every value from the ERP shown as one bounded, neutralised line
        cur = f"{h.current}" if h.current is not None else "-"
        lines.append(
            f"{'#' + str(h.approval_id):>8}  {display.line(h.key):<44} {display.line(h.rule, limit=60):<22} "
            f"{cur:>10} {display.line(h.proposed, limit=40):>10}  {display.line(h.currency, limit=10)} "
            f"{display.line(h.reason, limit=300)}"
        )
    if n > min(limit, len(held)):
        lines.append(f"... and {n - min(limit, len(held))} more (erpsync approvals list --flow pricing_sync)")
    if pending_total is not None:
        lines += ["", f"Pending approvals of pricing_sync in all: {pending_total}."]
    lines += [
        "",
        "Review:   erpsync approvals list --flow pricing_sync",
        "Approve:  erpsync approvals approve ID [ID ...] --by YOUR_NAME   (published by the next run)",
        "Reject:   erpsync approvals reject ID [ID ...] --by YOUR_NAME --note WHY",
        "Runbook:  docs/runbooks/price-cascade.md",
    ]
    return subject, "\n".join(lines)


# --------------------------------------------------------------------------- run state


@dataclass(slots=True)
class _Run:
    ctx: FlowContext
    now: dt.datetime
    guard: GuardPolicy
    rounding: RoundingPolicy
    shop_currency: str
    book: PriceBook
    baseline: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {"price", "compare_at"}
    pending: dict[str, Any] = field(default_factory=dict)  # approval external id -> Approval
    rejected: set[tuple[str, str]] = field(default_factory=set)  # (external id, proposal hash)
    approved_by_key: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    held: list[Held] = field(default_factory=list)
    list_ids: dict[str, str] = field(default_factory=dict)  # price list handle -> storefront id
    to_hold: list[tuple[dict[str, Any], Held | None]] = field(default_factory=list)
    held_count: int = 0
    erp_map: Any = None  # the ERP adapter's mapping module (erpsync.connectors.registry)
    sf_map: Any = None  # the storefront adapter's mapping module
    #: targets the storefront has no place for: handle -> [reason, rows, an example row]
    unsupported: dict[str, list[Any]] = field(default_factory=dict)
    #: approved changes not yet checked against the ERP: approval external id -> Approval
    approved: dict[str, Any] = field(default_factory=dict)
    #: ERP price row ids of those approvals (proposal "erp_row") -> approval external id
    approved_rows: dict[str, str] = field(default_factory=dict)
    #: of ``approved_rows``, the rows this run read from the ERP (taken or quarantined)
    seen_rows: set[str] = field(default_factory=set)
    #: the open dead letters of price rows: one this run reads again fixed is resolved
    stale: StaleLetters | None = None
    #: approvals superseded in this run: (approval, what it was, note) for the e-mail
    superseded: list[tuple[Any, str, str]] = field(default_factory=list)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")


def clock() -> dt.datetime:
    """The flow's clock (when a sale starts or ends, an approval expires). Tests pin it by replacing
    this function (``mock.patch.object(pricing, "clock", ...)``); it is never read from a run's
    Params, which a person triggering a run could set."""
    return dt.datetime.now(dt.UTC)


def _now(ctx: FlowContext) -> dt.datetime:
    refuse_test_seams(ctx)
    return clock()


def run(ctx: FlowContext) -> RunSummary:
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    book = PriceBook(ctx.store)
    state = _Run(
        ctx=ctx,
        now=_now(ctx),
        guard=guard_policy(ctx.params),
        rounding=rounding_policy(ctx.params.get("rounding")),
        shop_currency=str(ctx.params.get("shop_currency", "USD")),
        book=book,
        erp_map=erp_mapping(ctx.erp),
        sf_map=storefront_mapping(ctx.storefront),
        stale=StaleLetters(ctx, ENTITY),
    )
    full = _flag(ctx.params.get("full_pass"))
    try:
        sync_items(ctx, state, full=full)
        if full or book.is_empty():
            load_baseline(state)
        load_approvals(state)
        intake(ctx, state, summary, full=full)  # an approval whose ERP row changed is checked here
        apply_approved(state, full=full)  # compare-and-set: the rest, the ERP unchanged since
        publish(ctx, state, summary)
        if state.stale is not None:
            state.stale.resolve()  # the price rows read again fixed: their dead letters are stale
    except TransientError:
        summary.failed += 1
        ctx.log.error("%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render())
        raise
    finally:
        if state.held:
            notify_held(ctx, state)
        if state.superseded:
            notify_superseded(ctx, state)
    return summary


# --------------------------------------------------------------------------- 1. items


def _since(ctx: FlowContext, name: str) -> dt.datetime | None:
    return cursor_since(ctx, name, default_lookback_minutes=DEFAULT_LOOKBACK_MINUTES)


class _High(HighWater):
    """The latest ERP change time of a batch (``catalog_item(raw).updated_at``,
    ``price_ref(raw).updated_at``), compared as a time; saved forward only."""

    def save(self, ctx: FlowContext, name: str) -> None:
        if self.high is not None:
            ctx.store.cursors.advance(ctx.flow, self.high, name)


def sync_items(ctx: FlowContext, state: _Run, *, full: bool) -> None:
    """ERP items -> pricing_items (SKU and cost); a broken item is skipped with a warning."""
    since = None if full else _since(ctx, ITEMS_CURSOR)
    high = _High()
    batch: list[PricingItem] = []
    for raw in ctx.erp.list_items(updated_since=since):
        ref = state.erp_map.catalog_item(raw)
        high.see(ref.updated_at)
        try:
            if not ref.code or not ref.sku:
                raise KeyError("sku")
            cost = Decimal(str(ref.cost)) if ref.cost not in (None, "") else None
            if cost is not None and not cost.is_finite():
                raise ValueError(ref.cost)
        except (KeyError, ArithmeticError, ValueError, AttributeError):
            ctx.log.warning("item %s: no usable sku/cost, prices of it are checked without cost", ref.code)
            continue
        batch.append(PricingItem(ref.code, ref.sku, cost, ref.currency, ref.active))
        if len(batch) >= CHUNK:
            state.book.save_items(batch)
            batch = []
    state.book.save_items(batch)
    high.save(ctx, ITEMS_CURSOR)


# --------------------------------------------------------------------------- 2. baseline and approvals


def load_baseline(state: _Run) -> None:
    """What the storefront shows now: variant prices and price list rows, by price key."""
    sf = state.ctx.storefront
    for product in sf.list_products():
        for sku, price, compare_at in state.sf_map.published_prices(product):
            state.baseline[price_key(VARIANT, sku, 1)] = {"price": price, "compare_at": compare_at}
    try:
        lists = list(sf.list_price_lists())
    except UnsupportedByConnector:
        lists = []
    for pl in lists:
        state.list_ids[pl["handle"]] = pl["id"]
        for p in sf.list_price_list_prices(pl["id"]):
            state.baseline[price_key(pl["handle"], p["sku"], int(p.get("min_qty", 1)))] = {
                "price": str(p["price"]), "compare_at": p.get("compare_at_price") or None}
    state.ctx.log.info("%s: baseline of %d storefront prices read", state.ctx.flow, len(state.baseline))


def _ext_id(key: str, rid: str) -> str:
    return f"{key}#{rid}"


def _proposal_hash(proposal: dict[str, Any]) -> str:
    blob = json.dumps({k: proposal[k] for k in ("key", "rule", "data")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def load_approvals(state: _Run) -> None:
    store = state.ctx.store
    for ap in store.list_approvals(status="pending", flow=state.ctx.flow):
        state.pending[ap.external_id] = ap
    for ap in store.list_approvals(status="rejected", flow=state.ctx.flow):
        if (ap.note or "").startswith("superseded:"):
            continue  # erpsync's, not a person's: the same value may be proposed again later
        if isinstance(ap.proposed, dict) and "data" in ap.proposed:
            state.rejected.add((ap.external_id, _proposal_hash(ap.proposed)))
    for ap in store.list_approvals(status="approved", flow=state.ctx.flow):
        if isinstance(ap.proposed, dict) and "data" in ap.proposed:
            state.approved[ap.external_id] = ap
            if ap.proposed.get("erp_row"):
                state.approved_rows[str(ap.proposed["erp_row"])] = ap.external_id


def apply_approved(state: _Run, *, full: bool = False) -> None:
    """Compare-and-set, after the intake: an approved change whose ERP row this run read was
    already taken or superseded by ``_take``; the rest are changes the ERP has not touched since
    they were held (every ERP change since the last run is read: cursor with lookback), so the
    ERP still says what was approved: they join the accepted rules and this run publishes them.
    Superseded instead: an approval whose ERP row was read but could not be taken (quarantined,
    unmappable), or, on a full pass, whose row the ERP no longer has."""
    approved = []
    for ext, a in list(state.approved.items()):
        row_id = str(a.proposed.get("erp_row") or "")
        if row_id and row_id in state.seen_rows:
            _supersede(state, ext, "the ERP's current row for this price could not be taken "
                       "(see the dead letters of this run)", None)
        elif full and row_id:
            _supersede(state, ext, "the ERP no longer has this price row", None)
        else:
            approved.append(a)
    state.approved.clear()
    if not approved:
        return
    rows = state.book.load(a.proposed["key"] for a in approved)
    for a in approved:
        p = a.proposed
        row = rows.get(p["key"]) or BookRow(p["key"], p["handle"], p["sku"], int(p["min_qty"]), p["currency"])
        rows[p["key"]] = row
        row.rules[p["rule"]] = p["data"]
        row.dirty = True
        state.approved_by_key[p["key"]].append(a.id)
        state.ctx.log.info("approval #%s (%s) accepted into the price book", a.id, a.external_id)
    state.book.save(list(rows.values()))


# --------------------------------------------------------------------------- 3. intake


def _price_rows(ctx: FlowContext, state: _Run, full: bool, high: _High) -> Iterator[dict[str, Any]]:
    since = None if full else _since(ctx, "default")
    ctx.log.info("%s: reading ERP prices %s", ctx.flow, "(full pass)" if full else f"updated since {since or 'the beginning'}")
    for raw in ctx.erp.list_prices(updated_since=since):
        if isinstance(raw, Mapping):  # anything else is not a price row: the quality gate quarantines it
            ref = state.erp_map.price_ref(raw)
            high.see(ref.updated_at)
            if state.approved_rows and ref.row_id in state.approved_rows:
                state.seen_rows.add(ref.row_id)
        yield raw


def intake(ctx: FlowContext, state: _Run, summary: RunSummary, *, full: bool) -> None:
    """The price rows in batches of ``quality_chunk`` (5,000): each through the quality gate, then
    what passed 1,000 at a time into the price book."""
    high = _High()
    size = int(ctx.params.get("quality_chunk") or QUALITY_CHUNK)
    batch: list[dict[str, Any]] = []
    for raw in _price_rows(ctx, state, full, high):
        batch.append(raw)
        if len(batch) >= size:
            _intake_batch(state, batch, summary)
            batch = []
    _intake_batch(state, batch, summary)
    _file_unsupported(state, summary)
    high.save(ctx, "default")


def _intake_batch(state: _Run, raws: list[dict[str, Any]], summary: RunSummary) -> None:
    """One quality-gate batch: rows failing the price suite (or unmappable) are quarantined, not
    taken; a batch above the flow's limit raises QualityGateFailed before any of it is taken."""
    if not raws:
        return
    erp_map = state.erp_map
    refs = (erp_map.price_ref(raw) for raw in raws if isinstance(raw, Mapping))
    items = state.book.items({ref.item_code for ref in refs if ref.item_code})
    by_sku = {it.sku: it for it in items.values()}

    def sku_of(code: str) -> str | None:
        it = items.get(code)
        return it.sku if it else None

    spec = erp_map.price_spec(sku_of)

    def mapped(raw: dict[str, Any]) -> PriceEntry:
        entry = erp_map.price_from_erp(raw, sku_of, spec=spec)
        cost = _cost_of(by_sku.get(entry.sku), entry.currency)
        return dataclasses.replace(entry, cost=cost) if cost is not None else entry  # the suite checks cost >= 0

    passed = list(state.ctx.gate(ENTITY, raws, summary, mapper=mapped,
                                 key=lambda raw: erp_map.price_ref(raw).row_id, chunk=len(raws)))
    if state.stale is not None:
        for raw in passed:
            state.stale.saw(str(erp_map.price_ref(raw).row_id))
    for start in range(0, len(passed), CHUNK):
        _intake_chunk(state, passed[start:start + CHUNK], summary, items)


def _intake_chunk(
    state: _Run, raws: list[dict[str, Any]], summary: RunSummary, items: dict[str, PricingItem]
) -> None:
    if not raws:
        return
    ctx = state.ctx
    erp_map = state.erp_map
    by_sku = {it.sku: it for it in items.values()}

    def sku_of(code: str) -> str | None:
        it = items.get(code)
        return it.sku if it else None

    spec = erp_map.price_spec(sku_of)
    entries: list[tuple[PriceEntry, Target, str, str]] = []
    for raw in raws:
        try:
            entry = erp_map.price_from_erp(raw, sku_of, spec=spec)
            target = state.sf_map.target_of(entry, state.shop_currency)
            entry.price = state.rounding.round(entry.price, entry.currency)  # the one place prices are rounded
        except UnsupportedError as exc:
            seen = state.unsupported.setdefault(exc.target, [exc.reason, 0, raw, exc.capability])
            seen[1] += 1
            summary.skip("unsupported_target")  # the row; its target is one dead letter (_file_unsupported)
            continue
        except MappingError as exc:
            ext = erp_map.price_ref(raw).row_id
            dead_letter(ctx, summary, ENTITY, ext, raw, f"mapping_error: {exc}", error_kind="mapping")
            continue
        except ArithmeticError as exc:  # decimal.InvalidOperation: more digits than the currency's rounding can hold
            ext = erp_map.price_ref(raw).row_id
            dead_letter(ctx, summary, ENTITY, ext, raw, f"mapping_error: price of {ext} cannot be rounded to its "
                        f"currency's minor units ({type(exc).__name__}: {len(str(raw.get('price')))} characters)",
                        error_kind="mapping")
            continue
        entries.append((entry, target, price_key(target.handle, entry.sku, entry.min_quantity),
                        str(erp_map.price_ref(raw).row_id)))
    rows = state.book.load(k for _, _, k, _ in entries)
    changed: dict[str, BookRow] = {}
    for entry, target, key, row_id in entries:
        row = rows.get(key)
        if row is None:
            row = BookRow(key, target.handle, entry.sku, entry.min_quantity, entry.currency)
            row.published = state.baseline.get(key)  # what the store shows already counts as published
            rows[key] = row
        if _take(state, row, entry, _cost_of(by_sku.get(entry.sku), entry.currency), summary, row_id=row_id):
            changed[key] = row
    state.book.save(list(changed.values()))
    _hold(state)


def _file_unsupported(state: _Run, summary: RunSummary) -> None:
    """What the storefront has no place for, never dropped in silence: a capability its connector
    declares it lacks (the capability matrix, ``erpsync.connectors.capabilities``) is said once
    per run, one dead letter per capability naming every target and its rows; any other refused
    target is one dead letter of its own."""
    by_capability: dict[str, dict[str, Any]] = {}
    for handle, (reason, rows, example, capability) in sorted(state.unsupported.items()):
        if capability and lacking(state.ctx.storefront, capability):
            group = by_capability.setdefault(capability, {"targets": {}, "rows": 0, "example": example,
                                                          "reasons": []})
            group["targets"][handle] = rows
            group["rows"] += rows
            if reason not in group["reasons"]:
                group["reasons"].append(reason)
            continue
        dead_letter(state.ctx, summary, "price_target", handle, {"rows": rows, "example": example},
                    f"unsupported_by_storefront: {reason}; {rows} price row(s) for {handle} not published",
                    error_kind="unsupported")
    for capability, group in sorted(by_capability.items()):
        targets = group["targets"]
        shown = ", ".join(list(targets)[:5]) + (f" and {len(targets) - 5} more" if len(targets) > 5 else "")
        say_unsupported(state.ctx, summary, "storefront", capability,
                        f"{group['rows']} price row(s) in {len(targets)} target(s) not published ({shown}): "
                        + "; ".join(group["reasons"]), payload=group)
    state.unsupported.clear()


def _hold(state: _Run) -> None:
    """Write the approvals of this chunk in one statement; remember the new ones for the e-mail."""
    if not state.to_hold:
        return
    last = {a["external_id"]: n for n, (a, _) in enumerate(state.to_hold)}  # one row per change
    state.to_hold[:] = [h for n, h in enumerate(state.to_hold) if last[h[0]["external_id"]] == n]
    ids = add_approvals(state.ctx.store, [a for a, _ in state.to_hold])
    for approval_id, (_approval, held) in zip(ids, state.to_hold, strict=True):
        if held is not None:
            state.held_count += 1
            if len(state.held) < HELD_LISTED:  # the e-mail lists these and counts the rest
                state.held.append(dataclasses.replace(held, approval_id=approval_id))
            if len(state.held) <= 20:
                state.ctx.log.warning("price %s held (approval #%s): %s", held.key, approval_id, held.reason)
    state.to_hold.clear()


def _cost_of(item: PricingItem | None, currency: str) -> Decimal | None:
    """The item's cost when it is in the price's currency (no FX guessing)."""
    if item is None or item.cost is None:
        return None
    return item.cost if (item.currency or currency) == currency else None


def _take(state: _Run, row: BookRow, entry: PriceEntry, cost: Decimal | None, summary: RunSummary,
          row_id: str = "") -> bool:
    """Accept the entry's rule into ``row`` or hold it; True when the row changed."""
    rid = rule_id(entry)
    new = PriceRule(entry.price, entry.effective_from, entry.effective_to, sale=entry.kind is PriceKind.SALE)
    data = new.to_json()
    ext = _ext_id(row.key, rid)
    approved = state.approved.pop(ext, None)
    if approved is not None:  # compare-and-set: publish only what the ERP says now
        state.approved_rows.pop(str(approved.proposed.get("erp_row") or ""), None)
        state.seen_rows.discard(row_id)
        if approved.proposed.get("data") == data:
            row.rules[rid] = data
            row.dirty = True
            state.approved_by_key[row.key].append(approved.id)
            state.ctx.log.info("approval #%s (%s): the ERP still says %s; accepted", approved.id, ext, new.price)
            return True
        _supersede(state, ext, "the ERP changed the price after it was held", new.price, approval=approved)
    prev_data = row.rules.get(rid)
    if prev_data == data:
        _supersede(state, ext, "the ERP is back to the accepted price", new.price)
        summary.skip("unchanged")
        return False
    prev = PriceRule.from_json(prev_data) if prev_data else None
    if prev is not None and prev.price == new.price:
        row.rules[rid] = data  # only the dates moved: not a price change
        row.dirty = True
        return True
    reference = _reference(state, row, new, prev)
    verdict = check_price(new.price, current=reference, cost=cost, policy=state.guard)
    if not verdict.hold:
        row.rules[rid] = data
        row.dirty = True
        _supersede(state, ext, "a later ERP price passed the guard", new.price)
        return True
    proposal = {"key": row.key, "rule": rid, "data": data, "handle": row.handle, "sku": row.sku,
                "min_qty": row.min_qty, "currency": row.currency, "kind": entry.kind.value,
                "price_list": entry.price_list, "erp_row": row_id or None}
    if (ext, _proposal_hash(proposal)) in state.rejected:
        summary.skip("rejected_before")
        return False
    existing = state.pending.get(ext)
    same = existing is not None and isinstance(existing.proposed, dict) and existing.proposed.get("data") == data
    if existing is not None and not same:
        # never rewrite what a person may be reviewing: the old proposal goes, a new one is held
        _supersede(state, ext, "the ERP changed the held price again (a new approval is held)", new.price)
    state.to_hold.append((
        {"flow": state.ctx.flow, "entity": ENTITY, "external_id": ext, "kind": APPROVAL_KIND, "proposed": proposal,
         "current": {"price": None if reference is None else str(reference),
                     "cost": None if cost is None else str(cost), "published": row.published,
                     "change_pct": None if verdict.change_pct is None else str(verdict.change_pct)},
         "reason": verdict.reason},
        None if same else Held(0, row.key, rid, reference, new.price, row.currency, verdict.reason),
    ))
    summary.skip("held")
    return False


def _reference(state: _Run, row: BookRow, new: PriceRule, prev: PriceRule | None) -> Decimal | None:
    """The price a changed rule is compared with: for a regular rule its previous value, else what
    the key shows now; for a sale rule the regular price it undercuts."""
    if not new.sale and prev is not None:
        return prev.price
    regular = {rid: PriceRule.from_json(d) for rid, d in row.rules.items() if not d.get("sale")}
    at = new.valid_from if (new.sale and new.valid_from and new.valid_from > state.now) else state.now
    eff = effective_price(regular, at) if regular else None
    if eff is not None and eff.price is not None:
        return eff.price
    if row.published and row.published.get("price") is not None:
        shown = Decimal(str(row.published.get("compare_at") or row.published["price"])) if new.sale else Decimal(
            str(row.published["price"]))
        return shown
    return None


def _supersede(state: _Run, ext: str, why: str, erp_now: Decimal | None, *, approval: Any = None) -> None:
    """The ERP no longer says what a pending (or approved) change proposed: the approval is
    superseded (status rejected, note ``superseded: ...``), audited and listed in the e-mail."""
    ap = approval or state.pending.get(ext) or state.approved.get(ext)
    state.pending.pop(ext, None)
    state.approved.pop(ext, None)
    if ap is None:
        return
    store = state.ctx.store
    proposed = ap.proposed.get("data", {}).get("price") if isinstance(ap.proposed, dict) else None
    base = (f"superseded: {why}: the ERP now says {erp_now if erp_now is not None else 'no usable price'}, "
            f"the approval proposed {proposed}")
    for _attempt in range(2):  # a person may approve it between this run's load and now
        note = base + (f"; approved by {ap.decided_by}" if ap.status == "approved" else "")
        try:
            store.decide_approval(ap.id, "superseded", "erpsync", note=note)
            break
        except ValueError:
            current = store.get_approval(ap.id)
            if current is None or current.status not in ("pending", "approved") or current.status == ap.status:
                return  # decided otherwise meanwhile (rejected by a person): nothing to supersede
            ap = current
    else:
        return
    store.audit(flow=state.ctx.flow, system="erpsync", operation="supersede_approval", entity="approval",
                external_id=ap.external_id, request={"approval_id": ap.id, "was": ap.status, "proposed": proposed},
                response={"erp_now": None if erp_now is None else str(erp_now), "note": note},
                duration_ms=None, result="superseded", run_id=state.ctx.run_id)
    state.superseded.append((ap, ap.status, note))
    state.ctx.log.warning("approval #%s (%s, %s) %s", ap.id, ap.external_id, ap.status, note)


# --------------------------------------------------------------------------- 4. publish


def _money_eq(a: Any, b: Any) -> bool:
    if a in (None, "") or b in (None, ""):
        return a in (None, "") and b in (None, "")
    return Decimal(str(a)) == Decimal(str(b))


def _same(desired: dict[str, Any] | None, published: dict[str, Any] | None) -> bool:
    if desired is None or published is None:
        return desired is None and published is None
    return _money_eq(desired["price"], published.get("price")) and _money_eq(
        desired["compare_at"], published.get("compare_at"))


def publish(ctx: FlowContext, state: _Run, summary: RunSummary) -> None:
    """Write every due key whose effective price differs from what was published, in batches."""
    limit = int(getattr(ctx.storefront, "price_batch_limit", 250) or 250)
    buffers: dict[str, list[tuple[BookRow, dict[str, Any] | None]]] = defaultdict(list)
    after = ""
    while True:
        rows = state.book.due(state.now, after=after, limit=CHUNK)
        if not rows:
            break
        after = rows[-1].key
        quiet: list[BookRow] = []
        absent = _absent(state, {r.sku for r in rows})
        for row in rows:
            if row.sku in absent:
                summary.skip("not_in_store")  # stays due; goes out once catalog_sync created the product
                continue
            eff = effective_price({rid: PriceRule.from_json(d) for rid, d in row.rules.items()}, state.now)
            row.next_change_at = eff.next_change
            desired = None if eff.price is None else {
                "price": format(eff.price, "f"),
                "compare_at": format(eff.compare_at, "f") if eff.compare_at is not None else None,
            }
            if _same(desired, row.published) or (desired is None and row.handle == VARIANT):
                if desired is None and row.published is not None:
                    ctx.log.warning("%s: no active price rule; the variant keeps %s", row.key, row.published)
                if row.dirty and desired is not None:
                    summary.skip("already_published")
                row.dirty = False
                quiet.append(row)
                _approvals_published(state, row.key)
                continue
            buffers[row.handle].append((row, desired))
            if len(buffers[row.handle]) >= limit:
                _flush(ctx, state, row.handle, buffers.pop(row.handle), summary)
        state.book.save(quiet)
    for handle in list(buffers):
        _flush(ctx, state, handle, buffers.pop(handle), summary)


def _absent(state: _Run, skus: set[str]) -> set[str]:
    """SKUs the store refused before and the catalog has not bound to a product since."""
    refused = state.book.not_in_store(skus)
    if not refused:
        return refused
    bound = set(state.ctx.store.xref_map("storefront", "variant", sorted(refused)))
    if bound:
        state.book.set_in_store(bound, True)
    return refused - bound


def _list_id(state: _Run, handle: str, row: BookRow) -> str:
    """The storefront id of a price list, created (upsert by handle) the first time it is needed."""
    if handle in state.list_ids:
        return state.list_ids[handle]
    store = state.ctx.store
    x = store.get_xref("storefront", "price_list", handle)
    if x is not None:
        state.list_ids[handle] = x.internal_id
        return x.internal_id
    kind, _, rest = handle.partition("-")
    customer_ref = group = None
    if kind == "customer":
        customer_ref = rest.rsplit("-", 1)[0].upper()
    elif kind == "group":
        group = rest.rsplit("-", 1)[0]
    target = Target(handle, row.currency, kind, customer_group=group, customer_ref=customer_ref)
    customer_id = None
    if customer_ref:  # the storefront customer bound to this ERP customer, through the cross reference
        bound = store.get_xref_by_internal("erp", "customer", customer_ref)
        customer_id = bound.external_id if bound else None
    header = target.header(customer_id)
    key = f"price_list:{handle}"
    result = idempotent_write(
        state.ctx, key=key, entity="price_list", external_id=handle, operation="upsert_price_list",
        payload=header, write=lambda: state.ctx.storefront.upsert_price_list(header, idempotency_key=key),
        ref_of=lambda rec: str((rec.get("price_list") or rec)["id"]), system="storefront",
    )
    store.upsert_xref("storefront", "price_list", handle, result.ref)
    state.list_ids[handle] = result.ref
    return result.ref


def _rejected_skus(exc: PermanentError) -> set[str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    return {str(e.get("sku")) for e in body.get("errors") or [] if isinstance(e, dict) and e.get("sku")}


def _flush(
    ctx: FlowContext, state: _Run, handle: str, batch: list[tuple[BookRow, dict[str, Any] | None]],
    summary: RunSummary,
) -> None:
    if not batch:
        return

    def dec(v: Any) -> Decimal | None:
        return Decimal(str(v)) if v not in (None, "") else None

    sf_map = state.sf_map
    if handle == VARIANT:
        payload: dict[str, Any] = {"items": [
            sf_map.variant_price(r.sku, Decimal(d["price"]), dec(d["compare_at"]), currency=r.currency)
            for r, d in batch if d is not None]}
    else:
        payload = {
            "set": [sf_map.list_price(r.sku, r.min_qty, Decimal(d["price"]), dec(d["compare_at"]))
                    for r, d in batch if d],
            "delete": [{"sku": r.sku, "min_qty": r.min_qty} for r, d in batch if d is None],
        }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
    key = f"prices:{ctx.run_id}:{handle}:{digest}"

    def write() -> dict[str, Any]:
        if handle == VARIANT:
            return ctx.storefront.set_variant_prices(payload["items"], idempotency_key=key)
        list_id = _list_id(state, handle, batch[0][0])
        return ctx.storefront.change_price_list_prices(list_id, payload["set"], payload["delete"],
                                                       idempotency_key=key)

    try:
        idempotent_write(ctx, key=key, entity="price_batch", external_id=handle, operation="set_prices",
                         payload=payload, write=write, ref_of=lambda _rec: handle, system="storefront")
    except PermanentError as exc:
        bad = _rejected_skus(exc)
        if bad:
            # the store does not sell these SKUs (yet): the rest goes now; they stay due and are
            # left out of later runs until catalog_sync binds them to a product
            state.book.set_in_store(bad, False)
            summary.reasons["not_in_store"] += len([1 for r, _ in batch if r.sku in bad])
            summary.skipped += len([1 for r, _ in batch if r.sku in bad])
            _flush(ctx, state, handle, [(r, d) for r, d in batch if r.sku not in bad], summary)
            return
        dead_letter(ctx, summary, "price_batch", handle, payload, f"storefront_rejected: {exc.status} {exc}")
        return
    for row, desired in batch:
        row.published = desired
        row.published_at = state.now
        row.dirty = False
        _approvals_published(state, row.key)
    state.book.save([r for r, _ in batch])
    summary.done += len(batch)


def _approvals_published(state: _Run, key: str) -> None:
    for approval_id in state.approved_by_key.pop(key, []):
        state.ctx.store.decide_approval(approval_id, "published", "erpsync", note=f"published by {state.ctx.run_id}")


# --------------------------------------------------------------------------- 5. the e-mail


def notify_held(ctx: FlowContext, state: _Run) -> None:
    """Send the held list through the context's notifier (``send(subject, body)``), else log it."""
    pending = None
    subject, body = render_held(state.held, total=state.held_count, pending_total=pending)
    notifier = getattr(ctx, "notifier", None)
    if notifier is None:
        ctx.log.warning("%s\n%s", subject, body)
        return
    try:
        notifier.send(subject, body)
    except Exception:
        ctx.log.exception("%s: the held-price e-mail could not be sent; its text:\n%s\n%s", ctx.flow, subject, body)


def render_superseded(superseded: list[tuple[Any, str, str]]) -> tuple[str, str]:
    """Subject and body of the e-mail listing the approvals a run superseded (compare-and-set)."""
    n = len(superseded)
    subject = f"[erpsync] pricing_sync superseded {n} price approval{'s' if n != 1 else ''}"
    lines = [
        f"{n} held price change(s) will NOT be published: the ERP no longer says what was proposed.",
        "The storefront gets the ERP's current price (through the price guard), not the held one.",
        "",
    ]
    for ap, was, note in superseded[:HELD_LISTED]:
        key = ap.proposed.get("key", ap.external_id) if isinstance(ap.proposed, dict) else ap.external_id
        lines.append(f"#{ap.id} ({was}) {display.line(key)}: {display.line(note, limit=500)}")
    if n > HELD_LISTED:
        lines.append(f"... and {n - HELD_LISTED} more (erpsync approvals list --flow pricing_sync --status rejected)")
    lines += [
        "",
        "Nothing to do unless the ERP's current price is wrong: fix it in the ERP; a change the guard",
        "holds again is a new approval. Runbook: docs/runbooks/price-cascade.md",
    ]
    return subject, "\n".join(lines)


def notify_superseded(ctx: FlowContext, state: _Run) -> None:
    subject, body = render_superseded(state.superseded)
    notifier = getattr(ctx, "notifier", None)
    if notifier is None:
        ctx.log.warning("%s\n%s", subject, body)
        return
    try:
        notifier.send(subject, body)
    except Exception:
        ctx.log.exception("%s: the superseded-approvals e-mail could not be sent; its text:\n%s\n%s",
                          ctx.flow, subject, body)
