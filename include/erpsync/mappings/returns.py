"""Returns: storefront return (RMA request) <-> canonical Return <-> sandbox ERP RMA and credit memo.

The store opens a return by SKU; the ERP's RMA names item codes and the sales order. What comes
back from the ERP (status, each line's disposition, the credit memo) is mapped onto the same
canonical Return so the refund check compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from erpsync.errors import MappingError
from erpsync.mappings.engine import (
    F,
    Many,
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
    F("refund_amount", lambda raw: refunded(raw), None, nullable=True),
]


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


def return_to_erp(ret: Return, order_no: str, item_code_of: Callable[[str], str | None]) -> dict[str, Any]:
    """Create payload of an ERP RMA; the storefront return id is its ``external_ref``."""
    record = f"return {ret.rma}"
    lines = []
    for n, ln in enumerate(ret.lines):
        code = item_code_of(ln.sku)
        if not code:
            raise MappingError(record, f"lines[{n}].item_code", "item_xref", ln.sku)
        lines.append({"item_code": code, "qty": ln.quantity, "reason": ln.reason})
    return {"external_ref": ret.rma, "order_no": order_no, "currency": ret.currency, "lines": lines}


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
