"""Vendure products and stock levels as inventory_sync reads and writes them (re-exported by
``storefront_vendure``).

A store location is a Vendure ``StockLocation`` (its id). A raw level
(``VendureStorefrontAdapter.export_inventory`` / ``inventory_for``) is one variant at one stock
location: ``sku``, ``stockLocationId``, ``stockOnHand``, ``stockAllocated``. inventory_sync writes
what may be sold as the location's ``stockOnHand`` (absolute; Vendure takes its own allocations
off it when it sells), so that is what it reads back as the level's ``available``. Vendure has
no backorder flag or restock date per level: both are left out (a payload's are ignored).
Orders holding stock that the ERP has not received yet are the placed ones (payment authorised
or settled, or any later state but Cancelled), by their ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from erpsync.mappings.stock import level_to_storefront as level_to_storefront

Raw = dict[str, Any]
#: order states that hold stock (Vendure allocates on payment)
HOLDING = {"PaymentAuthorized", "PaymentSettled", "PartiallyShipped", "Shipped", "PartiallyDelivered",
           "Delivered"}


def store_skus_of(raw: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    active = raw.get("enabled", True) is not False
    return [(v["sku"], str(raw.get("id")), active) for v in raw.get("variants") or []
            if isinstance(v, dict) and isinstance(v.get("sku"), str)]


def product_changed_at(raw: Mapping[str, Any]) -> str | None:
    u = raw.get("updatedAt")
    return u if isinstance(u, str) else None


def store_level_of(raw: Mapping[str, Any]) -> Raw | None:
    s, loc, on_hand = raw.get("sku"), raw.get("stockLocationId"), raw.get("stockOnHand")
    if not (isinstance(s, str) and loc is not None and type(on_hand) is int):
        return None
    return {"sku": s, "location": str(loc), "available": on_hand, "backorderable": False, "restock_date": None}


def in_flight_lines(raw: Mapping[str, Any]) -> tuple[str, list[tuple[str, int]]] | None:
    if raw.get("state") not in HOLDING:
        return None
    lines = [((ln.get("productVariant") or {}).get("sku"), ln.get("quantity")) for ln in raw.get("lines") or []]
    return str(raw.get("code")), [(s, q) for s, q in lines if isinstance(s, str) and type(q) is int]
