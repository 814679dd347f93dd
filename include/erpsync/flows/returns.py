"""returns_sync: store returns -> ERP RMAs; status, dispositions, credit memo and refund back; checked.

One run does both directions:

1. **Store -> ERP.** Returns the store opened (changed since the cursor ``store``) become ERP RMAs
   on the synced sales order, by item code, exactly once (ledger ``return:<id>``, look-up by the
   RMA's ``external_ref``); the store's return shows ``open`` and the RMA number.
2. **ERP -> store.** RMAs changed since the cursor ``erp``: a rejected one rejects the store's
   return; a credited one sends its dispositions and credit memo to the store and refunds the
   credited lines there, once (ledger ``refund:<id>:<memo>``). Param ``refund_amount``:
   ``credit_memo`` (default) refunds exactly the memo's amount, ``storefront`` lets the store
   compute its own refund for the lines.
3. **The check.** Every return with both a refund and a credit memo is compared to the cent
   (``erpsync.rules.refunds.check_refund``); each difference is logged, counted
   (``refund_mismatch:<cause>``) and kept in a drift report with its cause: a rounding
   difference names the two rounding conventions that produce both amounts.

Restocked units are put back on hand by the ERP when it receives them; inventory_sync picks the
changed stock records up by their ``modified_at`` like any other stock change.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

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
from erpsync.mappings.returns import (
    credit_memo_amount,
    dispositions,
    money_str,
    refund_lines,
    return_from_storefront,
    return_to_erp,
    returned_lines,
)
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
    checks: list[dict[str, Any]] = []
    to_store, to_erp = CursorTracker(), CursorTracker()
    try:
        # each direction reads its own slice (base.read_window): a backfill exactly its interval
        open_returns(ctx, ctx.storefront.list_returns(**window_kwargs(*read_window(ctx, "store", from_start=True))),
                     summary, tracker=to_store)
        for rma in ctx.erp.list_returns(**window_kwargs(*read_window(ctx, "erp", from_start=True))):
            to_erp.see({"updated_at": rma.get("modified_at")})
            rid = str(rma.get("external_ref") or rma.get("rma_no") or "?")
            _one(ctx, summary, rid, rma, lambda rma=rma: back_to_store(ctx, rma, source, checks))
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
    """Store -> ERP, the path of the live runs and the historical migration: each requested return
    becomes an RMA once; what cannot go is dead-lettered."""
    for raw in records:
        if tracker is not None:
            tracker.see(raw)
        _one(ctx, summary, str(raw.get("id") or "?"), raw, lambda raw=raw: open_in_erp(ctx, raw))


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


# --------------------------------------------------------------------------- store -> ERP


def open_in_erp(ctx: FlowContext, raw: dict[str, Any]) -> str | None:
    ret = return_from_storefront(raw)
    if ret.status != "requested" or ctx.store.get_xref("erp", "return", ret.rma) is not None:
        return None
    so = ctx.store.get_xref("erp", "sales_order", ret.order_external_id)
    if so is None:
        raise Held(f"order_not_synced: {ret.order_external_id} is not in the ERP yet")
    items = ctx.store.xref_map("erp", "item", [ln.sku for ln in ret.lines])

    def item_code_of(sku: str) -> str | None:
        if sku in items:
            return items[sku].internal_id
        found = ctx.erp.find_item_by_sku(sku)
        return str(found["item_code"]) if found and found.get("item_code") else None

    payload = return_to_erp(ret, so.internal_id, item_code_of)
    key = f"return:{ret.rma}"
    result = idempotent_write(
        ctx, key=key, entity=ENTITY, external_id=ret.rma, operation="create_return", payload=payload,
        write=lambda: ctx.erp.create_return(payload, idempotency_key=key),
        ref_of=lambda rec: str(rec["rma_no"]), lookup=lambda: ctx.erp.find_return(ret.rma),
    )
    ctx.store.upsert_xref("erp", "return", ret.rma, result.ref)
    _update_store(ctx, ret.rma, {"status": "open", "erp_reference": result.ref}, f"return:{ret.rma}:opened")
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
    rma_no = str(rma.get("rma_no") or "")
    x = ctx.store.get_xref_by_internal("erp", "return", rma_no)
    if x is None:
        return None  # opened in the ERP, not by us: nothing in the store to update
    rid = x.external_id
    status = rma.get("status")
    if status == "rejected":
        _update_store(ctx, rid, {"status": "rejected"}, f"return:{rid}:rejected")
        return "rejected"
    memo = rma.get("credit_memo") or {}
    if status != "credited" or not memo.get("memo_no"):
        return None
    cache: dict[str, str | None] = {}

    def sku_of(code: str) -> str | None:
        if code not in cache:
            ref = ctx.store.get_xref_by_internal("erp", "item", code)
            cache[code] = ref.external_id if ref is not None else None
        return cache[code]

    memo_no = str(memo["memo_no"])
    _update_store(ctx, rid, {"status": "credited", "dispositions": dispositions(rma, sku_of),
                             "credit_memo": {"memo_no": memo_no, "amount": memo.get("amount")}},
                  f"return:{rid}:credited:{memo_no}")
    lines = refund_lines(rma, sku_of)
    payload: dict[str, Any] = {"line_items": lines, "currency": rma.get("currency"), "note": memo_no}
    memo_amount = credit_memo_amount(rma)
    if source == "credit_memo" and memo_amount is not None:
        payload["amount"] = money_str(memo_amount)
    key = f"refund:{rid}:{memo_no}"

    def lookup() -> dict[str, Any] | None:
        current = ctx.storefront.get_return(rid) or {}
        for r in current.get("refunds") or []:
            if r.get("note") == memo_no:
                return {"refund": r}
        return None

    idempotent_write(
        ctx, key=key, entity="refund", external_id=rid, operation="refund_return", payload=payload,
        write=lambda: ctx.storefront.refund_return(rid, payload, idempotency_key=key),
        ref_of=lambda rec: str((rec.get("refund") or {}).get("id") or ""), lookup=lookup, system="storefront",
    )
    check = reconcile(ctx, rid, rma)
    checks.append({"entity": "return", "external_id": rid, "kind": check.cause, "rma": rma_no, "memo": memo_no,
                   **check.to_dict()})
    if not check.ok:
        ctx.log.warning("return %s: refund %s vs credit memo %s %s: %s (%s)", rid, check.refund, memo_no,
                        check.credit_memo, check.cause, check.detail)
    return "credited_and_refunded" if check.ok else f"refund_mismatch:{check.cause}"


def reconcile(ctx: FlowContext, rid: str, rma: dict[str, Any]) -> RefundCheck:
    """The store's refunds of return ``rid`` against the ERP credit memo of ``rma``, to the cent."""
    current = ctx.storefront.get_return(rid) or {}
    refunds = current.get("refunds") or []
    refund = sum((Decimal(str(r["amount"])) for r in refunds), Decimal("0")) if refunds else None
    refund_currency = refunds[0].get("currency") if refunds else None
    order = ctx.storefront.get_order(str(current.get("order_id") or "")) or {}
    cache: dict[str, str | None] = {}

    def sku_of(code: str) -> str | None:
        if code not in cache:
            ref = ctx.store.get_xref_by_internal("erp", "item", code)
            cache[code] = ref.external_id if ref is not None else None
        return cache[code]

    lines = returned_lines(order, refund_lines(rma, sku_of)) if order else []
    tolerance = Decimal(str(ctx.params.get("refund_tolerance", "0")))
    return check_refund(refund=refund, credit_memo=credit_memo_amount(rma), currency=str(rma.get("currency")),
                        refund_currency=refund_currency, lines=lines, tolerance=tolerance)
