"""Returns: storefront return (RMA request) <-> canonical Return <-> sandbox ERP RMA and credit memo.

The store opens a return by SKU; the ERP's RMA names item codes and the sales order. What comes
back from the ERP (status, each line's disposition, the credit memo) is mapped onto the same
canonical Return (``return_from_erp``) so the refund check compares like with like.

The ERP-side functions (``return_to_erp``, ``return_from_erp``, ``rma_no``) are re-exported by
``erp_sandbox``, the storefront-side ones (``return_from_storefront``, ``refunds_of``,
``returned_lines``, ``return_update_to_storefront``, ``refund_to_storefront``) by
``storefront_sandbox``: returns_sync finds them through the adapters, like the Tryton and
Vendure ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from erpsync.errors import MappingError
from erpsync.mappings.engine import (
    F,
    Many,
    RuleViolation,
    amount,
    apply_spec,
    build,
    currency,
    dec_str,
    quantity,
    text,
    timestamp,
)
from erpsync.model import Return, ReturnLine
from erpsync.rules.refunds import ReturnedLine

Raw = Mapping[str, Any]

RETURN_LINE: list[F] = [
    F("sku", "sku", text, required=True),
    F("quantity", "quantity", quantity, required=True),
    F("reason", "reason", text, default="unspecified"),
    F("disposition", "disposition", text, default="pending"),
]

RETURN: list[F] = [
    F("rma", "id", text, required=True),
    F("order_external_id", "order_id", text, required=True),
    F("currency", "currency", currency, required=True),
    F("status", "status", text, required=True),
    F("lines", "line_items", Many(RETURN_LINE, ReturnLine, id_field="sku"), required=True),
    F("updated_at", "updated_at", timestamp),
    F("refund_amount", "refunds", lambda refunds: _refund_total(refunds), nullable=True),
]


def _refund_total(refunds: Any) -> Decimal | None:
    """The transform of ``refunds``: their sum, None when there is none yet; refunds that are not
    a list of objects, or an amount that is no money, break a rule (a MappingError naming ``refunds``)."""
    if not isinstance(refunds, list) or not all(isinstance(r, Mapping) for r in refunds):
        raise RuleViolation("refunds")
    return refunded({"refunds": refunds})


def refunded(raw: Raw) -> Decimal | None:
    """Sum of the store's refunds of this return; None when there is none yet."""
    refunds = raw.get("refunds") or []
    if not refunds:
        return None
    return sum((amount(r.get("amount")) for r in refunds), Decimal("0"))


def return_from_storefront(raw: Raw) -> Return:
    record = f"storefront return {raw.get('id', '?')}"
    ret = build(Return, apply_spec(RETURN, raw, record), record)
    if not ret.lines:
        raise MappingError(record, "line_items", "required", [])
    return ret


def coded_lines(ret: Return, item_code_of: Callable[[str], str | None]) -> list[tuple[str, Any]]:
    """(ERP item code, line) of each returned line; a SKU without an item code fails the return,
    naming the line (every ERP's return payload is built from these)."""
    out = []
    for n, ln in enumerate(ret.lines):
        code = item_code_of(ln.sku)
        if not code:
            raise MappingError(f"return {ret.rma}", f"lines[{n}].item_code", "item_xref", ln.sku)
        out.append((code, ln))
    return out


def return_to_erp(ret: Return, order_no: str, item_code_of: Callable[[str], str | None]) -> dict[str, Any]:
    """Create payload of an ERP RMA; the storefront return id is its ``external_ref``."""
    lines = [{"item_code": code, "qty": ln.quantity, "reason": ln.reason} for code, ln in coded_lines(ret, item_code_of)]
    return {"external_ref": ret.rma, "order_no": order_no, "currency": ret.currency, "lines": lines}


def rma_no(erp_rma: Raw) -> str:
    """The ERP's number of an RMA (its cross-reference binds the store return)."""
    return str(erp_rma.get("rma_no") or "?")


#: sandbox RMA status -> canonical return status
ERP_STATUS = {"open": "open", "received": "received", "credited": "credited", "rejected": "rejected"}


def return_from_erp(erp_rma: Raw, sku_of: Callable[[str], str | None]) -> Return:
    """An ERP RMA as canonical: ``rma`` the store return id it carries (``external_ref``),
    ``order_external_id`` the ERP sales order, the credited lines (the RMA's lines until it is
    credited) with each line's disposition, and the credit memo."""
    record = f"erp return {erp_rma.get('rma_no', '?')}"
    if not erp_rma.get("rma_no"):
        raise MappingError(record, "rma_no", "required", None)
    status = ERP_STATUS.get(str(erp_rma.get("status") or ""))
    if status is None:
        raise MappingError(record, "status", "rma_status", erp_rma.get("status"))
    memo = erp_rma.get("credit_memo") if isinstance(erp_rma.get("credit_memo"), Mapping) else None
    if memo is None and erp_rma.get("credit_memo"):  # a memo the RMA has but that cannot be read: never skipped
        raise MappingError(record, "credit_memo", "object", erp_rma.get("credit_memo"))
    rma_lines = {str(ln.get("item_code") or ""): ln for ln in erp_rma.get("lines") or [] if isinstance(ln, Mapping)}
    source = memo.get("lines") if memo else erp_rma.get("lines")
    lines = []
    for n, ln in enumerate(source or []):
        if not isinstance(ln, Mapping):
            raise MappingError(record, f"lines[{n}]", "object", ln)
        code = str(ln.get("item_code") or "")
        sku = sku_of(code)
        if not sku:
            raise MappingError(record, f"lines[{n}].item_code", "item_xref", code)
        rl = rma_lines.get(code) or {}
        kw = apply_spec([F("quantity", "qty", quantity, required=True)], ln, f"{record}/{code}")
        lines.append(ReturnLine(sku=sku, quantity=kw["quantity"], reason=str(rl.get("reason") or "unspecified"),
                                disposition=str(rl.get("disposition") or "pending")))
    kw = apply_spec([
        F("currency", "currency", currency, required=True),
        F("credit_memo_amount", "credit_memo.amount", amount, nullable=True),
        F("credit_memo_id", "credit_memo.memo_no", text, nullable=True),
        F("updated_at", "modified_at", timestamp),
    ], erp_rma, record)
    return build(Return, {"rma": str(erp_rma.get("external_ref") or ""), "order_external_id": str(
        erp_rma.get("order_no") or ""), "lines": lines, "status": status, **kw}, record)


def credit_memo_amount(erp_rma: Raw) -> Decimal | None:
    memo = erp_rma.get("credit_memo")
    return amount(memo["amount"]) if isinstance(memo, Mapping) and memo.get("amount") is not None else None


def dispositions(erp_rma: Raw, sku_of: Callable[[str], str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for ln in erp_rma.get("lines") or []:
        sku = sku_of(str(ln.get("item_code") or ""))
        if sku and ln.get("disposition"):
            out[sku] = str(ln["disposition"])
    return out


def refund_lines(erp_rma: Raw, sku_of: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """What to refund in the store: the credited lines, by SKU."""
    record = f"erp return {erp_rma.get('rma_no', '?')}"
    memo = erp_rma.get("credit_memo") or {}
    out = []
    for ln in memo.get("lines") or []:
        sku = sku_of(str(ln.get("item_code") or ""))
        if not sku:
            raise MappingError(record, "credit_memo.lines.item_code", "item_xref", ln.get("item_code"))
        out.append({"sku": sku, "quantity": int(ln["qty"])})
    return out


def returned_lines(order_raw: Raw, lines: list[dict[str, Any]]) -> list[ReturnedLine]:
    """The refund check's view of the returned lines, priced from the storefront order."""
    by_sku = {ln["sku"]: ln for ln in order_raw.get("line_items") or []}
    out = []
    for ln in lines:
        o = by_sku.get(ln["sku"])
        if o is None:
            continue
        taxes = o.get("tax_lines") or []
        out.append(ReturnedLine(
            sku=ln["sku"], unit_price=amount(o["price"]), ordered_qty=int(o["quantity"]), returned_qty=int(ln["quantity"]),
            line_discount=amount(o.get("total_discount") or "0"),
            line_tax=sum((amount(t.get("price") or "0") for t in taxes), Decimal("0")),
            tax_rate=sum((amount(t.get("rate") or "0") for t in taxes), Decimal("0")),
        ))
    return out


def money_str(value: Decimal) -> str:
    return dec_str(value)


# --------------------------------------------------------------------------- canonical -> sandbox store


def return_id(raw: Raw) -> str:
    """The store's id of a return (the RMA's reference in the ERP)."""
    return str(raw.get("id") or "?")


def refunds_of(raw: Raw) -> list[dict[str, Any]]:
    """The store's refunds of a return: ``{"id", "amount" (Decimal), "currency", "note"}`` each
    (``note`` carries the credit memo number the refund was made for)."""
    return [{"id": str(r.get("id") or ""), "amount": amount(r.get("amount")), "currency": r.get("currency"),
             "note": r.get("note")} for r in raw.get("refunds") or []]


def return_update_to_storefront(status: str, *, erp_reference: str | None = None,
                                credited: Return | None = None) -> dict[str, Any]:
    """What the store's return shows: its status, the ERP's RMA number, and once credited each
    line's disposition and the credit memo."""
    payload: dict[str, Any] = {"status": status}
    if erp_reference:
        payload["erp_reference"] = erp_reference
    if credited is not None:
        payload["dispositions"] = {ln.sku: ln.disposition for ln in credited.lines if ln.disposition != "pending"}
        payload["credit_memo"] = {"memo_no": credited.credit_memo_id, "amount": None if credited.credit_memo_amount
                                  is None else money_str(credited.credit_memo_amount)}
    return payload


def refund_to_storefront(credited: Return, amount: Decimal | None) -> dict[str, Any]:
    """The refund of the credited lines; ``amount`` None lets the store compute it from the lines."""
    payload: dict[str, Any] = {"line_items": [{"sku": ln.sku, "quantity": ln.quantity} for ln in credited.lines],
                               "currency": credited.currency, "note": credited.credit_memo_id}
    if amount is not None:
        payload["amount"] = money_str(amount)
    return payload


def refund_ref(rec: Raw) -> str:
    """The store's id of a refund in a ``refund_return`` answer."""
    return str((rec.get("refund") or {}).get("id") or "")
