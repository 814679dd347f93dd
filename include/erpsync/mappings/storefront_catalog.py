"""Canonical products -> the sandbox storefront's product payload (Shopify-like).

Only the fields the ERP owns (``erpsync.ownership``) are sent: the storefront keeps its own
description, tags and images, and variant prices are left to pricing_sync, which publishes them
through the price guard. A retired product is sent with ``status: archived`` (unpublished, kept).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from erpsync.mappings.engine import dec_str
from erpsync.model import Product
from erpsync.ownership import ERP, writable

Raw = dict[str, Any]
FLOW = "catalog_sync"


def handle_of(product: Product) -> str:
    """The storefront handle: the single variant's SKU (how the store was seeded), else the code."""
    key = product.variants[0].sku if len(product.variants) == 1 else product.code
    return key.lower()


def product_handle(raw: Raw) -> str | None:
    """The handle of a product as the storefront lists it."""
    handle = raw.get("handle")
    return str(handle) if handle else None


def product_to_storefront(
    product: Product, *, prices: Mapping[str, Decimal] | None = None, draft: bool = False, flow: str = FLOW
) -> Raw:
    """The upsert payload. ``prices`` (SKU -> price) are the first prices of a new product (the
    store keeps an existing variant's price: pricing_sync owns it); ``draft`` creates it
    unpublished (no valid first price: never on sale at 0)."""
    payload: Raw = {
        "handle": handle_of(product),
        "title": product.name,
        "vendor": product.brand or "",
        "product_type": product.category or "",
        "status": "active" if product.active else "archived",
        "variants": [
            {
                "sku": v.sku,
                "title": " / ".join(v.attributes.values()) or "Default",
                "option_values": dict(v.attributes),
                "barcode": v.barcode,
                "weight_grams": v.weight_grams,
                "uom": v.uom,
            }
            for v in product.variants
        ],
        # never sent: description, tags, images (storefront-owned), variant prices (pricing_sync)
        "description": None,
    }
    out = writable("product", payload, ERP, flow=flow)
    for v in out["variants"]:
        if prices and v["sku"] in prices:
            v["price"] = dec_str(prices[v["sku"]])
    if draft:
        out["status"] = "draft"
    return out
