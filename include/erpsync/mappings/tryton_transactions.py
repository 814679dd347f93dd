"""Tryton customer shipments and return sales <-> canonical Shipment and Return.

Re-exported by ``erpsync.mappings.erp_tryton`` (the mapping the Tryton adapter names), where
shipments_sync and returns_sync find them. Raw records are those of
``erpsync.connectors.tryton`` (``list_shipments``, ``list_returns``, ``find_return``).

Conventions of the Tryton side:

* **Shipments.** A customer shipment (``stock.shipment.out``) reaches the store when Tryton has
  shipped it (state ``shipped`` or ``done``); before that it is pending and waits. A shipment is
  one package carrying its ``shipping_reference`` (the tracking number) and its carrier, unless
  the warehouse packed it into ``stock.package`` records (module stock_package_shipping): then
  each package with moves is one package with its own tracking number (the shipment's when it
  has none). A shipped package without a tracking number is a MappingError (``required``): the
  store would tell the customer nothing; adding the reference in Tryton sends it on the next run.
  A partial shipment is what Tryton makes of a pick of fewer units: the shipment carries what
  was picked and Tryton creates a back-order shipment for the rest, which comes in its turn.
* **Items.** A product's code is its SKU (the catalog's convention): an item code not bound in
  the cross-reference is taken as the SKU.
* **Returns.** An RMA is a *return sale*, as Tryton's own "Return Sale" wizard makes it: a sale
  with negative lines, priced like the sold lines, whose ``origin`` is the sold sale and whose
  ``reference`` is the store return id; confirming it creates the return shipment
  (``stock.shipment.out.return``). The return is ``open`` until its goods arrive, ``received``
  while some of its return shipments are done, ``credited`` when all are done, ``rejected`` when
  the return sale is cancelled. Each line's disposition is where its received goods went
  (storage: ``restock``; lost and found: ``scrap``).
* **Credit memo.** With a chart of accounts Tryton invoices the return sale as a credit note;
  the posted credit notes are the memo (number and total). The test ERP has no chart of
  accounts (sales invoice manually), so there the credited return sale itself is the memo: its
  number and its total (the negated sum of its lines).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from erpsync.errors import MappingError
from erpsync.mappings.engine import amount, currency, timestamp
from erpsync.mappings.erp_shipments import carrier_name
from erpsync.mappings.returns import coded_lines
from erpsync.model import ModelError, Package, Return, ReturnLine, Shipment, ShipmentLine

Raw = Mapping[str, Any]
SkuOf = Callable[[str], str | None]

#: Tryton shipment states before the carrier has the goods
PENDING_STATES = ("draft", "waiting", "assigned", "picked", "packed")
SHIPPED_STATES = ("shipped", "done")
#: where a return's received goods went (the inventory move's destination type) -> disposition
DISPOSITIONS = {"storage": "restock", "lost_found": "scrap"}


def changed_at(raw: Raw) -> str | None:
    """A Tryton record's last change (``write_date`` is null until the first write)."""
    value = raw.get("write_date") or raw.get("create_date")
    return str(value) if value else None


def _time(value: Any, record: str, field: str) -> Any:
    if not value:
        return None
    try:
        return timestamp(value)
    except ValueError:
        raise MappingError(record, field, "iso8601", value) from None


def _quantity(value: Any, record: str, field: str) -> int:
    q = Decimal(str(value if value is not None else 0))
    if q != q.to_integral_value():
        raise MappingError(record, field, "whole_quantity", value)
    return int(q)


# --------------------------------------------------------------------------- shipments


def shipment_no(raw: Raw) -> str:
    return str(raw.get("number") or raw.get("id") or "?")


def shipment_order_no(raw: Raw) -> str | None:
    """The sold sale's number (its cross-reference names the store order)."""
    return str(raw["sale_number"]) if raw.get("sale_number") else None


def _packages(raw: Raw) -> list[Raw]:
    """The shipment's packages with moves, or the shipment itself as its one package."""
    packed = [p for p in raw.get("packages") or [] if p.get("moves")]
    return packed or [raw]


def shipped_packages(raw: Raw) -> list[Raw]:
    return _packages(raw) if raw.get("state") in SHIPPED_STATES else []


def shipment_done(raw: Raw) -> bool:
    """Tryton shipped (or finished) the shipment (one without packages is a dead letter)."""
    return raw.get("state") in SHIPPED_STATES


def pending_packages(raw: Raw) -> int:
    return len(_packages(raw)) if raw.get("state") in PENDING_STATES else 0


def shipment_from_erp(raw: Raw, sku_of: SkuOf | None = None, *, order_ref: str | None = None) -> Shipment:
    """A Tryton customer shipment with its shipped packages (none before Tryton ships it)."""
    record = f"tryton shipment {raw.get('number', '?')}"
    if not raw.get("number"):
        raise MappingError(record, "number", "required", None)
    order = order_ref or raw.get("sale_reference")
    if not order:
        raise MappingError(record, "sale_reference", "required", None)
    moves = {m.get("id"): m for m in raw.get("outgoing_moves") or [] if m.get("state") != "cancelled"}
    carrier = carrier_name(str(raw.get("carrier.party.name") or ""))
    shipped = raw.get("effective_date")
    packages = []
    for n, pkg in enumerate(shipped_packages(raw)):
        tracking = str(pkg.get("shipping_reference") or raw.get("shipping_reference") or "").strip()
        where = "shipping_reference" if pkg is raw else f"packages[{n}].shipping_reference"
        if not tracking:
            raise MappingError(record, where, "required", None)
        in_package = moves.values() if pkg is raw else [moves[i] for i in pkg.get("moves") or [] if i in moves]
        lines = []
        for m in in_package:
            code = str(m.get("product.code") or "")
            if not code:
                raise MappingError(record, "outgoing_moves.product.code", "required", None)
            qty = _quantity(m.get("quantity"), record, "outgoing_moves.quantity")
            if qty:
                lines.append(ShipmentLine(sku=(sku_of(code) if sku_of else None) or code, quantity=qty))
        packages.append(Package(carrier=carrier, tracking_number=tracking, lines=lines,
                                shipped_at=_time(f"{shipped}T00:00:00Z" if shipped else None, record,
                                                 "effective_date")))
    status = "shipped" if raw.get("state") in SHIPPED_STATES else (
        "cancelled" if raw.get("state") == "cancelled" else "pending")
    return Shipment(external_id=str(raw["number"]), order_external_id=str(order), packages=packages,
                    status=status, updated_at=_time(changed_at(raw), record, "write_date"))


# --------------------------------------------------------------------------- returns


def rma_no(raw: Raw) -> str:
    """The return sale's number (its cross-reference binds the store return)."""
    return str(raw.get("number") or raw.get("id") or "?")


def return_to_erp(ret: Return, order_no: str, item_code_of: Callable[[str], str | None]) -> dict[str, Any]:
    """Create payload of a return sale (``TrytonErpAdapter.create_return``); ``order_no`` is the
    sold sale's number, the store return id its ``reference``."""
    lines = [{"product": code, "quantity": ln.quantity, "description": ln.reason}
             for code, ln in coded_lines(ret, item_code_of)]
    return {"reference": ret.rma, "sale": order_no, "lines": lines}


def _status(raw: Raw) -> str:
    if raw.get("state") == "cancelled":
        return "rejected"
    ships = raw.get("return_shipments") or []
    done = [s for s in ships if s.get("state") == "done"]
    if ships and len(done) == len(ships):
        return "credited"
    return "received" if done or any(s.get("state") == "received" for s in ships) else "open"


def _dispositions(raw: Raw) -> dict[str, str]:
    out: dict[str, str] = {}
    for ship in raw.get("return_shipments") or []:
        for m in ship.get("inventory_moves") or []:
            if m.get("state") == "done" and m.get("product.code"):
                kind = str(m.get("to_location.type") or "")
                out[str(m["product.code"])] = DISPOSITIONS.get(kind, kind or "pending")
    return out


def return_from_erp(raw: Raw, sku_of: SkuOf | None = None) -> Return:
    """A Tryton return sale as canonical: ``rma`` the store return id (its reference),
    ``order_external_id`` the store order of the sold sale (else its number), the returned lines
    with their dispositions, and the credit memo once credited (see the module's conventions)."""
    record = f"tryton return sale {raw.get('number', '?')}"
    if not raw.get("number"):
        raise MappingError(record, "number", "required", None)
    try:
        code = currency(raw.get("currency.code"))
    except ValueError:
        raise MappingError(record, "currency.code", "iso4217", raw.get("currency.code")) from None
    dispositions = _dispositions(raw)
    lines = []
    for n, ln in enumerate(raw.get("lines") or []):
        if ln.get("type", "line") != "line" or not ln.get("product.code"):
            continue
        qty = _quantity(ln.get("quantity"), record, f"lines[{n}].quantity")
        if qty >= 0:
            raise MappingError(record, f"lines[{n}].quantity", "negative_on_return", ln.get("quantity"))
        item = str(ln["product.code"])
        lines.append(ReturnLine(sku=(sku_of(item) if sku_of else None) or item, quantity=-qty,
                                reason=str(ln.get("description") or "unspecified"),
                                disposition=dispositions.get(item, "pending")))
    status = _status(raw)
    memo_no, memo_amount = None, None
    notes = raw.get("credit_notes") or []
    try:
        if notes:
            memo_no = ", ".join(str(i.get("number")) for i in notes)
            memo_amount = abs(sum((amount(i.get("total_amount")) for i in notes), Decimal("0")))
        elif status == "credited":
            memo_no, memo_amount = str(raw["number"]), -amount(raw.get("total_amount"))
    except ValueError:
        raise MappingError(record, "total_amount", "money", raw.get("total_amount")) from None
    sold = raw.get("origin_sale") or {}
    updated = _time(changed_at(raw), record, "write_date")
    try:
        return Return(rma=str(raw.get("reference") or ""), order_external_id=str(
            sold.get("reference") or sold.get("number") or ""), lines=lines, currency=code, status=status,
            credit_memo_id=memo_no, credit_memo_amount=memo_amount, updated_at=updated)
    except ModelError as exc:
        raise MappingError(record, "<record>", "model", str(exc)) from exc
