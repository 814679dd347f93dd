"""Canonical prices -> where and how the sandbox storefront shows them.

Each price lands in one *target*: the variant itself (base price in the shop currency, with
``compare_at_price`` during a sale) or a price list (B2B catalogs in Shopify's terms): one per
other currency, one per customer group and currency, one per contract customer and currency.
Quantity breaks are rows of the same list with their ``min_qty``. A price key names one price:
``<list handle>|<sku>|<min_qty>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erpsync.mappings.engine import dec_str
from erpsync.model import PriceEntry, PriceKind

Raw = dict[str, Any]
VARIANT = "variant"  # the handle of the variant-price target


@dataclass(frozen=True, slots=True)
class Target:
    handle: str
    currency: str
    kind: str  # variant | currency | group | customer
    customer_group: str | None = None
    customer_ref: str | None = None  # ERP customer_no of a contract list

    def header(self, customer_id: str | None = None) -> Raw:
        """The price list payload (upsert by handle)."""
        names = {
            "currency": f"{self.currency} prices",
            "group": f"{self.customer_group} ({self.currency})",
            "customer": f"Contract {self.customer_ref} ({self.currency})",
        }
        return {
            "handle": self.handle,
            "name": names.get(self.kind, self.handle),
            "currency": self.currency,
            "customer_group": self.customer_group,
            "customer_ref": self.customer_ref,
            "customer_id": customer_id,
        }


def target_of(entry: PriceEntry, shop_currency: str) -> Target:
    """Where a price entry is shown; a sale applies to the list its other fields name."""
    cur = entry.currency
    if entry.customer_id:
        return Target(f"customer-{entry.customer_id}-{cur}".lower(), cur, "customer", customer_ref=entry.customer_id)
    if entry.customer_group:
        return Target(f"group-{entry.customer_group}-{cur}".lower(), cur, "group", customer_group=entry.customer_group)
    if cur == shop_currency:
        return Target(VARIANT, cur, "variant")
    return Target(f"currency-{cur}".lower(), cur, "currency")


def price_key(handle: str, sku: str, min_qty: int) -> str:
    return f"{handle}|{sku}|{min_qty}"


def split_key(key: str) -> tuple[str, str, int]:
    handle, sku, qty = key.rsplit("|", 2)
    return handle, sku, int(qty)


def rule_id(entry: PriceEntry) -> str:
    """Rules of one key are told apart by their ERP price list (``LIST``, ``SALE-BF``)."""
    return entry.price_list if entry.kind is not PriceKind.SALE else f"{entry.price_list}@sale"


def variant_price(sku: str, price: Decimal, compare_at: Decimal | None, *, currency: str | None = None) -> Raw:
    """One row of ``set_variant_prices`` (the sandbox's variants hold the shop currency only)."""
    return {"sku": sku, "price": dec_str(price), "compare_at_price": dec_str(compare_at) if compare_at else None}


def published_prices(product: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """What a storefront product shows: ``(sku, price, compare_at_price)`` of each priced variant."""
    for v in product.get("variants") or []:
        if v.get("sku") and v.get("price") not in (None, ""):
            yield str(v["sku"]), str(v["price"]), v.get("compare_at_price") or None


def list_price(sku: str, min_qty: int, price: Decimal, compare_at: Decimal | None) -> Raw:
    return {"sku": sku, "min_qty": min_qty, "price": dec_str(price),
            "compare_at_price": dec_str(compare_at) if compare_at else None}
