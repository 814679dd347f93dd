"""Vendure (raw records of ``erpsync.connectors.vendure``) <-> canonical records.

The same functions as ``storefront_sandbox`` (the flows call whichever the storefront adapter
names), plus the catalog, stock and fulfilment payloads Vendure is the target of. Fulfilments,
returns (refunds with lines) and erasure requests live in ``vendure_transactions`` (re-exported
here), with the conventions of how Vendure models them.

Conventions of the Vendure side:

* money is in minor units (ints): divided by 100 (two-decimal currencies; a zero-decimal
  currency such as JPY would need the currency's exponent);
* an order's external id is its ``code``; its status comes from its state (payment settled or
  authorised, or any shipping/delivery state after them = paid; Cancelled = cancelled);
* a line's tax is ``linePriceWithTax - linePrice``; the tax on shipping is an order-level tax,
  so each tax is counted once (``Order.computed_total``); line discounts (Vendure keeps them
  negative) are the line's ``discount``;
* a product's slug is its code (``handle_of``); catalog_sync writes only what the ERP owns (the
  description stays the store's), and prices only as a new variant's first price;
* prices are variant prices in the channel's default currency (see ``target_of`` for what
  Vendure has no place for).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from erpsync.errors import MappingError, UnsupportedError
from erpsync.mappings.engine import (
    F,
    Many,
    RuleViolation,
    apply_spec,
    build,
    country,
    currency,
    email,
    quantity,
    text,
    timestamp,
)
from erpsync.mappings.storefront_pricing import VARIANT, Target
from erpsync.mappings.vendure_stock import in_flight_lines as in_flight_lines
from erpsync.mappings.vendure_stock import level_to_storefront as level_to_storefront
from erpsync.mappings.vendure_stock import product_changed_at as product_changed_at
from erpsync.mappings.vendure_stock import store_level_of as store_level_of
from erpsync.mappings.vendure_stock import store_skus_of as store_skus_of
from erpsync.mappings.vendure_transactions import changed_at as changed_at
from erpsync.mappings.vendure_transactions import erasure_request as erasure_request
from erpsync.mappings.vendure_transactions import find_fulfillment as find_fulfillment
from erpsync.mappings.vendure_transactions import fulfillment_ref as fulfillment_ref
from erpsync.mappings.vendure_transactions import fulfillment_to_storefront as fulfillment_to_storefront
from erpsync.mappings.vendure_transactions import refund_ref as refund_ref
from erpsync.mappings.vendure_transactions import refund_to_storefront as refund_to_storefront
from erpsync.mappings.vendure_transactions import refunds_of as refunds_of
from erpsync.mappings.vendure_transactions import return_from_storefront as return_from_storefront
from erpsync.mappings.vendure_transactions import return_id as return_id
from erpsync.mappings.vendure_transactions import return_update_to_storefront as return_update_to_storefront
from erpsync.mappings.vendure_transactions import returned_lines as returned_lines
from erpsync.model import (
    Address,
    Customer,
    InventoryLevel,
    Order,
    OrderLine,
    OrderStatus,
    Payment,
    PriceEntry,
    Product,
    TaxLine,
)

Raw = dict[str, Any]
CENT = Decimal("100")
PAID_STATES = {"PaymentAuthorized", "PaymentSettled", "PartiallyShipped", "Shipped", "PartiallyDelivered",
               "Delivered", "Modifying", "ArrangingAdditionalPayment"}
PENDING_STATES = {"Created", "Draft", "AddingItems", "ArrangingPayment"}


def minor(value: Any) -> Decimal:
    """Vendure money (an int of minor units) as Decimal."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleViolation("minor_units")
    return Decimal(value) / CENT


def to_minor(value: Decimal) -> int:
    cents = value * CENT
    if cents != cents.to_integral_value():
        raise RuleViolation("minor_units")
    return int(cents)


# --------------------------------------------------------------------------- Vendure -> canonical


def _constant(value: str) -> Callable[[Mapping[str, Any]], str]:
    """A computed field's source that gives ``value`` whatever the record."""
    return lambda _raw: value


def _kind(raw: Mapping[str, Any]) -> str:
    return "shipping" if raw.get("defaultShippingAddress") and not raw.get("defaultBillingAddress") else "billing"


ADDRESS: list[F] = [
    F("line1", "streetLine1", text, required=True),
    F("line2", "streetLine2", text),
    F("city", "city", text, required=True),
    F("region", "province", text),
    F("postcode", "postalCode", text, default=""),
    F("country", lambda raw: raw.get("countryCode") or (raw.get("country") or {}).get("code"), country,
      required=True),
    F("name", "fullName", text),
    F("company", "company", text),
    F("phone", "phoneNumber", text),
]

CUSTOMER: list[F] = [
    F("external_id", "id", text, required=True),
    F("email", "emailAddress", email, required=True),
    F("first_name", "firstName", text),
    F("last_name", "lastName", text),
    F("phone", "phoneNumber", text),
    F("addresses", "addresses", Many([*ADDRESS, F("kind", _kind, text)], Address)),
    F("updated_at", "updatedAt", timestamp),
]


def customer_from_storefront(raw: Mapping[str, Any]) -> Customer:
    record = f"vendure customer {raw.get('id', '?')}"
    return build(Customer, apply_spec(CUSTOMER, raw, record), record)


def _line_tax(raw: Mapping[str, Any]) -> list[Raw]:
    """Every tax line of the order line: its code (the Vendure tax rate's name, which ``tax_map``
    maps to an ERP tax), its rate (percent) and its amount. Vendure gives the line's total tax
    (``linePriceWithTax - linePrice``), not each tax's: it is shared by rate, the last tax taking
    the rounding, so the amounts add up to Vendure's exactly. Tax without tax lines: code ``tax``."""
    tax = raw.get("linePriceWithTax", 0) - raw.get("linePrice", 0)
    lines = [t for t in raw.get("taxLines") or [] if t.get("taxRate")]
    if not tax:
        return []
    if not lines:
        return [{"code": "tax", "rate": "0", "amount": tax}]
    rates = [Decimal(str(t.get("taxRate") or 0)) for t in lines]
    out, left = [], tax
    for n, (t, rate) in enumerate(zip(lines, rates, strict=True)):
        part = left if n == len(lines) - 1 else int((Decimal(tax) * rate / sum(rates)).to_integral_value())
        left -= part
        out.append({"code": t.get("description") or f"rate:{rate.normalize():f}", "rate": str(rate), "amount": part})
    return out


def _line_discount(raw: Mapping[str, Any]) -> Any:
    total = sum(d.get("amount", 0) for d in raw.get("discounts") or [])
    return minor(-total) if total else None


TAX: list[F] = [
    F("code", "code", text, required=True),
    F("rate", "rate", lambda v: Decimal(str(v)), default=Decimal("0")),
    F("amount", "amount", minor, required=True),
]

LINE: list[F] = [
    F("line_id", "id", text, required=True),
    F("sku", "productVariant.sku", text, required=True),
    F("name", "productVariant.name", text),
    F("quantity", "quantity", quantity, required=True),
    F("unit_price", "unitPrice", minor, required=True),
    F("discount", _line_discount),
    F("taxes", _line_tax, Many(TAX, TaxLine, id_field="code")),
]


def _status(raw: Mapping[str, Any]) -> OrderStatus:
    state = raw.get("state")
    if state == "Cancelled":
        return OrderStatus.CANCELLED
    if state in PAID_STATES:
        return OrderStatus.PAID
    if state in PENDING_STATES:
        return OrderStatus.PENDING
    raise RuleViolation("order_state")


def _payments(raw: Mapping[str, Any]) -> list[Payment]:
    out = []
    for p in raw.get("payments") or []:
        if p.get("state") not in ("Settled", "Authorized"):
            continue
        out.append(Payment(method=str(p["method"]), amount=minor(p["amount"]),
                           reference=str(p.get("transactionId") or p["id"]), erp_method=str(p["method"]),
                           status="captured" if p["state"] == "Settled" else "authorized"))
    return out


def _shipping_taxes(raw: Mapping[str, Any]) -> list[TaxLine]:
    tax = (raw.get("shippingWithTax") or 0) - (raw.get("shipping") or 0)
    return [TaxLine(code="shipping tax", rate=Decimal("0"), amount=minor(tax))] if tax else []


ORDER: list[F] = [
    F("external_id", "code", text, required=True),
    F("number", "code", text, required=True),
    F("customer_external_id", "customer.id", text, nullable=True),
    F("customer_email", "customer.emailAddress", email, required=True),
    F("currency", "currencyCode", currency, required=True),
    F("placed_at", lambda raw: raw.get("orderPlacedAt") or raw.get("createdAt"), timestamp, required=True),
    F("updated_at", "updatedAt", timestamp),
    F("status", lambda raw: raw, _status, required=True),
    F("lines", "lines", Many(LINE, OrderLine), required=True),
    F("shipping_method", lambda raw: ((raw.get("shippingLines") or [{}])[0].get("shippingMethod") or {}).get("code"),
      text),
    F("shipping_amount", "shipping", minor),
    F("payments", lambda raw: raw, _payments),
    F("taxes", lambda raw: raw, _shipping_taxes),
    F("total", "totalWithTax", minor, required=True),
    F("channel", lambda raw: ((raw.get("channels") or [{}])[0] or {}).get("code"), text),
]


def order_id(raw: Any) -> str:
    """The one id of a store order everywhere (dead letters, ledger, cross-reference): its ``code``."""
    return str(raw.get("code") or "?") if isinstance(raw, Mapping) else "?"


def order_from_storefront(raw: Mapping[str, Any]) -> Order:
    record = f"vendure order {raw.get('code', '?')}"
    kw = apply_spec(ORDER, raw, record)
    for kind in ("shipping", "billing"):
        addr = raw.get(f"{kind}Address")
        if isinstance(addr, Mapping) and addr.get("streetLine1"):
            kw[f"{kind}_address"] = build(Address, apply_spec([*ADDRESS, F("kind", _constant(kind), text)],
                                                              addr, f"{record}/{kind}_address"), record)
    kw["is_guest"] = raw.get("customer") is None
    return build(Order, kw, record)


# --------------------------------------------------------------------------- canonical -> Vendure


def slug(code: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in code.lower()).strip("-")


def handle_of(product: Product) -> str:
    """The Vendure slug of a product: its code, URL-safe."""
    return slug(product.code)


def product_handle(raw: Mapping[str, Any]) -> str | None:
    """The slug of a Vendure product as ``list_products`` returns it."""
    return str(raw["slug"]) if raw.get("slug") else None


def _cents(record: str, field: str, value: Decimal) -> int:
    try:
        return to_minor(value)
    except RuleViolation as exc:
        raise MappingError(record, field, exc.rule, value) from exc


def product_to_storefront(
    product: Product, *, prices: Mapping[str, Decimal] | None = None, draft: bool = False
) -> Raw:
    """Upsert payload: the fields the ERP owns (name, slug, enabled; per variant SKU, name,
    enabled). ``prices`` (SKU -> price) are the first prices of a new product, in minor units (an
    existing variant keeps its price: pricing_sync sets prices). A retired product is disabled
    (unpublished, never deleted); a ``draft`` (no valid first price) is created disabled. The
    description is the store's: not sent."""
    record = f"product {product.code}"
    enabled = product.active and not draft
    variants = []
    for v in product.variants:
        variant: Raw = {"sku": v.sku, "name": v.name, "enabled": v.active and enabled}
        if v.attributes:  # Vendure tells variants apart by their options
            variant["options"] = dict(v.attributes)
        if prices and v.sku in prices:
            variant["price"] = _cents(record, f"variants[{v.sku}].price", prices[v.sku])
        variants.append(variant)
    return {"name": product.name, "slug": handle_of(product), "enabled": enabled, "variants": variants}


# --------------------------------------------------------------------------- prices
# Where a price goes in Vendure: a variant has one price per channel currency. What Vendure has
# no place for is refused with UnsupportedError (pricing_sync keeps one dead letter per target
# and publishes the rest): customer-specific and customer-group price lists (Vendure needs a
# plugin for either), quantity breaks, and, for now, currencies other than the channel's
# default. A sale price is set as the variant's price for its dates; Vendure shows no
# compare-at price.


def target_of(entry: PriceEntry, shop_currency: str) -> Target:
    """Where a price entry goes in Vendure: the variant's price in the channel currency."""
    cur = entry.currency
    if entry.customer_id:
        raise UnsupportedError(f"customer-{entry.customer_id}-{cur}".lower(),
                               "Vendure has no customer-specific price lists (contract prices need a plugin)",
                               capability="price_lists")
    if entry.customer_group:
        raise UnsupportedError(f"group-{entry.customer_group}-{cur}".lower(),
                               "Vendure has no customer-group price lists (group prices need a plugin)",
                               capability="price_lists")
    if cur != shop_currency:
        raise UnsupportedError(f"currency-{cur}".lower(),
                               f"erpsync sets Vendure prices in the shop currency {shop_currency} only",
                               capability="multi_currency_prices")
    if entry.min_quantity > 1:
        raise UnsupportedError(f"qty-{entry.min_quantity}-{cur}".lower(),
                               "Vendure has no quantity-break prices",
                               capability="quantity_breaks")
    return Target(VARIANT, cur, "variant")


def variant_price(sku: str, price: Decimal, compare_at: Decimal | None, *, currency: str | None = None) -> Raw:
    """One row of ``set_variant_prices``: minor units, with the currency the adapter checks."""
    record = f"price of {sku}"
    row: Raw = {"sku": sku, "price": _cents(record, "price", price), "currency": currency}
    if compare_at is not None:
        row["compare_at_price"] = _cents(record, "compare_at_price", compare_at)
    return row


def published_prices(product: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """What a Vendure product shows: ``(sku, price, None)`` per variant (money as decimal strings)."""
    for v in product.get("variants") or []:
        if v.get("sku") and isinstance(v.get("price"), int) and not isinstance(v.get("price"), bool):
            yield str(v["sku"]), format(minor(v["price"]), "f"), None


def inventory_to_storefront(level: InventoryLevel) -> Raw:
    """What the store may sell: on hand minus allocated and held stock, never below zero."""
    sellable = level.on_hand - level.allocated - level.reserved - level.damaged - level.quarantined
    return {"sku": level.sku, "stock_on_hand": max(0, sellable - level.safety_stock)}


def inventory_from_storefront(raw: Mapping[str, Any]) -> InventoryLevel:
    record = f"vendure variant {raw.get('sku', '?')}"
    if not raw.get("sku"):
        raise MappingError(record, "sku", "required", None)
    return InventoryLevel(sku=str(raw["sku"]), location="default", on_hand=int(raw.get("stockOnHand") or 0),
                          allocated=int(raw.get("stockAllocated") or 0))
