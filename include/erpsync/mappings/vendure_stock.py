"""Vendure products and stock levels as inventory_sync reads and writes them (re-exported by
``storefront_vendure``).

A store location is a Vendure ``StockLocation`` (its id). A raw level
(``VendureStorefrontAdapter.export_inventory`` / ``inventory_for``) is one variant at one stock
location: ``sku``, ``stockLocationId``, ``stockOnHand``, ``stockAllocated``.

Which figure is which (issue 16, 4): Vendure sells ``stockOnHand - stockAllocated`` (its
*saleable* stock: ``stockAllocated`` holds the units of its placed orders not yet fulfilled), and
a fulfilment lowers both ``stockOnHand`` and ``stockAllocated`` (saleable unchanged).
inventory_sync's ``available`` is what the store may sell (the ERP's available to sell, which
already takes off the orders the ERP knows, less the store's orders still in flight), so the
level's ``available`` is Vendure's saleable figure both ways: read as ``stockOnHand -
stockAllocated`` (:func:`store_level_of`), written as ``stockOnHand = available +
stockAllocated`` with the allocation read in the same call (``VendureStorefrontAdapter.
set_inventory``). Sending the ERP's figure as ``stockOnHand`` would take the open orders off
twice. Vendure has no backorder flag or restock date per level: both are left out (a payload's
are ignored).
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
    """A Vendure stock level as inventory_sync compares it: ``available`` is what Vendure sells
    there, ``stockOnHand - stockAllocated``."""
    s, loc, on_hand = raw.get("sku"), raw.get("stockLocationId"), raw.get("stockOnHand")
    allocated = raw.get("stockAllocated") or 0
    if not (isinstance(s, str) and loc is not None and type(on_hand) is int and type(allocated) is int):
        return None
    return {"sku": s, "location": str(loc), "available": on_hand - allocated, "backorderable": False,
            "restock_date": None}


def in_flight_lines(raw: Mapping[str, Any]) -> tuple[str, list[tuple[str, int]]] | None:
    if raw.get("state") not in HOLDING:
        return None
    lines = [((ln.get("productVariant") or {}).get("sku"), ln.get("quantity")) for ln in raw.get("lines") or []]
    return str(raw.get("code")), [(s, q) for s, q in lines if isinstance(s, str) and type(q) is int]
