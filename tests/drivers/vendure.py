"""Look-ups in Vendure that the tests make and no flow does, through the adapter's GraphQL
client (``gql``). What a shopper or the merchant does in Vendure is in tests/e2e/shop.py."""

from __future__ import annotations

from typing import Any

from erpsync.connectors.vendure import VARIANT, VendureStorefrontAdapter


def find_variant(sf: VendureStorefrontAdapter, sku: str) -> dict[str, Any] | None:
    """The product variant with this SKU (with its product), or None."""
    found = sf.gql(f"query($o:ProductVariantListOptions){{productVariants(options:$o){{items{{{VARIANT}}}}}}}",
                   o={"filter": {"sku": {"eq": sku}}, "take": 1})["productVariants"]["items"]
    return found[0] if found else None
