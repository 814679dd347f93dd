"""Canonical records <-> Tryton (raw records of ``erpsync.connectors.tryton``).

The same functions as ``erp_sandbox`` (the flows call whichever the ERP adapter names), plus the
accessors the flows use to read a reference out of a raw record (``customer_no``, ``order_no``,
``item_code``, ``customer_external_ref``), and the mappings of the catalog, stock, shipment and
return records Tryton is the master of (shipments and return sales: ``tryton_transactions``,
re-exported here).

Conventions of the Tryton side:

* the customer number is the party ``code`` (Tryton's sequence); the storefront customer id is
  a party identifier ``store:<id>`` (``customer_external_ref``);
* a sale's ``reference`` is the storefront order id; sales invoice manually (no chart of
  accounts needed) and ship on order. Shipping is a line of the ``SHIPPING`` service product, so
  the sale's total is the order's total: each line carries the store's tax lines, which the
  adapter maps to Tryton taxes (Connection extra ``tax_map``), and Tryton's computed total is
  checked against the store's (``expected_total``) before the sale is confirmed (``tax_mismatch``);
* the sale is booked on the configured warehouse (``warehouse``: rules.orders.WarehouseConfig);
  a sale counts as done only once confirmed (``order_state``: draft and quotation are taken
  forward, a draft has no number to bind);
* a line discount is folded into the unit price (Tryton keeps 4 decimals on a unit price).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from erpsync.connectors.tryton import STORE_ID_PREFIX
from erpsync.errors import MappingError
from erpsync.mappings.engine import (
    F,
    Many,
    RuleViolation,
    amount,
    apply_spec,
    boolean,
    build,
    country,
    currency,
    dec_str,
    email,
    parse_time,
    text,
    timestamp,
)
from erpsync.mappings.refs import CatalogItem, PriceRef
from erpsync.mappings.sales_orders import tryton_sales_order as sales_order_summary  # noqa: F401 - re-exported
from erpsync.mappings.transforms import chain, uom
from erpsync.mappings.tryton_stock import item_from_erp as item_from_erp
from erpsync.mappings.tryton_stock import stock_figures as stock_figures
from erpsync.mappings.tryton_stock import stock_key as stock_key
from erpsync.mappings.tryton_stock import stock_level as stock_level
from erpsync.mappings.tryton_transactions import changed_at as changed_at
from erpsync.mappings.tryton_transactions import pending_packages as pending_packages
from erpsync.mappings.tryton_transactions import return_from_erp as return_from_erp
from erpsync.mappings.tryton_transactions import return_to_erp as return_to_erp
from erpsync.mappings.tryton_transactions import rma_no as rma_no
from erpsync.mappings.tryton_transactions import shipment_done as shipment_done
from erpsync.mappings.tryton_transactions import shipment_from_erp as shipment_from_erp
from erpsync.mappings.tryton_transactions import shipment_no as shipment_no
from erpsync.mappings.tryton_transactions import shipment_order_no as shipment_order_no
from erpsync.mappings.tryton_transactions import shipped_packages as shipped_packages
from erpsync.model import (
    Address,
    Customer,
    InventoryLevel,
    Order,
    PriceEntry,
    PriceKind,
    Product,
    Variant,
)

Raw = dict[str, Any]
SHIPPING_PRODUCT = "SHIPPING"
UNIT_PRICE_DIGITS = Decimal("0.0001")


# --------------------------------------------------------------------------- references in raw records


def customer_no(raw: Mapping[str, Any]) -> str:
    return str(raw["code"])


def customer_external_ref(raw: Mapping[str, Any]) -> str | None:
    """The storefront customer id kept on the party (identifier ``store:<id>``), if any."""
    for ident in raw.get("identifiers") or []:
        code = str(ident.get("code") or "")
        if code.startswith(STORE_ID_PREFIX):
            return code[len(STORE_ID_PREFIX):]
    return None


def order_no(raw: Mapping[str, Any]) -> str:
    """The sale's number; a sale without one (a draft: Tryton numbers a sale when it is quoted)
    has no reference to bind a store order to: MappingError, never the text \"None\"."""
    if not raw.get("number"):
        raise MappingError(f"tryton sale {raw.get('id', '?')} ({raw.get('state', '?')})", "number", "required",
                           raw.get("number"))
    return str(raw["number"])


#: sale states where the order is booked in Tryton (confirmed and after); draft and quotation are
#: a failed or interrupted try, taken forward by ``create_sales_order``
BOOKED_STATES = ("confirmed", "processing", "done")


def order_state(raw: Mapping[str, Any]) -> str:
    """``booked`` (the flow's work is done), ``resumable`` (a draft or quotation the adapter's
    create takes forward), or ``dead`` (cancelled: a person must decide)."""
    state = str(raw.get("state") or "")
    if state in BOOKED_STATES:
        return "booked"
    return "resumable" if state in ("draft", "quotation") else "dead"


def item_code(raw: Mapping[str, Any]) -> str | None:
    return raw.get("code") or None


# --------------------------------------------------------------------------- canonical -> Tryton


def customer_name(c: Customer) -> str:
    return f"{c.first_name} {c.last_name}".strip() or c.company or c.email


def address_to_erp(a: Address) -> Raw:
    street = "\n".join(x for x in (a.line1, a.line2) if x)
    return {"party_name": a.name or None, "street": street, "postal_code": a.postcode or None, "city": a.city,
            "country": a.country, "invoice": a.kind == "billing", "delivery": a.kind == "shipping"}


def customer_update_to_erp(c: Customer) -> Raw:
    """What the storefront owns: name, e-mail, phone, addresses (added, never removed)."""
    return {"name": customer_name(c), "email": c.email or None, "phone": c.phone or None,
            "addresses": [address_to_erp(a) for a in c.addresses]}


def customer_to_erp(c: Customer) -> Raw:
    """Create payload of a party; ``store_id`` lets the adapter find it again after a lost answer."""
    return {**customer_update_to_erp(c), "store_id": c.external_id}


def _unit_price(unit_price: Decimal, discount: Decimal, quantity: int) -> str:
    net = unit_price - (discount / quantity if quantity else Decimal("0"))
    return dec_str(net.quantize(UNIT_PRICE_DIGITS, rounding=ROUND_HALF_UP))


def order_to_erp(o: Order, customer_no: str) -> Raw:
    """Create payload of a Tryton sale; every line must already carry its product code."""
    record = f"order {o.external_id}"
    lines: list[Raw] = []
    for n, ln in enumerate(o.lines):
        if not ln.item_code:
            raise MappingError(record, f"lines[{n}].item_code", "item_xref", ln.sku)
        lines.append({"product": ln.item_code, "quantity": ln.quantity, "description": ln.name or ln.sku,
                      "unit_price": _unit_price(ln.unit_price, ln.discount, ln.quantity),
                      "taxes": [_tax(t) for t in ln.taxes]})
    if o.shipping_amount:
        lines.append({"product": SHIPPING_PRODUCT, "quantity": 1, "unit_price": dec_str(o.shipping_amount),
                      "description": f"Shipping {o.shipping_method}".strip(), "taxes": [_tax(t) for t in o.taxes]})
    for d in o.discounts:
        lines.append({"type": "comment", "description": f"Order discount {d.code}: -{dec_str(d.amount)}"})
    payments = ", ".join(f"{p.method} {dec_str(p.amount)} ({p.reference})" for p in o.payments)
    ship_to = o.shipping_address or o.billing_address
    return {
        "reference": o.external_id,
        "party": customer_no,
        "sale_date": o.placed_at.date().isoformat(),
        "currency": o.currency,
        "description": f"Web order {o.number}",
        "comment": f"Storefront total {dec_str(o.total)} {o.currency}" + (f"; paid: {payments}" if payments else ""),
        "shipment_address": address_to_erp(ship_to) if ship_to else None,
        "lines": lines,
        # the configured warehouse (rules.orders.WarehouseConfig) and the store's total, which
        # Tryton's computed total (its taxes) must match before the sale is confirmed
        "warehouse": o.warehouse,
        "expected_total": dec_str(o.total),
    }


def _tax(t: Any) -> Raw:
    """A store tax line; the adapter maps its code (else ``rate:<percent>``) to a Tryton tax (``tax_map``)."""
    return {"code": t.code, "rate": dec_str(t.rate), "amount": dec_str(t.amount), "jurisdiction": t.jurisdiction}


# --------------------------------------------------------------------------- Tryton -> canonical


def _email(raw: Mapping[str, Any]) -> Any:
    return next((c["value"] for c in raw.get("contact_mechanisms") or [] if c.get("type") == "email"), None)


def _phone(raw: Mapping[str, Any]) -> Any:
    return next((c["value"] for c in raw.get("contact_mechanisms") or []
                 if c.get("type") in ("phone", "mobile")), None)


def _first_name(raw: Mapping[str, Any]) -> Any:
    return (raw.get("name") or "").strip().rpartition(" ")[0] or None


def _last_name(raw: Mapping[str, Any]) -> Any:
    name = (raw.get("name") or "").strip()
    return name.rpartition(" ")[2] if " " in name else name or None


def _street_line(n: int) -> Any:
    def get(raw: Mapping[str, Any]) -> Any:
        lines = (raw.get("street") or "").splitlines()
        return lines[n] if len(lines) > n else None
    return get


ERP_ADDRESS: list[F] = [
    F("line1", _street_line(0), text, required=True),
    F("line2", _street_line(1), text),
    F("city", "city", text, required=True),
    F("postcode", "postal_code", text, default=""),
    F("country", lambda raw: raw.get("country.code"), country, required=True),  # Tryton flattens the key
    F("name", "party_name", text),
    F("kind", lambda raw: "shipping" if raw.get("delivery") and not raw.get("invoice") else "billing", text),
]

ERP_CUSTOMER: list[F] = [
    F("external_id", "code", text, required=True),
    F("email", _email, email, default=""),
    F("first_name", _first_name, text),
    F("last_name", _last_name, text),
    F("phone", _phone, text),
    F("addresses", "addresses", Many(ERP_ADDRESS, Address)),
    F("updated_at", lambda raw: raw.get("write_date") or raw.get("create_date"), timestamp),
]


def customer_from_erp(raw: Mapping[str, Any]) -> Customer:
    """A Tryton party as canonical; ``external_id`` is the party code."""
    record = f"tryton party {raw.get('code', '?')}"
    return build(Customer, apply_spec(ERP_CUSTOMER, raw, record), record)


# --------------------------------------------------------------------------- catalog and prices
# A Tryton product (``product.product``) is one sellable SKU: its ``code`` is both the item code
# and the SKU. A template with a code of its own (Tryton's prefix code) is one storefront product
# whose variants are its products; a template without one makes each product a storefront
# product of its own. A product is retired (unpublished) when it or its template is inactive.
# Tryton (with the modules erpsync uses) has one price per product: the list price, in the
# company's currency; it is a base price (price list ``LIST``, from quantity 1).

LIST_PRICE_LIST = "LIST"
#: Tryton unit symbols -> canonical units of measure (others go through ``uom``)
TRYTON_UOM = {"u": "EA", "unit": "EA"}


def _latest(*values: Any) -> str | None:
    """The latest of some ISO 8601 times (ones that do not parse are not times: left out)."""
    times: list[tuple[dt.datetime, str]] = []
    for v in values:
        try:
            times.append((parse_time(v), v))
        except RuleViolation:
            continue
    return max(times)[1] if times else None


def _changed_at(raw: Mapping[str, Any]) -> str | None:
    """The product's last change, or its template's (a template's list price is the product's)."""
    return _latest(raw.get("write_date") or raw.get("create_date"),
                   raw.get("template.write_date") or raw.get("template.create_date"))


def _template_code(raw: Mapping[str, Any]) -> str | None:
    code = raw.get("template.code")
    return code.strip() if isinstance(code, str) and code.strip() else None


def _list_price(raw: Mapping[str, Any]) -> Any:
    """A variant's own list price, else its template's (``list_price_used``)."""
    return raw.get("list_price_used") if raw.get("list_price_used") not in (None, "") else raw.get("list_price")


def _active(raw: Mapping[str, Any]) -> bool:
    return raw.get("active", True) is not False and raw.get("template.active", True) is not False


def catalog_item(raw: Mapping[str, Any]) -> CatalogItem:
    """What the flows read of a Tryton product (``erpsync.mappings.refs``)."""
    code = raw.get("code")
    code = code.strip() if isinstance(code, str) and code.strip() else None
    return CatalogItem(code=code, sku=code, template=_template_code(raw), updated_at=_changed_at(raw),
                       list_price=_list_price(raw), cost=raw.get("cost_price"), currency=raw.get("currency"),
                       active=_active(raw))


def _uom(value: Any) -> str:
    symbol = str(value).strip()
    return TRYTON_UOM.get(symbol.lower()) or uom(symbol)


def _no_spaces(value: str) -> str:
    if " " in value:
        raise RuleViolation("sku_no_spaces")
    return value


TRYTON_VARIANT: list[F] = [
    F("sku", "code", chain(text, _no_spaces), required=True),
    F("name", "name", text, required=True),
    F("uom", lambda r: r.get("default_uom.symbol"), _uom, default="EA"),  # a flat key (the adapter's flatten)
    F("active", _active, boolean),
]


def product_from_erp(raws: list[Mapping[str, Any]], sku_of: Callable[[str], str | None] | None = None) -> Product:
    """One storefront product from its Tryton products (one, or the variants of a template with a
    code, in any order); ``sku_of`` is unused (Tryton products carry their SKU)."""
    if not raws:
        raise ValueError("product_from_erp needs at least one product")
    first = raws[0]
    template = _template_code(first)
    record = f"tryton product {template or first.get('code', '?')}"
    kw = apply_spec([
        F("code", lambda r: _template_code(r) or r.get("code"), text, required=True),
        F("name", lambda r: r.get("template.name") or r.get("name"), text, required=True),
    ], first, record)
    variants = []
    for raw in sorted(raws, key=lambda r: str(r.get("code"))):
        v = apply_spec(TRYTON_VARIANT, raw, f"tryton product {raw.get('code', '?')}")
        if template:  # the variants of one product are told apart by their suffix ("-M" -> "M")
            suffix = str(raw.get("suffix_code") or "").strip(" -_./") or v["sku"]
            v["name"] = f"{v['name']} {suffix}"
            v["attributes"] = {"Variant": suffix}
        variants.append(build(Variant, v, record))
    skus = [v.sku for v in variants]
    if len(set(skus)) != len(skus):
        raise MappingError(record, "variants.sku", "unique", skus)
    times = [t for t in (_changed_at(r) for r in raws) if t]
    return build(Product, {**kw, "variants": variants, "active": any(v.active for v in variants),
                           "updated_at": parse_time(_latest(*times)) if times else None}, record)


def _price_not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise RuleViolation("price_not_negative")
    return value


def price_ref(raw: Mapping[str, Any]) -> PriceRef:
    """What the flow reads of a Tryton price row (``TrytonErpAdapter.list_prices``) before mapping it."""
    code = raw.get("code")
    return PriceRef(item_code=str(code) if code else None,
                    row_id=f"{code}/{LIST_PRICE_LIST}/{raw.get('currency')}/1",
                    updated_at=raw.get("write_date") if isinstance(raw.get("write_date"), str) else None)


def price_spec(sku_of: Callable[[str], str | None]) -> list[F]:
    """A Tryton list price as a base price; ``sku_of`` resolves the product code (the items read)."""

    def sku(value: Any) -> str:
        found = sku_of(text(value))
        if not found:
            raise RuleViolation("item_xref")
        return found

    return [
        F("sku", "code", sku, required=True),
        F("price", "list_price", chain(amount, _price_not_negative), required=True),
        F("currency", "currency", currency, required=True),
        F("kind", lambda _r: PriceKind.BASE),
        F("price_list", lambda _r: LIST_PRICE_LIST),
        F("min_quantity", lambda _r: 1),
    ]


def price_from_erp(raw: Mapping[str, Any], sku_of: Callable[[str], str | None], *,
                   spec: list[F] | None = None) -> PriceEntry:
    """One Tryton price row as a PriceEntry; pass a prebuilt ``spec`` in loops."""
    record = f"tryton price {raw.get('code', '?')}/{LIST_PRICE_LIST}/{raw.get('currency', '?')}/1"
    return build(PriceEntry, apply_spec(spec or price_spec(sku_of), raw, record), record)


def _whole(value: Any, record: str, field: str) -> int:
    q = Decimal(str(value or 0))
    if q != q.to_integral_value():
        raise MappingError(record, field, "whole_quantity", value)
    return int(q)


def inventory_from_erp(raw: Mapping[str, Any]) -> InventoryLevel:
    """On hand and forecast of a product in a warehouse. What the store may sell is the forecast
    (on hand minus what confirmed sales will take), so the forecast's shortfall is ``allocated``."""
    record = f"tryton stock {raw.get('code', '?')}@{raw.get('warehouse', '?')}"
    if not raw.get("code"):
        raise MappingError(record, "code", "required", None)
    on_hand = _whole(raw.get("quantity"), record, "quantity")
    forecast = _whole(raw.get("forecast_quantity"), record, "forecast_quantity")
    return InventoryLevel(sku=str(raw["code"]), location=str(raw.get("warehouse") or "WH"), on_hand=on_hand,
                          allocated=max(0, on_hand - forecast))


def item_changed_at(raw: Mapping[str, Any]) -> str | None:
    """A product's change time for inventory_sync's items cursor: its own or its template's."""
    return _changed_at(raw)
