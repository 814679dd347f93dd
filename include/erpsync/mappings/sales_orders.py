"""ERP sales orders as orders_reconciliation compares them (re-exported as ``sales_order_summary``
by each ERP's mapping module, so the reconciliation reads every ERP through its own mapping).

A summary is ``{"ref", "order_no", "placed_on", "currency", "total", "tax", "confirmed"}``: the
store order id the sale carries (None: none), the ERP's number, the day the order was placed
(UTC), its currency, total and tax (Decimal), and whether the ERP has confirmed it (None: the ERP
has no such state to check). A record that cannot be read raises MappingError naming the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import MappingError

Raw = Mapping[str, Any]
ZERO = Decimal("0")
#: Tryton sale states in which the sale will be delivered and invoiced
TRYTON_CONFIRMED = ("confirmed", "processing", "done")


def _money(value: Any, record: str, field: str) -> Decimal:
    try:
        d = Decimal(str(value if value is not None else "0"))
    except (InvalidOperation, ValueError):
        raise MappingError(record, field, "decimal", value) from None
    if not d.is_finite():
        raise MappingError(record, field, "decimal", value)
    return d


def _day(value: Any, record: str, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value or "")
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(record, field, "date", value) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).date()


def _text(value: Any, record: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise MappingError(record, field, "text", value)
    return value


def sandbox_sales_order(raw: Raw) -> dict[str, Any]:
    """A sandbox ERP sales order: ``external_ref``, ``order_no``, ``order_date``, ``currency``,
    ``total``, taxes on the order and on its lines. The sandbox books every order it accepts
    (``confirmed`` None: nothing to check)."""
    record = f"erp sales order {raw.get('order_no', '?')}"
    order_no = _text(raw.get("order_no"), record, "order_no")
    tax = sum((_money(t.get("amount"), record, "taxes.amount") for t in raw.get("taxes") or []), ZERO)
    tax += sum((_money(t.get("amount"), record, "lines.taxes.amount")
                for ln in raw.get("lines") or [] for t in ln.get("taxes") or []), ZERO)
    ref = raw.get("external_ref")
    return {"ref": str(ref) if ref else None, "order_no": order_no,
            "placed_on": _day(raw.get("order_date"), record, "order_date"),
            "currency": _text(raw.get("currency"), record, "currency"),
            "total": _money(raw.get("total"), record, "total"), "tax": tax, "confirmed": None}


def tryton_sales_order(raw: Raw) -> dict[str, Any]:
    """A Tryton ``sale.sale``: ``reference`` (the store order id orders_sync writes), ``number``
    (None until quoted: then its id), ``sale_date``, ``currency.code``, ``total_amount``,
    ``tax_amount``; confirmed when its state is confirmed, processing or done (a draft or quotation
    left by a failed confirm, or a cancelled sale, is not)."""
    record = f"tryton sale {raw.get('number') or raw.get('id', '?')}"
    ref = raw.get("reference")
    return {"ref": str(ref) if ref else None, "order_no": str(raw.get("number") or f"id {raw.get('id', '?')}"),
            "placed_on": _day(raw.get("sale_date") or raw.get("create_date"), record, "sale_date"),
            "currency": _text(raw.get("currency.code"), record, "currency.code"),
            "total": _money(raw.get("total_amount"), record, "total_amount"),
            "tax": _money(raw.get("tax_amount"), record, "tax_amount"),
            "confirmed": raw.get("state") in TRYTON_CONFIRMED, "state": raw.get("state")}
