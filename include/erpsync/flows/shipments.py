"""shipments_sync: ERP shipments -> storefront fulfillments, one per shipped package, each once.

Pipeline per ERP shipment changed since the cursor: resolve its storefront order (xref of the
sales order, else the shipment's external reference), map item codes back to SKUs (xref), then
for every package handed to its carrier add one fulfillment (carrier, tracking number, the lines
and quantities in that package) through the ledger keyed ``fulfillment:<shipment>:<tracking>``.
The store notifies the customer per fulfillment, so only shipped packages ever reach it; a
pending package comes again when the ERP marks it shipped (its shipment's ``modified_at`` moves).
"""

from __future__ import annotations

from typing import Any

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
from erpsync.mappings.erp_shipments import fulfillment_to_storefront, shipment_from_erp, shipped_packages
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
        for raw in ctx.erp.list_shipments(**window_kwargs(since, before)):
            tracker.see({"updated_at": raw.get("modified_at")})
            sync_one(ctx, raw, summary)
    except TransientError:
        summary.failed += 1
        ctx.log.error("%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render())
        raise
    tracker.save(ctx)  # a backfill leaves the cursor alone
    return summary


def sync_one(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary) -> None:
    sid = str(raw.get("shipment_no") or "?")
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


def _sku_of(ctx: FlowContext, cache: dict[str, str | None]) -> Any:
    def sku_of(code: str) -> str | None:
        if code not in cache:
            x = ctx.store.get_xref_by_internal("erp", "item", code)
            cache[code] = x.external_id if x is not None else None
        return cache[code]

    return sku_of


def _order_id(ctx: FlowContext, raw: dict[str, Any]) -> dict[str, Any]:
    """The storefront order: the sales order's xref wins over the shipment's free-text reference."""
    x = ctx.store.get_xref_by_internal("erp", "sales_order", str(raw.get("order_no") or ""))
    return {**raw, "external_ref": x.external_id} if x is not None else raw


def package_keys(ctx: FlowContext, raw: dict[str, Any]) -> tuple[Shipment, list[str]]:
    """The shipment as the store will see it and the ledger key of each shipped package (what a
    dry run previews and a reconciliation checks)."""
    shipment = shipment_from_erp(_order_id(ctx, raw), _sku_of(ctx, {}))
    return shipment, [fulfillment_key(shipment.external_id, p.tracking_number) for p in shipment.packages]


def _sync(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary) -> bool:
    raw = _order_id(ctx, raw)
    shipment = shipment_from_erp(raw, _sku_of(ctx, {}))
    oid = shipment.order_external_id
    pending = len(raw.get("packages") or []) - len(shipped_packages(raw))
    if pending:
        summary.reasons["package_pending"] += pending
    wrote = False
    for p in shipment.packages:
        key = fulfillment_key(shipment.external_id, p.tracking_number)
        ledger = ctx.store.ledger_get(key)
        if ledger is not None and ledger.status == "done":
            continue
        payload = fulfillment_to_storefront(p, notify=bool(ctx.params.get("notify_customer", True)))

        def lookup(tracking: str = p.tracking_number) -> dict[str, Any] | None:
            order = ctx.storefront.get_order(oid) or {}
            for f in order.get("fulfillments") or []:
                if f.get("tracking_number") == tracking:
                    return {"fulfillment": f}
            return None

        result = idempotent_write(
            ctx,
            key=key,
            entity="fulfillment",
            external_id=oid,
            operation="add_fulfillment",
            payload=payload,
            write=lambda payload=payload, key=key: ctx.storefront.add_fulfillment(oid, payload, idempotency_key=key),
            ref_of=lambda rec: str((rec.get("fulfillment") or {}).get("id") or ""),
            lookup=lookup,
            system="storefront",
        )
        ctx.store.upsert_xref("storefront", "package", f"{shipment.external_id}:{p.tracking_number}", result.ref)
        ctx.log.info("shipment %s package %s (%s) -> order %s fulfillment %s", shipment.external_id,
                     p.tracking_number, p.carrier, oid, result.ref)
        wrote = True
    return wrote
