"""returns_sync: store returns -> ERP RMAs; status, dispositions, credit memo and refund back; checked.

One run does both directions, each batch through the quality gate first (suite ``return``: a
record that cannot be mapped or fails an expectation is quarantined with the reason and the rest
goes on; a batch over the flow's bad-share limit fails the run before anything of it is loaded):

1. **Store -> ERP.** Returns the store opened (changed since the cursor ``store``) become ERP RMAs
   on the synced sales order, by item code, exactly once (ledger ``return:<id>``, look-up by the
   RMA's reference to the store return); the store's return shows ``open`` and the RMA number.
2. **ERP -> store.** RMAs changed since the cursor ``erp`` that came from the store: a rejected
   one rejects the store's return; a credited one sends its dispositions and credit memo to the
   store and refunds the credited lines there, once (ledger ``refund:<id>:<memo>``). Param
   ``refund_amount``: ``credit_memo`` (default) refunds exactly the memo's amount, ``storefront``
   lets the store compute its own refund for the lines.
3. **The check.** Every return with both a refund and a credit memo is compared to the cent
   (``erpsync.rules.refunds.check_refund``); each difference is logged, counted
   (``refund_mismatch:<cause>``) and kept in a drift report with its cause: a rounding
   difference names the two rounding conventions that produce both amounts.

Every record is read and written through the adapters' mappings
(``erpsync.connectors.registry``), so the same code runs against the sandbox and Tryton/Vendure;
how each real system models a return is written at the top of its mapping module. Restocked
units are put back on hand by the ERP when it receives them; inventory_sync picks the changed
stock up like any other stock change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from erpsync.connectors.capabilities import lacking, say_unsupported
from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import ConfigError, MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    CursorTracker,
    FlowContext,
    RunSummary,
    dead_letter,
    idempotent_write,
    read_window,
    window_kwargs,
)
from erpsync.model import Return
from erpsync.rules.refunds import RefundCheck, check_refund

FLOW = "returns_sync"
ENTITY = "return"
REFUND_SOURCES = ("credit_memo", "storefront")


class Held(Exception):
    def __init__(self, reason: str, kind: str = "dependency") -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


def refund_source(ctx: FlowContext) -> str:
    value = str(ctx.params.get("refund_amount", "credit_memo"))
    if value not in REFUND_SOURCES:
        raise ConfigError(f"param refund_amount={value!r} is unknown; use one of: {', '.join(REFUND_SOURCES)}")
    return value


def run(ctx: FlowContext) -> RunSummary:
    source = refund_source(ctx)
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    for side, adapter in (("storefront", ctx.storefront), ("erp", ctx.erp)):
        if lacking(adapter, "rmas"):  # the capability matrix: said once per run, nothing read or lost
            say_unsupported(ctx, summary, side, "rmas", "no return is read or written in either direction")
            return summary
    checks: list[dict[str, Any]] = []
    to_store, to_erp = CursorTracker(), CursorTracker()
    try:
        # each direction reads its own slice (base.read_window): a backfill exactly its interval
        open_returns(ctx, ctx.storefront.list_returns(**window_kwargs(*read_window(ctx, "store", from_start=True))),
                     summary, tracker=to_store)
        credit_back(ctx, ctx.erp.list_returns(**window_kwargs(*read_window(ctx, "erp", from_start=True))),
                    summary, source, checks, tracker=to_erp)
    except TransientError:
        summary.failed += 1
        ctx.log.error("%s: stopped by a transient error; what was done is kept\n%s", ctx.flow, summary.render())
        raise
    to_store.save(ctx, "store")  # a backfill leaves both cursors alone
    to_erp.save(ctx, "erp")
    bad = [c for c in checks if not c["ok"]]
    if checks:
        ctx.store.add_drift_report(
            ctx.flow, ctx.run_id or "adhoc",
            {"checked": len(checks), "mismatches": len(bad),
             "causes": {c["cause"]: sum(1 for x in bad if x["cause"] == c["cause"]) for c in bad}},
            checks,
        )
    return summary


def open_returns(ctx: FlowContext, records: Iterable[dict[str, Any]], summary: RunSummary, *,
                 tracker: CursorTracker | None = None) -> None:
    """Store -> ERP, the path of the live runs and the historical migration: the returns pass the
    quality gate, then each requested return becomes an RMA once; what cannot go is dead-lettered."""
    sf_map = storefront_mapping(ctx.storefront)

    def seen(raw: Any) -> None:
        if tracker is not None and isinstance(raw, dict):
            tracker.see({"updated_at": sf_map.changed_at(raw)})

    batch = ctx.gate(ENTITY, records, summary, mapper=sf_map.return_from_storefront, key=sf_map.return_id,
                     on_record=seen)
    for raw in batch:
        _one(ctx, summary, sf_map.return_id(raw), raw, lambda raw=raw: open_in_erp(ctx, raw))


def credit_back(ctx: FlowContext, records: Iterable[dict[str, Any]], summary: RunSummary, source: str,
                checks: list[dict[str, Any]], *, tracker: CursorTracker | None = None) -> None:
    """ERP -> store: the RMAs that came from the store pass the quality gate, then each brings
    its status, credit memo and refund back (``back_to_store``)."""
    erp_map = erp_mapping(ctx.erp)
    bound: dict[str, str] = {}  # RMA number -> store return id

    def ours(raws: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for raw in raws:
            if not isinstance(raw, Mapping):  # not a record (null, malformed JSON left as text): the gate quarantines it
                yield raw
                continue
            if tracker is not None:
                tracker.see({"updated_at": erp_map.changed_at(raw)})
            no = erp_map.rma_no(raw)
            x = ctx.store.get_xref_by_internal("erp", "return", no)
            if x is None:
                summary.read += 1  # read, not given to the gate: counted here
                summary.skip("not_from_store")  # opened in the ERP, not by us: nothing in the store to update
                continue
            bound[no] = x.external_id
            yield raw

    batch = ctx.gate(ENTITY, ours(records), summary, mapper=lambda raw: erp_map.return_from_erp(raw, _sku_of(ctx)),
                     key=lambda raw: bound.get(erp_map.rma_no(raw), erp_map.rma_no(raw)))
    for rma in batch:
        rid = bound[erp_map.rma_no(rma)]
        _one(ctx, summary, rid, rma, lambda rma=rma: back_to_store(ctx, rma, source, checks))


def _one(ctx: FlowContext, summary: RunSummary, rid: str, raw: dict[str, Any], work: Any) -> None:
    try:
        outcome = work()
    except MappingError as exc:
        dead_letter(ctx, summary, ENTITY, rid, raw, f"mapping_error: {exc}", error_kind="mapping")
        return
    except Held as exc:
        dead_letter(ctx, summary, ENTITY, rid, raw, exc.reason, error_kind=exc.kind)
        return
    except PermanentError as exc:
        dead_letter(ctx, summary, ENTITY, rid, raw, f"rejected: {exc.system} {exc.status} {exc}")
        return
    if outcome:
        summary.done += 1
        summary.reasons[outcome] += 1
        ctx.store.resolve_dead_letters(ctx.flow, ENTITY, rid)
    else:
        summary.skip("unchanged")


def _sku_of(ctx: FlowContext) -> Callable[[str], str | None]:
    cache: dict[str, str | None] = {}

    def sku_of(code: str) -> str | None:
        if code not in cache:
            ref = ctx.store.get_xref_by_internal("erp", "item", code)
            cache[code] = ref.external_id if ref is not None else None
        return cache[code]

    return sku_of


# --------------------------------------------------------------------------- store -> ERP


def open_in_erp(ctx: FlowContext, raw: dict[str, Any]) -> str | None:
    erp_map, sf_map = erp_mapping(ctx.erp), storefront_mapping(ctx.storefront)
    ret = sf_map.return_from_storefront(raw)
    if ret.status != "requested":
        return None
    bound = ctx.store.get_xref("erp", "return", ret.rma)
    if bound is not None:
        # the RMA exists; a run stopped before the store was told (its return still shows
        # "requested" without the RMA number): tell it now, once (the ledger knows)
        opened = ctx.store.ledger_get(f"return:{ret.rma}:opened")
        if opened is not None and opened.status == "done":
            return None
        _update_store(ctx, ret.rma, sf_map.return_update_to_storefront("open", erp_reference=bound.internal_id),
                      f"return:{ret.rma}:opened")
        return "opened"
    so = ctx.store.get_xref("erp", "sales_order", ret.order_external_id)
    if so is None:
        raise Held(f"order_not_synced: {ret.order_external_id} is not in the ERP yet")
    items = ctx.store.xref_map("erp", "item", [ln.sku for ln in ret.lines])

    def item_code_of(sku: str) -> str | None:
        if sku in items:
            return items[sku].internal_id
        found = ctx.erp.find_item_by_sku(sku)
        return erp_map.item_code(found) if found else None

    payload = erp_map.return_to_erp(ret, so.internal_id, item_code_of)
    key = f"return:{ret.rma}"
    result = idempotent_write(
        ctx, key=key, entity=ENTITY, external_id=ret.rma, operation="create_return", payload=payload,
        write=lambda: ctx.erp.create_return(payload, idempotency_key=key),
        ref_of=erp_map.rma_no, lookup=lambda: ctx.erp.find_return(ret.rma),
    )
    ctx.store.upsert_xref("erp", "return", ret.rma, result.ref)
    _update_store(ctx, ret.rma, sf_map.return_update_to_storefront("open", erp_reference=result.ref),
                  f"return:{ret.rma}:opened")
    ctx.log.info("return %s -> ERP %s", ret.rma, result.ref)
    return "opened"


def _update_store(ctx: FlowContext, rid: str, payload: dict[str, Any], key: str) -> None:
    idempotent_write(
        ctx, key=key, entity=ENTITY, external_id=rid, operation="update_return", payload=payload,
        write=lambda: ctx.storefront.update_return(rid, payload, idempotency_key=key),
        ref_of=lambda rec: str(rec.get("id") or rid), system="storefront",
    )


# --------------------------------------------------------------------------- ERP -> store


def back_to_store(ctx: FlowContext, rma: dict[str, Any], source: str, checks: list[dict[str, Any]]) -> str | None:
    erp_map, sf_map = erp_mapping(ctx.erp), storefront_mapping(ctx.storefront)
    rma_no = erp_map.rma_no(rma)
    x = ctx.store.get_xref_by_internal("erp", "return", rma_no)
    if x is None:
        return None  # opened in the ERP, not by us: nothing in the store to update
    rid = x.external_id
    credited = erp_map.return_from_erp(rma, _sku_of(ctx))
    if credited.status == "rejected":
        _update_store(ctx, rid, sf_map.return_update_to_storefront("rejected"), f"return:{rid}:rejected")
        return "rejected"
    if credited.status != "credited" or not credited.credit_memo_id:
        return None
    memo_no = credited.credit_memo_id
    key = f"refund:{rid}:{memo_no}"
    done = ctx.store.ledger_get(key)
    if done is not None and done.status == "done":
        return None  # refunded and checked by an earlier run
    _update_store(ctx, rid, sf_map.return_update_to_storefront("credited", credited=credited),
                  f"return:{rid}:credited:{memo_no}")
    amount = credited.credit_memo_amount if source == "credit_memo" else None
    payload = sf_map.refund_to_storefront(credited, amount)

    def lookup() -> dict[str, Any] | None:
        for r in sf_map.refunds_of(ctx.storefront.get_return(rid) or {}):
            if r.get("note") == memo_no:
                return {"refund": {"id": r["id"], "amount": str(r["amount"]), "note": memo_no}}
        return None

    idempotent_write(
        ctx, key=key, entity="refund", external_id=rid, operation="refund_return", payload=payload,
        write=lambda: ctx.storefront.refund_return(rid, payload, idempotency_key=key),
        ref_of=sf_map.refund_ref, lookup=lookup, system="storefront",
    )
    check = reconcile(ctx, rid, credited)
    checks.append({"entity": "return", "external_id": rid, "kind": check.cause, "rma": rma_no, "memo": memo_no,
                   **check.to_dict()})
    if not check.ok:
        ctx.log.warning("return %s: refund %s vs credit memo %s %s: %s (%s)", rid, check.refund, memo_no,
                        check.credit_memo, check.cause, check.detail)
    return "credited_and_refunded" if check.ok else f"refund_mismatch:{check.cause}"


def reconcile(ctx: FlowContext, rid: str, credited: Return) -> RefundCheck:
    """The store's refunds of return ``rid`` against the ERP's credit memo (``credited``, the
    RMA as canonical), to the cent."""
    sf_map = storefront_mapping(ctx.storefront)
    current = ctx.storefront.get_return(rid) or {}
    refunds = sf_map.refunds_of(current) if current else []
    refund = sum((Decimal(r["amount"]) for r in refunds), Decimal("0")) if refunds else None
    refund_currency = refunds[0].get("currency") if refunds else None
    order_id = sf_map.return_from_storefront(current).order_external_id if current else ""
    order = (ctx.storefront.get_order(order_id) if order_id else None) or {}
    credited_lines = [{"sku": ln.sku, "quantity": ln.quantity} for ln in credited.lines]
    lines = sf_map.returned_lines(order, credited_lines) if order else []
    tolerance = Decimal(str(ctx.params.get("refund_tolerance", "0")))
    return check_refund(refund=refund, credit_memo=credited.credit_memo_amount, currency=credited.currency,
                        refund_currency=refund_currency, lines=lines, tolerance=tolerance)
