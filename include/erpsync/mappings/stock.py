"""ERP stock and items, store inventory levels: raw <-> what the inventory rules work on.

Written by hand rather than as an engine spec because it runs a million times per drift check
(~1 µs a record); the errors still name the record, the field and the rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from erpsync.errors import MappingError
from erpsync.model import InventoryLevel
from erpsync.rules.availability import StoreLevel, figures_to_sell
from erpsync.state.inventory import ItemInfo

Raw = dict[str, Any]
FIGURES = ("on_hand", "allocated", "reserved", "damaged", "quarantined", "safety_stock")


@dataclass(frozen=True, slots=True)
class StockFigures:
    """One ERP stock record reduced to what the store needs."""

    item_code: str
    warehouse: str
    available: int  # already through rules.availability.figures_to_sell
    backorderable: bool
    restock_date: str | None  # ISO date
    modified: str | None  # ERP modified_at, wire format


def _key(raw: Raw) -> str:
    return f"stock {raw.get('item_code')}@{raw.get('warehouse')}"


def stock_figures(raw: Raw, *, include_safety_stock: bool = True) -> StockFigures:
    code, wh = raw.get("item_code"), raw.get("warehouse")
    if not isinstance(code, str) or not code:
        raise MappingError(_key(raw), "item_code", "text", code)
    if not isinstance(wh, str) or not wh:
        raise MappingError(_key(raw), "warehouse", "text", wh)
    vals = []
    for name in FIGURES:
        v = raw.get(name, 0)
        if v is None:
            v = 0
        if type(v) is not int:
            raise MappingError(_key(raw), name, "whole quantity", v)
        vals.append(v)
    if not include_safety_stock:
        vals[5] = 0
    restock = raw.get("restock_date")
    if restock is not None:
        try:
            restock = dt.date.fromisoformat(str(restock)[:10]).isoformat()
        except ValueError:
            raise MappingError(_key(raw), "restock_date", "date", restock) from None
    back = raw.get("backorderable", False)
    if not isinstance(back, bool):
        raise MappingError(_key(raw), "backorderable", "bool", back)
    modified = raw.get("modified_at")
    return StockFigures(code, wh, figures_to_sell(*vals), back, restock,
                        modified if isinstance(modified, str) else None)


def stock_from_erp(raw: Raw, sku: str) -> InventoryLevel:
    """The canonical record of one ERP stock row (per-record paths and tests)."""
    f = stock_figures(raw)
    restock = dt.date.fromisoformat(f.restock_date) if f.restock_date else None
    return InventoryLevel(
        sku=sku, location=f.warehouse, backorderable=f.backorderable, restock_date=restock,
        **{name: int(raw.get(name) or 0) for name in FIGURES},
    )


def item_from_erp(raw: Raw) -> ItemInfo:
    """SKU, active flag and kit (component item code -> quantity per kit) of one ERP item."""
    code, sku = raw.get("item_code"), raw.get("sku")
    rec = f"item {code}"
    if not isinstance(code, str) or not code:
        raise MappingError(rec, "item_code", "text", code)
    if not isinstance(sku, str) or not sku:
        raise MappingError(rec, "sku", "text", sku)
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise MappingError(rec, "active", "bool", active)
    kit: dict[str, int] = {}
    for comp in raw.get("kit_components") or []:
        c, q = comp.get("item_code") if isinstance(comp, dict) else None, comp.get("qty") if isinstance(comp, dict) else None
        if not isinstance(c, str) or type(q) is not int or q <= 0:
            raise MappingError(rec, "kit_components", "item_code + positive whole qty", comp)
        kit[c] = kit.get(c, 0) + q
    return ItemInfo(code, sku, active, kit or None)


def store_level(raw: Raw) -> tuple[str, str, int]:
    """(sku, location, available) of one store inventory level."""
    s, loc, avail = raw.get("sku"), raw.get("location_id"), raw.get("available")
    if not isinstance(s, str) or not isinstance(loc, str):
        raise MappingError(f"level {s}@{loc}", "sku/location_id", "text", (s, loc))
    if type(avail) is not int:
        raise MappingError(f"level {s}@{loc}", "available", "whole quantity", avail)
    return s, loc, avail


def level_to_storefront(level: StoreLevel, restock_date: str | None = None) -> Raw:
    """The store's inventory write for one SKU-location; restock date and backorder pass through."""
    out: Raw = {"sku": level.sku, "location_id": level.location, "available": level.available}
    restock = restock_date or (level.restock_date.isoformat() if level.restock_date else None)
    if restock:
        out["restock_date"] = restock
    if level.backorderable:
        out["backorderable"] = True
    return out
