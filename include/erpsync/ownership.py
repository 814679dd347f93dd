"""System of record per field: which system owns each field of each entity.

A flow writes to a target only the fields the *source* owns; a field the target owns is never
overwritten (the ERPNext pain: a sync overwrote ERP-owned credit limits and payment terms).
``writable`` filters a payload by this registry, and ``owned_by`` answers "who owns it?" for
docs and reviews. Dotted names address child records (``variants.price``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ERP = "erp"
STOREFRONT = "storefront"

#: entity -> field -> owning system. Fields missing here are owned by nobody: never written.
REGISTRY: dict[str, dict[str, str]] = {
    "customer": {
        # the storefront is the master of B2C contact data ...
        "name": STOREFRONT, "email": STOREFRONT, "phone": STOREFRONT, "addresses": STOREFRONT,
        "external_ref": STOREFRONT,
        # ... the ERP of commercial terms
        "customer_group": ERP, "tax_exempt": ERP, "tax_id": ERP, "payment_terms": ERP,
        "credit_limit": ERP, "currency": ERP,
    },
    "product": {
        # the ERP is the master of what is sold ...
        "handle": ERP, "title": ERP, "vendor": ERP, "product_type": ERP, "status": ERP,
        "variants": ERP, "variants.sku": ERP, "variants.title": ERP, "variants.barcode": ERP,
        "variants.weight_grams": ERP, "variants.uom": ERP, "variants.option_values": ERP,
        # prices too, but only pricing_sync writes them (through the price guard)
        "variants.price": ERP, "variants.compare_at_price": ERP,
        # ... the storefront of how it is sold: marketing copy, tags, images, SEO
        "description": STOREFRONT, "tags": STOREFRONT, "images": STOREFRONT, "seo": STOREFRONT,
        "variants.inventory_policy": STOREFRONT,
    },
    "price": {
        "price": ERP, "compare_at_price": ERP, "min_qty": ERP, "currency": ERP,
    },
    "inventory": {"available": ERP},
    "order": {
        "lines": STOREFRONT, "payments": STOREFRONT, "shipping": STOREFRONT, "taxes": STOREFRONT,
        "fulfillments": ERP, "status": ERP,
    },
}

#: fields owned by the source but written by another flow (the price guard sits in pricing_sync)
WRITTEN_ELSEWHERE: dict[str, dict[str, str]] = {
    "product": {"variants.price": "pricing_sync", "variants.compare_at_price": "pricing_sync"},
}


class OwnershipError(ValueError):
    """A flow tried to write a field its source does not own."""


def owned_by(entity: str, field: str) -> str | None:
    """The owner of ``field``; a child field not listed inherits its parent's owner."""
    fields = REGISTRY.get(entity, {})
    while field not in fields and "." in field:
        field = field.rsplit(".", 1)[0]
    return fields.get(field)


def may_write(entity: str, field: str, source: str, *, flow: str | None = None) -> bool:
    """True when ``source`` owns ``field`` and no other flow is the one that writes it."""
    if owned_by(entity, field) != source:
        return False
    elsewhere = WRITTEN_ELSEWHERE.get(entity, {}).get(field)
    return elsewhere is None or elsewhere == flow


def writable(entity: str, payload: Mapping[str, Any], source: str, *, flow: str | None = None) -> dict[str, Any]:
    """``payload`` without the fields ``source`` may not write (child lists filtered field by field)."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if not may_write(entity, key, source, flow=flow):
            continue
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            value = [
                {k: v for k, v in child.items() if may_write(entity, f"{key}.{k}", source, flow=flow)}
                for child in value
            ]
        out[key] = value
    return out


def check_writable(entity: str, payload: Mapping[str, Any], source: str, *, flow: str | None = None) -> None:
    """Raise OwnershipError naming the first field ``payload`` must not carry."""
    for key, value in payload.items():
        if not may_write(entity, key, source, flow=flow):
            raise OwnershipError(f"{flow or source} must not write {entity}.{key} (owner: {owned_by(entity, key)})")
        if isinstance(value, list):
            for child in value:
                if isinstance(child, Mapping):
                    for k in child:
                        if not may_write(entity, f"{key}.{k}", source, flow=flow):
                            raise OwnershipError(
                                f"{flow or source} must not write {entity}.{key}.{k} "
                                f"(owner: {owned_by(entity, f'{key}.{k}')})"
                            )
