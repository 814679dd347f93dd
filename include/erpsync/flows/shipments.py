"""shipments_sync: ERP shipments -> storefront fulfillments, one per shipped package, each once.

Pipeline per ERP shipment changed in the run's window: a shipment with nothing handed to its
carrier yet waits (counted ``package_pending``; it comes again when the ERP ships it, since its
change time moves); the rest pass the quality gate (suite ``shipment``: mapped through the ERP
adapter's mapping, a record that cannot be mapped or fails an expectation is quarantined with
the reason, a batch over the flow's bad-share limit fails the run before anything is loaded);
then per shipment: resolve its storefront order (xref of the sales order, else the shipment's
own reference), map item codes back to SKUs (xref), and for every package handed to its carrier
add one fulfillment (carrier, tracking number, the lines and quantities in that package) through
the ledger keyed ``fulfillment:<shipment>:<tracking>``.

The mappings come from the adapters (``erpsync.connectors.registry.erp_mapping`` /
``storefront_mapping``), so the same code runs against the sandbox and against Tryton/Vendure;
see docs/adding-a-connector.md for the functions a mapping provides. The store notifies the
customer per fulfillment, so only shipped packages ever reach it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    CursorTracker,
    FlowContext,
    RunSummary,
    dead_letter,
    idempotent_write,
    read_window,
    window_kwargs,
)
from erpsync.model import Shipment

FLOW = "shipments_sync"
ENTITY = "shipment"


def fulfillment_key(shipment_no: str, tracking: str) -> str:
    return f"fulfillment:{shipment_no}:{tracking}"


def run(ctx: FlowContext) -> RunSummary:
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    tracker = CursorTracker()
    since, before = read_window(ctx, from_start=True)  # a backfill: exactly its interval
    ctx.log.info("%s: ERP shipments changed in [%s, %s)", ctx.flow, since or "the beginning", before or "now")
    try:
        sync_batch(ctx, ctx.erp.list_shipments(**window_kwargs(since, before)), summary, on_record=tracker.see)
    except TransientError:
        summary.failed += 1
        ctx.log.error("%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render())
        raise
    tracker.save(ctx)  # a backfill leaves the cursor alone
    return summary


def sync_batch(ctx: FlowContext, records: Iterable[dict[str, Any]], summary: RunSummary, *,
               on_record: Callable[[Any], None] | None = None) -> None:
    """ERP shipments -> the quality gate -> ``sync_one``; ``on_record`` (a cursor tracker) sees
    every record read as ``{"updated_at": <the ERP's change time>}``."""
    erp_map = erp_mapping(ctx.erp)

    def shipped(raws: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for raw in raws:
            if not isinstance(raw, Mapping):  # not a record (null, malformed JSON left as text): the gate quarantines it
                yield raw
                continue
            if on_record is not None:
                on_record({"updated_at": erp_map.changed_at(raw)})
            if not erp_map.shipped_packages(raw):
                pending = erp_map.pending_packages(raw)
                if pending:
                    summary.reasons["package_pending"] += pending
                elif erp_map.shipment_done(raw):
                    # shipped by the ERP with no package: the store would never hear of it
                    summary.read += 1
                    dead_letter(ctx, summary, ENTITY, erp_map.shipment_no(raw), raw,
                                "no_packages: the ERP shipped it without any package (no carrier, no "
                                "tracking number): add its package(s) in the ERP, then replay")
                    continue
                summary.read += 1  # read, not given to the gate: counted here
                summary.skip("nothing_shipped")  # a documented no-op: its packages come when shipped
                continue
            yield raw

    batch = ctx.gate(ENTITY, shipped(records), summary, mapper=lambda raw: map_shipment(ctx, raw),
                     key=erp_map.shipment_no)
    for raw in batch:
        sync_one(ctx, raw, summary)


def sync_one(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary) -> None:
    sid = erp_mapping(ctx.erp).shipment_no(raw)
    try:
        outcome = _sync(ctx, raw, summary)
    except MappingError as exc:
        dead_letter(ctx, summary, ENTITY, sid, raw, f"mapping_error: {exc}", error_kind="mapping")
        return
    except PermanentError as exc:
        dead_letter(ctx, summary, ENTITY, sid, raw, f"storefront_rejected: {exc.status} {exc}")
        return
    if outcome:
        summary.done += 1
        ctx.store.resolve_dead_letters(ctx.flow, ENTITY, sid)
    else:
        summary.skip("nothing_new")


def _sku_of(ctx: FlowContext, cache: dict[str, str | None]) -> Callable[[str], str | None]:
    def sku_of(code: str) -> str | None:
        if code not in cache:
            x = ctx.store.get_xref_by_internal("erp", "item", code)
            cache[code] = x.external_id if x is not None else None
        return cache[code]

    return sku_of


def _order_ref(ctx: FlowContext, raw: dict[str, Any]) -> str | None:
    """The storefront order bound to the shipment's ERP sales order (wins over the shipment's
    own free-text reference)."""
    order_no = erp_mapping(ctx.erp).shipment_order_no(raw)
    x = ctx.store.get_xref_by_internal("erp", "sales_order", order_no) if order_no else None
    return x.external_id if x is not None else None


def map_shipment(ctx: FlowContext, raw: dict[str, Any]) -> Shipment:
    """The shipment as the store will see it (its shipped packages), through the ERP's mapping."""
    return erp_mapping(ctx.erp).shipment_from_erp(raw, _sku_of(ctx, {}), order_ref=_order_ref(ctx, raw))


def package_keys(ctx: FlowContext, raw: dict[str, Any]) -> tuple[Shipment, list[str]]:
    """The shipment as the store will see it and the ledger key of each shipped package (what a
    dry run previews and a reconciliation checks)."""
    shipment = map_shipment(ctx, raw)
    return shipment, [fulfillment_key(shipment.external_id, p.tracking_number) for p in shipment.packages]


def _sync(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary) -> bool:
    erp_map, sf_map = erp_mapping(ctx.erp), storefront_mapping(ctx.storefront)
    shipment = map_shipment(ctx, raw)
    oid = shipment.order_external_id
    pending = erp_map.pending_packages(raw)
    if pending:
        summary.reasons["package_pending"] += pending
    wrote = False
    for p in shipment.packages:
        key = fulfillment_key(shipment.external_id, p.tracking_number)
        ledger = ctx.store.ledger_get(key)
        if ledger is not None and ledger.status == "done":
            continue
        payload = sf_map.fulfillment_to_storefront(p, notify=bool(ctx.params.get("notify_customer", True)))

        def lookup(tracking: str = p.tracking_number) -> dict[str, Any] | None:
            return sf_map.find_fulfillment(ctx.storefront.get_order(oid), tracking)

        result = idempotent_write(
            ctx,
            key=key,
            entity="fulfillment",
            external_id=oid,
            operation="add_fulfillment",
            payload=payload,
            write=functools.partial(ctx.storefront.add_fulfillment, oid, payload, idempotency_key=key),
            ref_of=sf_map.fulfillment_ref,
            lookup=lookup,
            system="storefront",
        )
        ctx.store.upsert_xref("storefront", "package", f"{shipment.external_id}:{p.tracking_number}", result.ref)
        ctx.log.info("shipment %s package %s (%s) -> order %s fulfillment %s", shipment.external_id,
                     p.tracking_number, p.carrier, oid, result.ref)
        wrote = True
    return wrote
