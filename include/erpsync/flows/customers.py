"""customers_sync: storefront customers -> ERP customers (B2C: the storefront is the master).

Pipeline per record (OCA connector style): fetch changed since the cursor, map, skip if the
content hash bound in the xref is unchanged, match an existing ERP customer (xref, e-mail, then
name + postcode), create or update through the idempotency ledger, bind the xref.
``upsert_customer`` is also what orders_sync calls for a customer it meets first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    CursorTracker,
    FlowContext,
    RunSummary,
    cursor_since,
    dead_letter,
    idempotent_write,
    sync_hash,
    sync_records,
)
from erpsync.model import Customer
from erpsync.rules.customers import Match, match_customer

FLOW = "customers_sync"
SYSTEM = "erp"
ENTITY = "customer"


class CustomerUnresolved(Exception):
    """The customer cannot be placed without a person deciding; ``reason`` goes to the dead letter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Upserted:
    customer_no: str
    action: str  # unchanged | updated | matched | created | found


def create_key(external_id: str) -> str:
    return f"customer:{external_id}"


def run(ctx: FlowContext) -> RunSummary:
    """Sync storefront customers changed since the cursor; the cursor moves only after the batch."""
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    tracker = CursorTracker()
    since = cursor_since(ctx)
    ctx.log.info("%s: reading storefront customers updated since %s", ctx.flow, since or "the beginning")
    try:
        sync_batch(ctx, ctx.storefront.list_customers(updated_since=since), summary, on_record=tracker.see)
    except TransientError:
        summary.failed += 1
        ctx.log.error(
            "%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render()
        )
        raise
    tracker.save(ctx)
    return summary


def sync_batch(ctx: FlowContext, records: Iterable[dict], summary: RunSummary, *,
               on_record: Callable[[Any], None] | None = None) -> None:
    """The customer-writing path of the live runs and the historical migration: outbox first, then
    the records through the quality gate (failures quarantined, not loaded) and ``sync_one``."""
    batch = ctx.gate(ENTITY, records, summary, mapper=storefront_mapping(ctx.storefront).customer_from_storefront,
                     on_record=on_record, synced=already_synced(ctx))
    sync_records(ctx, summary, batch, lambda raw: sync_one(ctx, raw, summary), entity=ENTITY, on_record=on_record)


def already_synced(ctx: FlowContext) -> Callable[[Any], bool]:
    """Whether the ERP already has this very content of a storefront customer (its xref's content
    hash is the record's): the quality gate neither dead-letters such a re-read nor keeps a stale
    dead letter of it open. A changed customer is not synced: it is checked and updated."""
    mapping = storefront_mapping(ctx.storefront)

    def synced(raw: Any) -> bool:
        xref = ctx.store.get_xref(SYSTEM, ENTITY, str(raw.get("id") or "?"))
        if xref is None or not xref.content_hash:
            return False
        try:
            return xref.content_hash == sync_hash(mapping.customer_from_storefront(raw))
        except MappingError:
            return False

    return synced


def sync_one(ctx: FlowContext, raw: dict, summary: RunSummary) -> None:
    """One storefront customer; a mapping or permanent error dead-letters it and the batch goes on."""
    sid = str(raw.get("id") or "?")
    try:
        customer = storefront_mapping(ctx.storefront).customer_from_storefront(raw)
        result = upsert_customer(ctx, customer)
    except MappingError as exc:
        dead_letter(ctx, summary, ENTITY, sid, raw, f"mapping_error: {exc}", error_kind="mapping")
        return
    except CustomerUnresolved as exc:
        dead_letter(ctx, summary, ENTITY, sid, raw, exc.reason, error_kind="conflict")
        return
    except PermanentError as exc:
        dead_letter(ctx, summary, ENTITY, sid, raw, f"erp_rejected: {exc.status} {exc}")
        return
    if result.action == "unchanged":
        summary.skip("unchanged")
        return
    summary.done += 1
    ctx.store.resolve_dead_letters(ctx.flow, ENTITY, sid)


def upsert_customer(ctx: FlowContext, customer: Customer) -> Upserted:
    """Make sure the ERP has ``customer`` and the xref binds it; return its ERP customer_no.

    Raises CustomerUnresolved (ambiguous match), MappingError, PermanentError, TransientError.
    """
    store = ctx.store
    sid = customer.external_id
    digest = sync_hash(customer)
    storefront_is_master = ctx.params.get("customer_master", "storefront") == "storefront"

    xref = store.get_xref(SYSTEM, ENTITY, sid)
    if xref is not None:
        if xref.content_hash == digest:
            return Upserted(xref.internal_id, "unchanged")
        if storefront_is_master:
            _update(ctx, xref.internal_id, customer, digest)
        store.upsert_xref(SYSTEM, ENTITY, sid, xref.internal_id, content_hash=digest)
        return Upserted(xref.internal_id, "updated")

    key = create_key(sid)
    prior = store.ledger_get(key)
    if prior is not None and prior.status == "done" and prior.result_ref:
        # created by an earlier try that stopped before binding
        store.upsert_xref(SYSTEM, ENTITY, sid, prior.result_ref, content_hash=digest)
        return Upserted(prior.result_ref, "found")

    match = find_match(ctx, customer)
    if match.ambiguous:
        raise CustomerUnresolved(
            f"ambiguous_customer_match: {match.level} matches {', '.join(match.ambiguous)}"
        )
    if match.customer is not None:
        customer_no = match.customer.external_id
        if storefront_is_master:
            _update(ctx, customer_no, customer, digest)
        store.upsert_xref(SYSTEM, ENTITY, sid, customer_no, content_hash=digest)
        ctx.log.info("customer %s matched ERP %s by %s", sid, customer_no, match.level)
        return Upserted(customer_no, "matched")

    erp_map = erp_mapping(ctx.erp)
    payload = erp_map.customer_to_erp(customer)
    result = idempotent_write(
        ctx,
        key=key,
        entity=ENTITY,
        external_id=sid,
        operation="create_customer",
        payload=payload,
        write=lambda: ctx.erp.create_customer(payload, idempotency_key=key),
        ref_of=erp_map.customer_no,
        lookup=lambda: find_by_external_ref(ctx, customer),
    )
    store.upsert_xref(SYSTEM, ENTITY, sid, result.ref, content_hash=digest)
    return Upserted(result.ref, "created" if result.created else "found")


def _update(ctx: FlowContext, customer_no: str, customer: Customer, digest: str) -> None:
    erp_map = erp_mapping(ctx.erp)
    payload = erp_map.customer_update_to_erp(customer)
    key = f"customer:{customer.external_id}:update:{digest[:16]}:{ctx.run_id}"
    idempotent_write(
        ctx,
        key=key,
        entity=ENTITY,
        external_id=customer.external_id,
        operation="update_customer",
        payload=payload,
        write=lambda: ctx.erp.update_customer(customer_no, payload, idempotency_key=key),
        ref_of=lambda raw: _customer_no_or(erp_map, raw, customer_no),
    )


def find_match(ctx: FlowContext, customer: Customer) -> Match:
    """Duplicate matching against the ERP: e-mail first, then name + postcode (rules.customers)."""
    bound: dict[str, str | None] = {}
    pool: list[Customer] = []
    erp_map = erp_mapping(ctx.erp)

    def add(raws: list[dict]) -> None:
        for raw in raws:
            try:
                candidate = erp_map.customer_from_erp(raw)
            except MappingError as exc:
                ctx.log.warning("ERP customer %s not comparable: %s", _customer_no_or(erp_map, raw, "?"), exc)
                continue
            if candidate.external_id not in bound:
                bound[candidate.external_id] = erp_map.customer_external_ref(raw)
                pool.append(candidate)

    if customer.normalised_email:
        add(ctx.erp.find_customers(email=customer.normalised_email))
    match = match_customer(customer, pool, bound_to=bound)
    if match.found or match.ambiguous:
        return match
    name = f"{customer.first_name} {customer.last_name}".strip()
    if name:
        for postcode in dict.fromkeys(a.postcode for a in customer.addresses if a.postcode):
            add(ctx.erp.find_customers(name=name, postcode=postcode))
        match = match_customer(customer, pool, bound_to=bound)
    return match


def find_by_external_ref(ctx: FlowContext, customer: Customer) -> dict | None:
    """The ERP customer an earlier (unanswered) create made: same e-mail, our storefront id."""
    if not customer.normalised_email:
        return None
    erp_map = erp_mapping(ctx.erp)
    for raw in ctx.erp.find_customers(email=customer.normalised_email):
        if erp_map.customer_external_ref(raw) == customer.external_id:
            return raw
    return None


def _customer_no_or(erp_map: Any, raw: dict, default: str) -> str:
    """The customer number in an ERP answer, or ``default`` when the answer does not carry it."""
    try:
        return erp_map.customer_no(raw)
    except (KeyError, TypeError):
        return default
