"""orders_sync: paid storefront orders -> ERP sales orders, each exactly once.

Pipeline per order: map, decide (paid? already synced? cancelled?), check the totals, resolve the
customer first (xref, else fetch and upsert it, or the guest policy), resolve every SKU to an ERP
item code, then create through the ledger keyed by the storefront order id, looking the order up
by ``external_ref`` whenever an earlier try may have committed it. Nothing is dropped: an order
that cannot go goes to dead letters with its reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from erpsync.errors import MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    CursorTracker,
    FlowContext,
    RunSummary,
    cursor_since,
    dead_letter,
    idempotent_write,
    lookback,
    sync_hash,
)
from erpsync.flows.customers import CustomerUnresolved, upsert_customer
from erpsync.mappings.erp_sandbox import customer_to_erp, order_to_erp
from erpsync.mappings.storefront_sandbox import customer_from_storefront, order_from_storefront
from erpsync.model import Order
from erpsync.rules.guests import (
    DEFAULT_GUEST_ACCOUNT,
    GuestPolicy,
    guest_customer,
    guest_policy,
    shared_guest_account,
)
from erpsync.rules.orders import Disposition, check_totals, disposition

FLOW = "orders_sync"
SYSTEM = "erp"
ENTITY = "order"

#: dispositions that are counted as skipped (the rest are synced or dead-lettered)
_SKIPPED = {
    Disposition.ALREADY_SYNCED,
    Disposition.UNPAID,
    Disposition.CANCELLED_UNSYNCED,
    Disposition.REFUNDED_UNSYNCED,
}


class Quarantine(Exception):
    """The order cannot go to the ERP now; ``reason`` goes to its dead letter."""

    def __init__(self, reason: str, error_kind: str = "permanent") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_kind = error_kind


def order_key(order_id: str) -> str:
    return f"order:{order_id}"


def run(ctx: FlowContext) -> RunSummary:
    """Sync the orders of the data interval (scheduled run) or changed since the cursor (manual run)."""
    policy = guest_policy(ctx.params)  # a bad param fails before anything is read
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    tracker = CursorTracker()
    state = _RunState(policy=policy)
    try:
        for raw in _read(ctx):
            tracker.see(raw)
            sync_one(ctx, raw, summary, state)
    except TransientError:
        summary.failed += 1
        ctx.log.error(
            "%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render()
        )
        raise
    if ctx.run_type != "backfill":
        tracker.save(ctx)
    return summary


def _read(ctx: FlowContext) -> Iterator[dict[str, Any]]:
    """What one run reads.

    - backfill: exactly its data interval (plus the lookback overlap), so a backfill refills a gap
      and a rerun re-reads the same slice; the cursor is not moved.
    - scheduled: its interval, but starting at the cursor when the cursor is older, so runs that
      never happened (scheduler down, catchup off) leave no gap.
    - manual (no interval): everything since the cursor.
    The ledger makes re-reading harmless: an order already written is skipped.
    """
    cursor = cursor_since(ctx)
    if ctx.interval_start is not None:
        since: dt.datetime | None = ctx.interval_start - lookback(ctx)
        if ctx.run_type != "backfill" and cursor is not None and cursor < since:
            since = cursor
        ctx.log.info("%s: orders updated in [%s, %s)", ctx.flow, since, ctx.interval_end)
        return ctx.storefront.list_orders(updated_since=since, updated_before=ctx.interval_end)
    ctx.log.info("%s: orders updated since %s", ctx.flow, cursor or "the beginning")
    return ctx.storefront.list_orders(updated_since=cursor)


class _RunState:
    """Per-run memo: the shared guest account and item codes are looked up once per run."""

    def __init__(self, policy: GuestPolicy) -> None:
        self.policy = policy
        self.guest_account: str | None = None
        self.items: dict[str, str] = {}


def sync_one(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary, state: _RunState) -> None:
    oid = str(raw.get("id") or "?")
    try:
        outcome = _sync(ctx, raw, state)
    except MappingError as exc:
        dead_letter(ctx, summary, ENTITY, oid, raw, f"mapping_error: {exc}", error_kind="mapping")
        return
    except Quarantine as exc:
        dead_letter(ctx, summary, ENTITY, oid, raw, exc.reason, error_kind=exc.error_kind)
        return
    except PermanentError as exc:
        dead_letter(ctx, summary, ENTITY, oid, raw, f"erp_rejected: {exc.status} {exc}")
        return
    if outcome in _SKIPPED:
        summary.skip(outcome.value)
        return
    summary.done += 1
    ctx.store.resolve_dead_letters(ctx.flow, ENTITY, oid)


def _sync(ctx: FlowContext, raw: dict[str, Any], state: _RunState) -> Disposition:
    store = ctx.store
    order = order_from_storefront(raw)
    oid = order.external_id
    xref = store.get_xref(SYSTEM, "sales_order", oid)
    ledger = store.ledger_get(order_key(oid))
    synced = xref is not None or (ledger is not None and ledger.status == "done")
    what = disposition(order, synced=synced)
    if what is Disposition.NEEDS_MANUAL_CANCEL:
        erp_ref = xref.internal_id if xref else ledger.result_ref if ledger else "?"
        raise Quarantine(
            f"needs_manual_cancel: cancelled {raw.get('cancelled_at')} after sync as {erp_ref}", "policy"
        )
    if what is not Disposition.SYNC:
        if what is Disposition.ALREADY_SYNCED and xref is None and ledger is not None and ledger.result_ref:
            store.upsert_xref(SYSTEM, "sales_order", oid, ledger.result_ref, content_hash=sync_hash(order))
        return what

    totals = check_totals(order)
    if not totals.ok:
        raise Quarantine(totals.reason, "validation")

    customer_no = resolve_customer(ctx, order, raw, state)
    resolve_items(ctx, order, state)
    payload = order_to_erp(order, customer_no)
    key = order_key(oid)
    result = idempotent_write(
        ctx,
        key=key,
        entity=ENTITY,
        external_id=oid,
        operation="create_sales_order",
        payload=payload,
        write=lambda: ctx.erp.create_sales_order(payload, idempotency_key=key),
        ref_of=lambda rec: str(rec["order_no"]),
        lookup=lambda: ctx.erp.find_sales_order(oid),
    )
    store.upsert_xref(SYSTEM, "sales_order", oid, result.ref, content_hash=sync_hash(order))
    ctx.log.info("order %s -> ERP %s (%s)", oid, result.ref, "created" if result.created else "found by key")
    return Disposition.SYNC


def resolve_customer(ctx: FlowContext, order: Order, raw: dict[str, Any], state: _RunState) -> str:
    """Customers before orders: the ERP customer_no of the order's customer, creating it if needed."""
    if order.is_guest or not order.customer_external_id:
        return _guest_customer_no(ctx, order, state)
    cid = order.customer_external_id
    xref = ctx.store.get_xref(SYSTEM, "customer", cid)
    if xref is not None:
        return xref.internal_id
    customer_raw = ctx.storefront.get_customer(cid)
    if customer_raw is None:
        raise Quarantine(f"customer_not_found: {cid}", "dependency")
    try:
        customer = customer_from_storefront(customer_raw)
        return upsert_customer(ctx, customer).customer_no
    except MappingError as exc:
        raise Quarantine(f"customer_unresolved: {cid}: {exc}", "dependency") from exc
    except CustomerUnresolved as exc:
        raise Quarantine(f"customer_unresolved: {cid}: {exc.reason}", "dependency") from exc


def _guest_customer_no(ctx: FlowContext, order: Order, state: _RunState) -> str:
    if state.policy is GuestPolicy.HOLD:
        raise Quarantine("guest_held: guest checkout waits for a decision (guest_policy=hold)", "policy")
    if state.policy is GuestPolicy.CREATE:
        try:
            return upsert_customer(ctx, guest_customer(order)).customer_no
        except CustomerUnresolved as exc:
            raise Quarantine(
                f"customer_unresolved: guest {order.customer_email}: {exc.reason}", "dependency"
            ) from exc
    if state.guest_account is None:
        state.guest_account = ensure_guest_account(ctx, order.currency)
    return state.guest_account


def ensure_guest_account(ctx: FlowContext, currency: str) -> str:
    """The shared web-guest ERP account, created once if it is missing.

    The param ``guest_account`` (default ``WEB-GUEST``) names the account; the ERP assigns its
    customer number, which the xref ``guest-account:<name>`` remembers. An account that already
    exists in the ERP under that number, or carrying that reference, is used as it is.
    """
    wanted = str(ctx.params.get("guest_account") or DEFAULT_GUEST_ACCOUNT)
    account = shared_guest_account(wanted, currency)
    xref = ctx.store.get_xref(SYSTEM, "customer", account.external_id)
    if xref is not None:
        return xref.internal_id

    def lookup() -> dict[str, Any] | None:
        for raw in ctx.erp.find_customers(email=account.email):
            if raw.get("customer_no") == wanted or raw.get("external_ref") == account.external_id:
                return raw
        return None

    found = lookup()
    if found is not None:
        customer_no = str(found["customer_no"])
    else:
        payload = customer_to_erp(account)
        key = f"customer:{account.external_id}"
        customer_no = idempotent_write(
            ctx,
            key=key,
            entity="customer",
            external_id=account.external_id,
            operation="create_customer",
            payload=payload,
            write=lambda: ctx.erp.create_customer(payload, idempotency_key=key),
            ref_of=lambda rec: str(rec["customer_no"]),
            lookup=lookup,
        ).ref
    ctx.store.upsert_xref(SYSTEM, "customer", account.external_id, customer_no)
    return customer_no


def resolve_items(ctx: FlowContext, order: Order, state: _RunState) -> None:
    """Fill each line's ERP item code from the xref, else look the SKU up in the ERP and bind it.

    One unknown SKU holds the whole order (reason ``unknown_sku: <sku>``): a partial order in the
    ERP is worse than a late one.
    """
    skus = [ln.sku for ln in order.lines if ln.sku not in state.items]
    if skus:
        for sku, xref in ctx.store.xref_map(SYSTEM, "item", skus).items():
            state.items[sku] = xref.internal_id
    unknown: list[str] = []
    for ln in order.lines:
        code = state.items.get(ln.sku)
        if code is None:
            item = ctx.erp.find_item_by_sku(ln.sku)
            if item is None or not item.get("item_code"):
                unknown.append(ln.sku)
                continue
            code = str(item["item_code"])
            ctx.store.upsert_xref(SYSTEM, "item", ln.sku, code)
            state.items[ln.sku] = code
        ln.item_code = code
    if unknown:
        raise Quarantine(f"unknown_sku: {', '.join(dict.fromkeys(unknown))}", "validation")
