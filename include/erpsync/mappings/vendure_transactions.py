"""Vendure fulfilments, returns (refunds) and erasure requests <-> canonical records.

Re-exported by ``erpsync.mappings.storefront_vendure`` (the mapping the Vendure adapter names),
where shipments_sync, returns_sync and customer_erasure find them. Raw records are those of
``erpsync.connectors.vendure``. Money is in minor units (ints).

Conventions of the Vendure side:

* **Fulfilments.** One Vendure fulfilment per shipped package (handler ``manual-fulfillment``:
  ``method`` = the carrier, ``trackingCode`` = the tracking number), moved to ``Shipped``.
  Vendure has no per-call "notify the customer" switch: its EmailPlugin (when installed) mails on
  each shipped fulfilment, and pending packages never reach the store, so the customer hears only
  of shipped ones.
* **Returns.** Vendure has no return request (RMA) entity. A return exists in Vendure as the
  *refund* the merchant records against the order lines taken back (``refundOrder`` with
  ``lines``: Vendure keeps them as ``RefundLine``s); a refund without lines (a goodwill or
  shipping refund) takes no goods back and is not a return. With a manual payment method the
  refund stays ``Pending`` until the money has gone back; a payment provider may settle it at
  once. So a store return is one refund with lines: its id is ``<order code>-R<refund id>``, its
  lines are the refund lines by SKU, its reason the refund's. Vendure keeps no return status:
  the return is ``requested`` (to be opened in the ERP; the cross-reference says whether it is)
  unless the refund failed (``rejected``).
* **Back from the ERP.** What the ERP decides is written on the order as private notes (Vendure's
  order history): ``open`` with the ERP's RMA number, ``credited`` with the credit memo and the
  dispositions, ``rejected``. The refund "comes back" by being *settled* with the credit memo
  number as its transaction id: a settled refund is the store's refund (``refunds_of``). Vendure
  cannot change a refund's amount: a pending refund whose total differs from the credit memo is
  not settled but refused (the return is held in the dead letters with both amounts) unless the
  flow lets the store's amount stand (``refund_amount=storefront``: then the reconciliation
  reports the difference).
* **Erasure requests.** Vendure has no erasure requests: a customer in the customer group
  ``erasure-requested`` (the shop adds them when the person asks) is a pending request;
  completing it moves the customer to ``erasure-done`` with a private note naming the ERP
  customers anonymised (no personal data). Erasing the customer in Vendure itself stays the
  shop's decision (``deleteCustomer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from erpsync.connectors.vendure import ERASURE_DONE as ERASURE_DONE
from erpsync.connectors.vendure import ERASURE_REQUESTED as ERASURE_REQUESTED
from erpsync.connectors.vendure import return_id as _return_id
from erpsync.errors import MappingError
from erpsync.mappings.engine import RuleViolation, currency, timestamp
from erpsync.model import ModelError, Package, Return, ReturnLine
from erpsync.rules.refunds import ReturnedLine

Raw = Mapping[str, Any]
CENT = Decimal("100")


def _minor(value: Any, record: str, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(record, field, "minor_units", value)
    return Decimal(value) / CENT


def to_minor(value: Decimal) -> int:
    cents = value * CENT
    if cents != cents.to_integral_value():
        raise ValueError(f"{value} has more than two decimals")
    return int(cents)


# --------------------------------------------------------------------------- fulfilments


def fulfillment_to_storefront(p: Package, *, notify: bool = True) -> dict[str, Any]:
    """The fulfilment of one shipped package (``VendureStorefrontAdapter.add_fulfillment``);
    ``notify`` is Vendure's to decide (see the module's conventions)."""
    return {"tracking_code": p.tracking_number, "carrier": p.carrier,
            "lines": [{"sku": ln.sku, "quantity": ln.quantity} for ln in p.lines], "state": "Shipped"}


def find_fulfillment(order_raw: Raw | None, tracking: str) -> Raw | None:
    for f in (order_raw or {}).get("fulfillments") or []:
        if f.get("trackingCode") == tracking:
            return f
    return None


def fulfillment_ref(rec: Raw) -> str:
    return str(rec.get("id") or "")


# --------------------------------------------------------------------------- returns (refunds with lines)


def return_id(raw: Raw) -> str:
    """``<order code>-R<refund id>`` (``erpsync.connectors.vendure.return_id``)."""
    return _return_id(str((raw.get("order") or {}).get("code", "?")), str(raw.get("id", "?")))


def changed_at(raw: Raw) -> str | None:
    value = raw.get("updatedAt")
    return str(value) if value else None


def return_from_storefront(raw: Raw) -> Return:
    """A refund with lines as the store's return (see the module's conventions)."""
    rid = return_id(raw)
    record = f"vendure return {rid}"
    order = raw.get("order") or {}
    if not order.get("code"):
        raise MappingError(record, "order.code", "required", None)
    try:
        code = currency(order.get("currencyCode"))
    except RuleViolation:
        raise MappingError(record, "order.currencyCode", "iso4217", order.get("currencyCode")) from None
    skus = {str(ln.get("id")): (ln.get("productVariant") or {}).get("sku") for ln in order.get("lines") or []}
    lines = []
    for n, ln in enumerate(raw.get("lines") or []):
        sku = skus.get(str(ln.get("orderLineId")))
        if not sku:
            raise MappingError(record, f"lines[{n}].orderLineId", "order_line", ln.get("orderLineId"))
        qty = ln.get("quantity")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise MappingError(record, f"lines[{n}].quantity", "quantity", qty)
        lines.append(ReturnLine(sku=str(sku), quantity=qty, reason=str(raw.get("reason") or "unspecified")))
    if not lines:
        raise MappingError(record, "lines", "required", [])
    state = raw.get("state")
    refunded = _minor(raw.get("total"), record, "total") if state == "Settled" else None
    try:
        return Return(rma=rid, order_external_id=str(order["code"]), lines=lines, currency=code,
                      status="rejected" if state == "Failed" else "requested", refund_amount=refunded,
                      updated_at=timestamp(raw["updatedAt"]) if raw.get("updatedAt") else None)
    except (ModelError, RuleViolation) as exc:
        raise MappingError(record, "<record>", "model", str(exc)) from exc


def refunds_of(raw: Raw) -> list[dict[str, Any]]:
    """The money the store has paid back for the return: its refund once settled."""
    if not raw or raw.get("state") != "Settled":
        return []
    record = f"vendure return {return_id(raw)}"
    return [{"id": str(raw.get("id")), "amount": _minor(raw.get("total"), record, "total"),
             "currency": (raw.get("order") or {}).get("currencyCode"), "note": raw.get("transactionId")}]


def returned_lines(order_raw: Raw, lines: list[dict[str, Any]]) -> list[ReturnedLine]:
    """The refund check's view of the returned lines, priced from the Vendure order."""
    by_sku = {(ln.get("productVariant") or {}).get("sku"): ln for ln in order_raw.get("lines") or []}
    record = f"vendure order {order_raw.get('code', '?')}"
    out = []
    for ln in lines:
        o = by_sku.get(ln["sku"])
        if o is None:
            continue
        tax = (o.get("linePriceWithTax") or 0) - (o.get("linePrice") or 0)
        out.append(ReturnedLine(
            sku=ln["sku"], unit_price=_minor(o.get("unitPrice"), record, "unitPrice"), ordered_qty=int(o["quantity"]),
            returned_qty=int(ln["quantity"]),
            line_discount=-sum((Decimal(d.get("amount") or 0) for d in o.get("discounts") or []), Decimal(0)) / CENT,
            line_tax=Decimal(tax) / CENT,
            tax_rate=sum((Decimal(str(t.get("taxRate") or 0)) for t in o.get("taxLines") or []), Decimal(0)) / CENT,
        ))
    return out


def return_update_to_storefront(status: str, *, erp_reference: str | None = None,
                                credited: Return | None = None) -> dict[str, Any]:
    """The private order note of what the ERP did with the return."""
    if status == "open":
        note = f"opened in the ERP as {erp_reference}"
    elif status == "credited" and credited is not None:
        disp = ", ".join(f"{ln.sku} x{ln.quantity} {ln.disposition}" for ln in credited.lines)
        note = (f"credited by the ERP: credit memo {credited.credit_memo_id} {credited.credit_memo_amount} "
                f"{credited.currency}" + (f"; {disp}" if disp else ""))
    elif status == "rejected":
        note = "rejected by the ERP: its refund is not settled (cancel it in Vendure)"
    else:
        note = status
    return {"status": status, "note": note}


def refund_to_storefront(credited: Return, amount: Decimal | None) -> dict[str, Any]:
    """Settle the return's refund with the credit memo as its transaction id; ``amount`` (the
    memo's) must then be the refund's total, None lets the store's amount stand."""
    return {"transaction_id": credited.credit_memo_id, "currency": credited.currency,
            "amount": None if amount is None else to_minor(amount)}


def refund_ref(rec: Raw) -> str:
    return str((rec.get("refund") or {}).get("id") or "")


# --------------------------------------------------------------------------- erasure requests


def erasure_request(raw: Raw) -> dict[str, Any]:
    """A customer of the group ``erasure-requested`` as an erasure request (its id: the customer's)."""
    return {"id": str(raw.get("id")), "customer_id": str(raw.get("id")), "email": raw.get("emailAddress"),
            "requested_at": None}
