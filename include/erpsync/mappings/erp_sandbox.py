"""Canonical records <-> the sandbox ERP: create/update payloads out, raw customers in.

Payloads carry money as plain decimal strings and the storefront id as ``external_ref``, the key
by which an order or a customer is found again after a write whose answer was lost.

The catalog, pricing, shipment and return specs of the sandbox ERP live in ``erp_catalog``,
``erp_pricing``, ``erp_shipments`` and ``returns``; they are re-exported here, where the flows
find them through the adapter
(``erpsync.connectors.registry.erp_mapping``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from erpsync.errors import MappingError
from erpsync.mappings.engine import (
    F,
    Many,
    amount,
    apply_spec,
    boolean,
    build,
    country,
    currency,
    dec_str,
    email,
    text,
    timestamp,
)
from erpsync.mappings.erp_catalog import catalog_item as catalog_item
from erpsync.mappings.erp_catalog import product_from_erp as product_from_erp
from erpsync.mappings.erp_pricing import price_from_erp as price_from_erp
from erpsync.mappings.erp_pricing import price_ref as price_ref
from erpsync.mappings.erp_pricing import price_spec as price_spec
from erpsync.mappings.erp_shipments import changed_at as changed_at
from erpsync.mappings.erp_shipments import pending_packages as pending_packages
from erpsync.mappings.erp_shipments import shipment_done as shipment_done
from erpsync.mappings.erp_shipments import shipment_from_erp as shipment_from_erp
from erpsync.mappings.erp_shipments import shipment_no as shipment_no
from erpsync.mappings.erp_shipments import shipment_order_no as shipment_order_no
from erpsync.mappings.erp_shipments import shipped_packages as shipped_packages
from erpsync.mappings.returns import return_from_erp as return_from_erp
from erpsync.mappings.returns import return_to_erp as return_to_erp
from erpsync.mappings.returns import rma_no as rma_no
from erpsync.mappings.sales_orders import sandbox_sales_order as sales_order_summary  # noqa: F401 - re-exported
from erpsync.mappings.stock import item_changed_at as item_changed_at
from erpsync.mappings.stock import item_from_erp as item_from_erp
from erpsync.mappings.stock import stock_figures as stock_figures
from erpsync.mappings.stock import stock_key as stock_key
from erpsync.mappings.stock import stock_level as stock_level
from erpsync.model import Address, Customer, Order

Raw = dict[str, Any]

ADDRESS_KIND_TO_ERP = {"billing": "BILL_TO", "shipping": "SHIP_TO"}
ADDRESS_KIND_FROM_ERP = {v: k for k, v in ADDRESS_KIND_TO_ERP.items()}


# --------------------------------------------------------------------------- references in raw records
# (the flows read references through these, so that another ERP's mapping can say where they are)


def customer_no(raw: Mapping[str, Any]) -> str:
    return str(raw["customer_no"])


def customer_external_ref(raw: Mapping[str, Any]) -> str | None:
    return raw.get("external_ref")


def order_no(raw: Mapping[str, Any]) -> str:
    """The sales order's number; none (never the text \"None\") is a MappingError."""
    if not raw.get("order_no"):
        raise MappingError(f"erp sales order {raw.get('external_ref', '?')}", "order_no", "required",
                           raw.get("order_no"))
    return str(raw["order_no"])


def order_state(raw: Mapping[str, Any]) -> str:
    """``booked`` or ``dead`` (cancelled): the sandbox ERP books an order when it accepts it."""
    return "dead" if raw.get("status") == "cancelled" else "booked"


def item_code(raw: Mapping[str, Any]) -> str | None:
    return raw.get("item_code") or None


# --------------------------------------------------------------------------- canonical -> ERP


def address_to_erp(a: Address) -> Raw:
    return {
        "type": ADDRESS_KIND_TO_ERP.get(a.kind, "BILL_TO"),
        "street": a.line1,
        "street2": a.line2,
        "city": a.city,
        "state": a.region,
        "postal_code": a.postcode,
        "country": a.country,
    }


def customer_name(c: Customer) -> str:
    """The ERP keeps one name: the person's, else the company's, else the e-mail."""
    return f"{c.first_name} {c.last_name}".strip() or c.company or c.email


def customer_update_to_erp(c: Customer) -> Raw:
    """Fields the storefront owns; ERP-owned terms (payment terms, credit limit) are left alone."""
    return {
        "name": customer_name(c),
        "email": c.email,
        "phone": c.phone,
        "addresses": [address_to_erp(a) for a in c.addresses],
        "external_ref": c.external_id,
    }


def customer_to_erp(c: Customer) -> Raw:
    """Create payload of an ERP customer from a canonical (storefront) customer."""
    payload = customer_update_to_erp(c)
    payload.update(
        {
            "customer_group": c.group or "retail",
            "tax_exempt": c.tax_exempt,
            "tax_id": c.tax_exemption_id,
            "currency": c.currency,
        }
    )
    if c.payment_terms:
        payload["payment_terms"] = c.payment_terms
    if c.credit_limit is not None:
        payload["credit_limit"] = dec_str(c.credit_limit)
    return payload


def order_to_erp(o: Order, customer_no: str) -> Raw:
    """Create payload of an ERP sales order; every line must already carry its ERP item code."""
    record = f"order {o.external_id}"
    lines = []
    for n, ln in enumerate(o.lines, start=1):
        if not ln.item_code:
            raise MappingError(record, f"lines[{n - 1}].item_code", "item_xref", ln.sku)
        lines.append(
            {
                "line_no": n,
                "item_code": ln.item_code,
                "qty": ln.quantity,
                "unit_price": dec_str(ln.unit_price),
                "discount": dec_str(ln.discount),
                "taxes": [_tax(t) for t in ln.taxes],
            }
        )
    payments = []
    for p in o.payments:
        if not p.erp_method:
            raise MappingError(record, "payments.method_code", "payment_gateway", p.method)
        payments.append({"method_code": p.erp_method, "amount": dec_str(p.amount), "reference": p.reference})
    ship_to = o.shipping_address or o.billing_address
    return {
        "external_ref": o.external_id,
        "customer_no": customer_no,
        "order_date": o.placed_at.isoformat().replace("+00:00", "Z"),
        "currency": o.currency,
        "exchange_rate": dec_str(o.exchange_rate),
        "lines": lines,
        "shipping": {
            "method": o.shipping_method,
            "amount": dec_str(o.shipping_amount),
            "address": address_to_erp(ship_to) if ship_to else None,
        },
        "payments": payments,
        "taxes": [_tax(t) for t in o.taxes],
        "discounts": [{"code": d.code, "amount": dec_str(d.amount), "kind": d.kind} for d in o.discounts],
        "total": dec_str(o.total),
        # the configured warehouse (rules.orders.WarehouseConfig); none: the ERP's default
        **({"warehouse": o.warehouse} if o.warehouse else {}),
    }


def _tax(t: Any) -> Raw:
    return {
        "tax_code": t.code,
        "rate": dec_str(t.rate),
        "amount": dec_str(t.amount),
        "jurisdiction": t.jurisdiction,
    }


# --------------------------------------------------------------------------- ERP -> canonical


def _kind_from_erp(raw: Mapping[str, Any]) -> str:
    return ADDRESS_KIND_FROM_ERP.get(raw.get("type", ""), "billing")


ERP_ADDRESS: list[F] = [
    F("line1", "street", text, required=True),
    F("line2", "street2", text),
    F("city", "city", text, required=True),
    F("region", "state", text),
    F("postcode", "postal_code", text, default=""),
    F("country", "country", country, required=True),
    F("kind", _kind_from_erp, text),
]


def _first_name(raw: Mapping[str, Any]) -> Any:
    return (raw.get("name") or "").strip().rpartition(" ")[0] or None


def _last_name(raw: Mapping[str, Any]) -> Any:
    name = (raw.get("name") or "").strip()
    return name.rpartition(" ")[2] if " " in name else name or None


ERP_CUSTOMER: list[F] = [
    F("external_id", "customer_no", text, required=True),
    F("email", "email", email, default=""),
    F("first_name", _first_name, text),
    F("last_name", _last_name, text),
    F("phone", "phone", text),
    F("group", "customer_group", text),
    F("tax_exempt", "tax_exempt", boolean),
    F("tax_exemption_id", "tax_id", text),
    F("payment_terms", "payment_terms", text),
    F("credit_limit", "credit_limit", amount),
    F("currency", "currency", currency),
    F("addresses", "addresses", Many(ERP_ADDRESS, Address, id_field="type")),
    F("updated_at", "modified_at", timestamp),
]


def customer_from_erp(raw: Mapping[str, Any]) -> Customer:
    """An ERP customer as canonical; ``external_id`` is the ERP ``customer_no``.

    The ERP keeps a single name; it is split at the last space (the matching rules compare the
    joined, normalised name, so the split point does not matter to them).
    """
    record = f"erp customer {raw.get('customer_no', '?')}"
    return build(Customer, apply_spec(ERP_CUSTOMER, raw, record), record)
