"""Canonical products -> the sandbox storefront's product payload (Shopify-like).

Only the fields the ERP owns (``erpsync.ownership``) are sent: the storefront keeps its own
description, tags and images, and variant prices are left to pricing_sync, which publishes them
through the price guard. A retired product is sent with ``status: archived`` (unpublished, kept).
"""

from __future__ import annotations

from typing import Any

from erpsync.model import Product
from erpsync.ownership import ERP, writable

Raw = dict[str, Any]
FLOW = "catalog_sync"


def handle_of(product: Product) -> str:
    """The storefront handle: the single variant's SKU (how the store was seeded), else the code."""
    key = product.variants[0].sku if len(product.variants) == 1 else product.code
    return key.lower()


def product_to_storefront(product: Product, *, flow: str = FLOW) -> Raw:
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
    return writable("product", payload, ERP, flow=flow)
