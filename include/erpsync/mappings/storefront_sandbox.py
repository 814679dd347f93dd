"""Sandbox storefront (Shopify-like) raw customers and orders -> canonical records.

The shapes are those of docs/internals.md. Two conventions of the sandbox storefront decide the
totals check (``Order.computed_total``), so they are written down here:

* line ``tax_lines`` are the taxes of the line; the order-level ``tax_lines`` are the taxes *not*
  on any line (tax on shipping). Unlike Shopify, they do not repeat the line taxes, so both are
  kept as they are and each tax is counted once;
* a line's ``total_discount`` is the discount on that line; ``discount_codes`` are order-level
  discounts, not allocated to lines.

The catalog and pricing payloads of the sandbox storefront live in ``storefront_catalog`` and
``storefront_pricing``, its fulfillment and return mappings in ``erp_shipments`` and
``returns``; they are re-exported here, where the flows find them through the
adapter (``erpsync.connectors.registry.storefront_mapping``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

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
    email,
    quantity,
    text,
    timestamp,
)
from erpsync.mappings.erp_shipments import find_fulfillment as find_fulfillment
from erpsync.mappings.erp_shipments import fulfillment_ref as fulfillment_ref
from erpsync.mappings.erp_shipments import fulfillment_to_storefront as fulfillment_to_storefront
from erpsync.mappings.returns import refund_ref as refund_ref
from erpsync.mappings.returns import refund_to_storefront as refund_to_storefront
from erpsync.mappings.returns import refunds_of as refunds_of
from erpsync.mappings.returns import return_from_storefront as return_from_storefront
from erpsync.mappings.returns import return_id as return_id
from erpsync.mappings.returns import return_update_to_storefront as return_update_to_storefront
from erpsync.mappings.returns import returned_lines as returned_lines
from erpsync.mappings.stock import in_flight_lines as in_flight_lines
from erpsync.mappings.stock import level_to_storefront as level_to_storefront
from erpsync.mappings.stock import product_changed_at as product_changed_at
from erpsync.mappings.stock import sale_lines as sale_lines
from erpsync.mappings.stock import store_level_of as store_level_of
from erpsync.mappings.stock import store_skus_of as store_skus_of
from erpsync.mappings.storefront_catalog import handle_of as handle_of
from erpsync.mappings.storefront_catalog import product_handle as product_handle
from erpsync.mappings.storefront_catalog import product_to_storefront as product_to_storefront
from erpsync.mappings.storefront_pricing import list_price as list_price
from erpsync.mappings.storefront_pricing import published_prices as published_prices
from erpsync.mappings.storefront_pricing import target_of as target_of
from erpsync.mappings.storefront_pricing import variant_price as variant_price
from erpsync.model import Address, Customer, Discount, Order, OrderLine, OrderStatus, Payment, TaxLine

Raw = Mapping[str, Any]

#: storefront payment gateway -> ERP payment method code
GATEWAY_TO_ERP_METHOD: dict[str, str] = {"card": "CC", "paypal": "PP", "gift_card": "GC"}


def changed_at(raw: Raw) -> str | None:
    """When the store last changed a record (``updated_at``; the flows' cursors follow it)."""
    value = raw.get("updated_at")
    return str(value) if value else None


def erasure_request(raw: Raw) -> dict[str, Any]:
    """An erasure request as customer_erasure reads it: ``id``, ``customer_id`` (None for a guest),
    ``email``, ``requested_at``."""
    return {k: raw.get(k) for k in ("id", "customer_id", "email", "requested_at")}


def erp_method(gateway: Any) -> str:
    """The ERP method code of a gateway; an unknown gateway is refused, never guessed."""
    if not isinstance(gateway, str) or gateway not in GATEWAY_TO_ERP_METHOD:
        raise RuleViolation("payment_gateway")
    return GATEWAY_TO_ERP_METHOD[gateway]


def _address_kind(kind: str) -> Any:
    return lambda raw: raw.get("type") or kind


ADDRESS: list[F] = [
    F("line1", "address1", text, required=True),
    F("line2", "address2", text),
    F("city", "city", text, required=True),
    F("region", "province", text),
    F("postcode", "zip", text, default=""),
    F("country", "country_code", country, required=True),
    F("name", "name", text),
    F("company", "company", text),
    F("phone", "phone", text),
]

CUSTOMER: list[F] = [
    F("external_id", "id", text, required=True),
    F("email", "email", email, required=True),
    F("first_name", "first_name", text),
    F("last_name", "last_name", text),
    F("company", "company", text),
    F("phone", "phone", text),
    F("group", "group", text),
    F("tax_exempt", "tax_exempt", boolean),
    F("addresses", "addresses", Many([*ADDRESS, F("kind", _address_kind("billing"), text)], Address)),
    F("updated_at", "updated_at", timestamp),
]

TAX_LINE: list[F] = [
    F("code", lambda raw: raw.get("code") or raw.get("title"), text, required=True),
    F("rate", "rate", amount, default=Decimal("0")),
    F("amount", "price", amount, required=True),
    F("jurisdiction", "jurisdiction", text),
]

ORDER_LINE: list[F] = [
    F("line_id", "id", text, required=True),
    F("sku", "sku", text, required=True),
    F("name", "title", text),
    F("quantity", "quantity", quantity, required=True),
    F("unit_price", "price", amount, required=True),
    F("discount", "total_discount", amount),
    F("taxes", "tax_lines", Many(TAX_LINE, TaxLine, id_field="code")),
]

PAYMENT: list[F] = [
    F("method", "gateway", text, required=True),
    F("erp_method", "gateway", erp_method, required=True),
    F("amount", "amount", amount, required=True),
    F("reference", "id", text),
]

DISCOUNT: list[F] = [
    F("code", "code", text, required=True),
    F("amount", "amount", amount, required=True),
]

_FINANCIAL_STATUS = {
    "pending": OrderStatus.PENDING,
    "paid": OrderStatus.PAID,
    "refunded": OrderStatus.REFUNDED,
    # a return was refunded after the order was paid: the order stays a paid order (returns_sync)
    "partially_refunded": OrderStatus.PAID,
}


def _status(raw: Raw) -> Any:
    if raw.get("cancelled_at"):
        return OrderStatus.CANCELLED
    return raw.get("financial_status")


def _financial_status(value: Any) -> OrderStatus:
    if isinstance(value, OrderStatus):
        return value
    if value not in _FINANCIAL_STATUS:
        raise RuleViolation("financial_status")
    return _FINANCIAL_STATUS[value]


def _shipping_amount(raw: Raw) -> Any:
    lines = raw.get("shipping_lines") or []
    if not isinstance(lines, list):
        raise RuleViolation("list")
    return sum((amount(sl.get("price", "0")) for sl in lines), Decimal("0"))


def _shipping_method(raw: Raw) -> Any:
    lines = raw.get("shipping_lines") or []
    return (lines[0].get("code") or lines[0].get("title")) if lines else None


def _successful(tx: Raw) -> bool:
    return tx.get("status", "success") == "success"


ORDER: list[F] = [
    F("external_id", "id", text, required=True),
    F("number", lambda raw: raw.get("name") or raw.get("id"), text, required=True),
    F("customer_external_id", "customer.id", text, nullable=True),
    F(
        "customer_email",
        lambda raw: raw.get("email") or (raw.get("customer") or {}).get("email"),
        email,
        required=True,
    ),
    F("currency", "currency", currency, required=True),
    F("placed_at", "created_at", timestamp, required=True),
    F("updated_at", "updated_at", timestamp),
    F("status", _status, _financial_status, required=True),
    F("lines", "line_items", Many(ORDER_LINE, OrderLine), required=True),
    F("shipping_method", _shipping_method, text),
    F("shipping_amount", _shipping_amount),
    F("shipping_address", "shipping_address", None),
    F("billing_address", "billing_address", None),
    F("payments", "transactions", Many(PAYMENT, Payment, keep=_successful)),
    F("taxes", "tax_lines", Many(TAX_LINE, TaxLine, id_field="code")),
    F("discounts", "discount_codes", Many(DISCOUNT, Discount, id_field="code")),
    F("total", "total_price", amount, required=True),
    F("is_guest", lambda raw: raw.get("customer") is None),
    # the sales channel (Shopify's source_name) and the store location it is fulfilled from
    F("channel", "source_name", text),
    F("location", "location_id", text),
]


def order_id(raw: Any) -> str:
    """The one id of a store order everywhere (dead letters, ledger, cross-reference): its ``id``."""
    return str(raw.get("id") or "?") if isinstance(raw, Mapping) else "?"


def customer_from_storefront(raw: Raw) -> Customer:
    """A storefront customer as a canonical Customer (the storefront id is ``external_id``)."""
    record = f"storefront customer {raw.get('id', '?') if isinstance(raw, dict) else '?'}"
    return build(Customer, apply_spec(CUSTOMER, raw, record), record)


def address_from_storefront(raw: Raw, kind: str, record: str) -> Address:
    spec = [*ADDRESS, F("kind", lambda _r: kind, text)]
    return build(Address, apply_spec(spec, raw, record), record)


def order_from_storefront(raw: Raw) -> Order:
    """A storefront order as a canonical Order; taxes stay where the storefront put them (module doc)."""
    record = f"storefront order {raw.get('id', '?') if isinstance(raw, dict) else '?'}"
    kw = apply_spec(ORDER, raw, record)
    for kind in ("shipping", "billing"):
        key = f"{kind}_address"
        if isinstance(kw.get(key), Mapping):
            kw[key] = address_from_storefront(kw[key], kind, f"{record}/{key}")
    return build(Order, kw, record)
