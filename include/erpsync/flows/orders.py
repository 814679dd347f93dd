"""orders_sync: paid storefront orders -> ERP sales orders, each exactly once.

Pipeline per order: map, decide (paid? already synced? cancelled?), check the totals, resolve the
customer first (xref, else fetch and upsert it, or the guest policy), resolve every SKU to an ERP
item code, then create through the ledger keyed by the storefront order id, looking the order up
by ``external_ref`` whenever an earlier try may have committed it. Nothing is dropped: an order
that cannot go goes to dead letters with its reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import ConfigError, MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    QUALITY_CHUNK,
    CursorTracker,
    FlowContext,
    RunSummary,
    dead_letter,
    format_cursor,
    idempotent_write,
    parse_cursor,
    read_window,
    sync_hash,
)
from erpsync.flows.concurrent import LookAhead
from erpsync.flows.customers import CustomerUnresolved, upsert_customer
from erpsync.model import Order
from erpsync.reliability.process import sync_records  # its ``owns``: a partition's outbox rows
from erpsync.rules.guests import (
    DEFAULT_GUEST_ACCOUNT,
    GuestPolicy,
    guest_customer,
    guest_policy,
    shared_guest_account,
)
from erpsync.rules.orders import Disposition, WarehouseConfig, check_totals, disposition, total_tolerance
from erpsync.state.store import check_ref

FLOW = "orders_sync"
SYSTEM = "erp"
ENTITY = "order"
#: reason counted (with done) when the ERP already had the order from an interrupted try
FOUND_BY_KEY = "found_by_key"

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


def order_id_of(ctx: FlowContext) -> Callable[[Any], str]:
    """The store order's one id (dead letters, ledger, outbox, cross-reference): the storefront
    mapping's ``order_id`` (Vendure: the order code, not its internal id), else the record's id."""
    of = getattr(storefront_mapping(ctx.storefront), "order_id", None)
    if of is not None:
        return of  # type: ignore[no-any-return]
    return lambda raw: str(raw.get("id") or "?") if isinstance(raw, dict) else "?"


def run(ctx: FlowContext) -> RunSummary:
    """Sync the orders of the data interval (scheduled run) or changed since the cursor (manual run)."""
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    tracker = CursorTracker()
    state = run_state(ctx)  # a bad param fails before anything is read
    try:
        sync_batch(ctx, _read(ctx), summary, state, on_record=tracker.see)
    except TransientError:
        summary.failed += 1
        ctx.log.error(
            "%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render()
        )
        raise
    tracker.save(ctx)  # a backfill leaves the cursor alone
    return summary


#: most partitions a run may be split into (one mapped Airflow task each)
MAX_PARTITIONS = 64


@dataclass(frozen=True, slots=True)
class Partition:
    """One share of a run's orders: those whose lane (``order_lane``: the customer, a guest's
    e-mail, else the order) hashes to ``index`` modulo ``count``. Every order is in exactly one
    partition, the same on every run and every host (a digest, not Python's salted ``hash``), and
    all orders of one customer are in the same one: "customers first" and "one customer's orders
    in sequence" hold across workers as they do inside one. ``count == 1``: the whole run."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS or not 0 <= self.index < self.count:
            raise ConfigError(f"partition {self.index} of {self.count}: the count is 1..{MAX_PARTITIONS}, "
                              f"the index 0..count-1")

    def owns(self, raw: Any) -> bool:
        return self.count == 1 or partition_of(raw, self.count) == self.index

    def run_id(self, run_id: str) -> str:
        """The partition's own run id (its metrics row, its outbox claims): ``<run id>#p<index>``."""
        return run_id if self.count == 1 else f"{run_id}#p{self.index}"


def partition_of(raw: Any, count: int) -> int:
    """The partition (0..count-1) of a raw store order: a stable digest of its lane."""
    digest = hashlib.blake2b(order_lane(raw).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count


def configured_partitions(declared: int, raw: str | None) -> int:
    """How many partitions orders_sync's run is split into: ``raw`` (the environment variable
    ``ERPSYNC_PARTITIONS_ORDERS_SYNC``) when set, else ``declared`` (``FlowSpec.partitions``)."""
    text = (raw or "").strip()
    if not text:
        return declared
    if not text.isdigit() or not 1 <= int(text) <= MAX_PARTITIONS:
        raise ConfigError(f"ERPSYNC_PARTITIONS_ORDERS_SYNC={text!r}: a whole number from 1 to {MAX_PARTITIONS}, "
                          "e.g. 2 (one mapped task per partition; 1: one task, as without it)")
    return int(text)


def run_partition(ctx: FlowContext, partition: Partition) -> tuple[RunSummary, str | None]:
    """One partition's share of ``run``: the same read, only this partition's orders synced (and
    only its rows of the outbox). The cursor is not moved here; the second value is the highest
    change time read (as the cursor is stored), which ``save_cursor`` takes once every partition
    of the run has succeeded. ``count == 1``: exactly ``run`` (it moves the cursor itself)."""
    if partition.count == 1:
        return run(ctx), None
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    tracker = CursorTracker()
    state = run_state(ctx)

    def mine() -> Iterator[dict[str, Any]]:
        for raw in _read(ctx):
            tracker.see(raw)  # every partition reads the same slice: each sees the same high
            if partition.owns(raw):
                yield raw

    ctx.log.info("%s: partition %d of %d (its customers' orders)", ctx.flow, partition.index, partition.count)
    try:
        sync_batch(ctx, mine(), summary, state, owns=partition.owns)
    except TransientError:
        summary.failed += 1
        ctx.log.error("%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render())
        raise
    return summary, format_cursor(tracker.high) if tracker.high is not None else None


def save_cursor(ctx: FlowContext, highs: Iterable[str | None]) -> str | None:
    """After every partition of a run succeeded: move the cursor to the highest change they read
    (never back; a backfill leaves it alone, as ``CursorTracker.save``)."""
    tracker = CursorTracker()
    for high in filter(None, highs):
        seen = parse_cursor(high)
        if tracker.high is None or seen > tracker.high:
            tracker.high = seen
    tracker.save(ctx)
    return ctx.store.get_cursor(ctx.flow)


def run_state(ctx: FlowContext) -> _RunState:
    """The per-run memo, with the open dead letters read once: a synced order resolves its own
    without a write per order."""
    state = _RunState(policy=guest_policy(ctx.params))
    state.configure(ctx)  # a bad warehouse map or tolerance fails before anything is read
    state.open_dead = {d.external_id for d in ctx.store.list_dead_letters(flow=ctx.flow, limit=10_000_000)}
    return state


def sync_batch(
    ctx: FlowContext, records: Iterable[dict[str, Any]], summary: RunSummary, state: _RunState, *,
    on_record: Callable[[Any], None] | None = None, owns: Callable[[Any], bool] | None = None,
) -> None:
    """The one order-writing path (live runs, backfills, replays aside, the historical migration):
    outbox first, then the records through the quality gate and ``sync_one``, up to
    ``write_concurrency`` at once. Raises TransientError when records wait in the outbox.
    ``owns``: a partition's share of the outbox (``Partition.owns``)."""
    workers = write_concurrency(ctx)
    # param quality_chunk: records validated together; smaller chunks let writes start sooner
    chunk = int(ctx.params.get("quality_chunk") or QUALITY_CHUNK)
    # the quality gate first: records failing the order suite are quarantined, not loaded
    oid_of = order_id_of(ctx)
    batch = ctx.gate(ENTITY, records, summary, mapper=storefront_mapping(ctx.storefront).order_from_storefront,
                     key=oid_of, on_record=on_record, chunk=chunk, synced=already_synced(ctx))
    if workers > 1:  # the next orders' writes run ahead on a pool; outcomes merge in order
        with LookAhead(ctx, lambda wctx, raw, part: sync_one(wctx, raw, part, state), order_lane,
                       workers=workers) as ahead:
            sync_records(ctx, summary, ahead.feed(batch), ahead.handle(summary), entity=ENTITY, on_record=on_record,
                         key=oid_of, owns=owns)
    else:
        sync_records(ctx, summary, batch, lambda raw: sync_one(ctx, raw, summary, state),
                     entity=ENTITY, on_record=on_record, key=oid_of, owns=owns)


def already_synced(ctx: FlowContext) -> Callable[[Any], bool]:
    """Whether the ERP already has a store order (its xref, or its ledger row done with a real
    ERP id, as ``_sync`` decides): the quality gate neither dead-letters its bad re-read nor keeps
    its stale dead letter open."""
    oid_of = order_id_of(ctx)

    def synced(raw: Any) -> bool:
        oid = oid_of(raw)
        if ctx.store.get_xref(SYSTEM, "sales_order", oid) is not None:
            return True
        ledger = ctx.store.ledger_get(order_key(oid))
        return ledger is not None and ledger.status == "done" and _real_id(ledger.result_ref)

    return synced


def write_concurrency(ctx: FlowContext) -> int:
    """Param ``write_concurrency`` (default 1): orders written at the same time (see flows/concurrent.py)."""
    try:
        value = int(ctx.params.get("write_concurrency", 1))
    except (TypeError, ValueError):
        raise ConfigError(f"param write_concurrency={ctx.params.get('write_concurrency')!r} is not a number") from None
    if not 1 <= value <= 64:
        raise ConfigError(f"param write_concurrency={value} must be between 1 and 64")
    return value


def order_lane(raw: Any) -> str:
    """Orders of one customer (a guest: one e-mail) are written one after the other, never together."""
    if not isinstance(raw, dict):
        return "?"
    customer = raw.get("customer") if isinstance(raw.get("customer"), dict) else None
    if customer and customer.get("id"):
        return f"customer:{customer['id']}"
    email = str(raw.get("email") or "").strip().lower()
    return f"guest:{email}" if email else f"order:{raw.get('id')}"


def _read(ctx: FlowContext) -> Iterator[dict[str, Any]]:
    """What one run reads (``base.read_window``): a backfill exactly its data interval plus the
    lookback overlap, leaving the cursor; a scheduled run its interval, back to the cursor after a
    gap; a manual run everything since the cursor. The ledger makes re-reading harmless."""
    since, before = read_window(ctx)
    if before is not None:
        ctx.log.info("%s: orders updated in [%s, %s)", ctx.flow, since, before)
    else:
        ctx.log.info("%s: orders updated since %s", ctx.flow, since or "the beginning")
    return ctx.storefront.list_orders(updated_since=since, updated_before=before)


class _RunState:
    """Per-run memo: the shared guest account and item codes are looked up once per run."""

    def __init__(self, policy: GuestPolicy) -> None:
        self.policy = policy
        self.guest_account: str | None = None
        self.items: dict[str, str] = {}
        self.lock = threading.Lock()  # concurrent writers create the shared guest account once
        #: orders with an open dead letter (None: unknown, always resolve)
        self.open_dead: set[str] | None = None
        #: the ERP warehouse of each order (docs/configuration.md) and the ERP total's tolerance,
        #: read from the ERP Connection and the params once (``configure``; also on first use, for
        #: callers that make their own state: the dead-letter replay)
        self.warehouses: WarehouseConfig | None = None
        self.tolerance = total_tolerance(None)

    def configure(self, ctx: FlowContext) -> None:
        extra = getattr(ctx.erp, "limits", None) or {}
        self.warehouses = WarehouseConfig.from_extra(extra, str(extra.get("conn_id", "erp_default")))
        self.tolerance = total_tolerance(ctx.params.get("total_tolerance"))

    def note_dead(self, oid: str) -> None:
        if self.open_dead is not None:
            self.open_dead.add(oid)


def sync_one(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary, state: _RunState) -> None:
    oid = order_id_of(ctx)(raw)
    try:
        outcome, recovered, placed_at = _sync(ctx, raw, state)
    except MappingError as exc:
        dead_letter(ctx, summary, ENTITY, oid, raw, f"mapping_error: {exc}", error_kind="mapping")
        state.note_dead(oid)
        return
    except Quarantine as exc:
        dead_letter(ctx, summary, ENTITY, oid, raw, exc.reason, error_kind=exc.error_kind)
        state.note_dead(oid)
        return
    except PermanentError as exc:
        code = exc.body.get("error") if isinstance(exc.body, dict) else None
        if code == "tax_mismatch":  # the ERP's total (its taxes) is not the store's: held, not confirmed
            dead_letter(ctx, summary, ENTITY, oid, raw, str(exc), error_kind="validation")
        else:
            dead_letter(ctx, summary, ENTITY, oid, raw, f"erp_rejected: {exc.status} {exc}")
        state.note_dead(oid)
        return
    if outcome in _SKIPPED:
        summary.skip(outcome.value)
        return
    summary.done += 1
    if placed_at is not None:  # placed -> in the ERP (run_metrics keeps the run's histogram)
        placed = placed_at if placed_at.tzinfo else placed_at.replace(tzinfo=dt.UTC)
        summary.latencies_s.append((dt.datetime.now(dt.UTC) - placed).total_seconds())
    if recovered:  # an earlier, interrupted try had written it: found by its key, not written twice
        summary.reasons[FOUND_BY_KEY] += 1
    if state.open_dead is None or oid in state.open_dead:
        ctx.store.resolve_dead_letters(ctx.flow, ENTITY, oid)


def _sync(
    ctx: FlowContext, raw: dict[str, Any], state: _RunState
) -> tuple[Disposition, bool, dt.datetime | None]:
    """The order's disposition, whether the ERP already had it from an earlier try (found by key),
    and when it was placed if this call wrote it (its placed -> ERP latency)."""
    store = ctx.store
    order = storefront_mapping(ctx.storefront).order_from_storefront(raw)
    oid = order.external_id
    xref = store.get_xref(SYSTEM, "sales_order", oid)
    ledger = store.ledger_get(order_key(oid))
    if ledger is not None and ledger.status == "done" and not _real_id(ledger.result_ref):
        ledger = None  # "done" as nothing (an old false success): looked up and checked again
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
        return what, False, None

    totals = check_totals(order)
    if not totals.ok:
        raise Quarantine(totals.reason, "validation")

    customer_no = resolve_customer(ctx, order, raw, state)
    resolve_items(ctx, order, state)
    if state.warehouses is None:
        state.configure(ctx)
    assert state.warehouses is not None
    order.warehouse = state.warehouses.warehouse_for(order)
    erp_map = erp_mapping(ctx.erp)
    payload = erp_map.order_to_erp(order, customer_no)
    if "expected_total" in payload:  # the ERP checks its computed total before confirming
        payload["total_tolerance"] = str(state.tolerance)
    key = order_key(oid)
    state_of = getattr(erp_map, "order_state", None)

    def booked_ref(raw_order: dict[str, Any]) -> str:
        """The ERP order's number, only once the order is booked there (a draft is not done)."""
        what = state_of(raw_order) if state_of is not None else "booked"
        if what != "booked":
            raise Quarantine(
                f"erp_order_not_booked: the ERP's order for {oid} is {raw_order.get('state') or raw_order.get('status')}"
                " (not confirmed); fix it in the ERP or replay the dead letter", "permanent")
        return check_ref(erp_map.order_no(raw_order), f"ERP order of {oid}")

    def lookup() -> dict[str, Any] | None:
        """The ERP's order by its external reference, checked: a booked one is done; a draft or
        quotation left by a failed try is taken forward by the write (None here); a cancelled one
        holds the order (``erp_order_not_booked``)."""
        found = ctx.erp.find_sales_order(oid)
        if found is not None and state_of is not None and state_of(found) == "resumable":
            ctx.log.info("order %s: the ERP has it unconfirmed (%s): taking it forward", oid, found.get("state"))
            return None
        return found

    def bind(ref: str) -> None:
        store.upsert_xref(SYSTEM, "sales_order", oid, ref, content_hash=sync_hash(order))

    result = idempotent_write(
        ctx,
        key=key,
        entity=ENTITY,
        external_id=oid,
        operation="create_sales_order",
        payload=payload,
        write=lambda: ctx.erp.create_sales_order(payload, idempotency_key=key),
        ref_of=booked_ref,
        lookup=lookup,
        bind=bind,
    )
    ctx.log.info("order %s -> ERP %s (%s)", oid, result.ref, "created" if result.created else "found by key")
    return Disposition.SYNC, not result.created, order.placed_at if result.created else None


def _real_id(value: Any) -> bool:
    try:
        check_ref(value, "id")
    except ValueError:
        return False
    return True


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
        customer = storefront_mapping(ctx.storefront).customer_from_storefront(customer_raw)
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
    with state.lock:
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

    erp_map = erp_mapping(ctx.erp)

    def lookup() -> dict[str, Any] | None:
        for raw in ctx.erp.find_customers(email=account.email):
            if erp_map.customer_no(raw) == wanted or erp_map.customer_external_ref(raw) == account.external_id:
                return raw
        return None

    found = lookup()
    if found is not None:
        customer_no = erp_map.customer_no(found)
    else:
        payload = erp_map.customer_to_erp(account)
        key = f"customer:{account.external_id}"
        customer_no = idempotent_write(
            ctx,
            key=key,
            entity="customer",
            external_id=account.external_id,
            operation="create_customer",
            payload=payload,
            write=lambda: ctx.erp.create_customer(payload, idempotency_key=key),
            ref_of=erp_map.customer_no,
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
            code = erp_mapping(ctx.erp).item_code(item) if item is not None else None
            if not code:
                unknown.append(ln.sku)
                continue
            code = str(code)
            ctx.store.upsert_xref(SYSTEM, "item", ln.sku, code)
            state.items[ln.sku] = code
        ln.item_code = code
    if unknown:
        raise Quarantine(f"unknown_sku: {', '.join(dict.fromkeys(unknown))}", "validation")
