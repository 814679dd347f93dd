"""Tryton stock and products as inventory_sync reads them (re-exported by ``erp_tryton``).

A raw stock row is one product in one warehouse (``TrytonErpAdapter.list_stock``): ``code``,
``warehouse`` (the warehouse location's code), ``quantity`` (on hand) and ``forecast_quantity``
(on hand minus what confirmed sales will take, plus what is expected), both computed by Tryton
from the moves with the warehouse in the context.

What Tryton has no figure for maps to 0: Tryton knows no ``reserved``, ``damaged``,
``quarantined`` or ``safety_stock`` quantity (damaged or held goods are moved to other locations,
which are not the warehouse's, so they are already out of ``quantity``); ``allocated`` is the
forecast's shortfall, ``max(0, quantity - forecast_quantity)``. Tryton has no backorder flag or
restock date on a product: ``backorderable`` False, ``restock_date`` None. A product carries no
stock change time (a move does not touch its ``write_date``): ``modified`` is None, so the
adapter reads the whole warehouse every cycle and only the differences are pushed.

A product's code is its SKU and its item code; the product or its template inactive = inactive
(sold as 0). A kit (``product_kit``) has no stock of its own: its availability per store location
is derived from its components' (``rules.availability.kit_available``), as on every ERP.

Tryton's figures and the store's (issue 16, 4): available to sell per warehouse is
``min(quantity, forecast_quantity)`` (the forecast already takes off the confirmed sales not
shipped yet; incoming goods not received are not sold). A warehouse whose forecast is below 0 is
over-allocated by that much, taken off the item's other store locations. The store is sent this
figure as what it may *sell*; each store mapping turns it into its own figures (Vendure:
``stockOnHand = saleable + stockAllocated``, ``vendure_stock``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import MappingError
from erpsync.mappings.stock import StockFigures, record_key
from erpsync.rules.availability import figures_to_sell, over_allocated
from erpsync.state.inventory import ItemInfo


def _whole(value: Any, record: str, field: str) -> int:
    try:
        q = Decimal(str(0 if value is None else value))
    except InvalidOperation:
        raise MappingError(record, field, "whole quantity", value) from None
    if not q.is_finite() or q != q.to_integral_value():
        raise MappingError(record, field, "whole quantity", value)
    return int(q)


def _figures(raw: Mapping[str, Any]) -> tuple[str, str, int, int]:
    """(code, warehouse, on hand, allocated = the forecast's shortfall) of one Tryton stock row."""
    code, wh = raw.get("code"), raw.get("warehouse")
    record = f"tryton stock {code}@{wh}"
    if not isinstance(code, str) or not code:
        raise MappingError(record, "code", "text", code)
    if not isinstance(wh, str) or not wh:
        raise MappingError(record, "warehouse", "text", wh)
    on_hand = _whole(raw.get("quantity"), record, "quantity")
    forecast = _whole(raw.get("forecast_quantity"), record, "forecast_quantity")
    return code, wh, on_hand, max(0, on_hand - forecast)


def stock_figures(raw: Mapping[str, Any], *, include_safety_stock: bool = True) -> StockFigures:
    """One Tryton stock row: available to sell = on hand minus the forecast's shortfall."""
    code, wh, on_hand, allocated = _figures(raw)
    return StockFigures(code, wh, figures_to_sell(on_hand, allocated, 0, 0, 0, 0), False, None, None,
                        over_allocated(on_hand, allocated, 0, 0, 0))


def stock_level(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What the quality gate checks of one Tryton stock row (the columns of the suite ``stock``):
    on hand, and the forecast's shortfall as allocated (the only figures Tryton has); raises
    MappingError as :func:`stock_figures` does."""
    code, wh, on_hand, allocated = _figures(raw)
    zero = dict.fromkeys(("reserved", "damaged", "quarantined", "safety_stock"), 0)
    return {"sku": code, "location": wh, "key": f"{code}@{wh}", "on_hand": on_hand, "allocated": allocated, **zero}


def stock_key(raw: Mapping[str, Any]) -> str:
    """The id a dead letter of one Tryton stock row is filed under: ``code@warehouse``."""
    return record_key(raw, "code", "warehouse")


def item_from_erp(raw: Mapping[str, Any]) -> ItemInfo:
    """A Tryton product: code = item code = SKU; inactive if it or its template is. A kit
    (type ``kit``, module ``product_kit``) carries its components (``kit_components``, read by
    the adapter): component code -> whole quantity per kit, in the component's own unit; a
    component with a fixed quantity, a fraction or another unit is refused (MappingError: the kit
    is dead-lettered, never sold on a figure we cannot compute)."""
    code = raw.get("code")
    record = f"tryton product {raw.get('id', '?')}"
    if not isinstance(code, str) or not code:
        raise MappingError(record, "code", "text", code)
    active = raw.get("active", True) is not False and raw.get("template.active", True) is not False
    if raw.get("type") != "kit":
        return ItemInfo(code, code, active, None)
    record = f"tryton kit {code}"
    kit: dict[str, int] = {}
    for comp in raw.get("kit_components") or []:
        c = comp.get("code")
        if not isinstance(c, str) or not c:
            raise MappingError(record, "kit_components.code", "text", c)
        if comp.get("fixed"):
            raise MappingError(record, f"kit_components[{c}].fixed", "a quantity per kit (not fixed)", True)
        if comp.get("unit") != comp.get("default_uom"):
            raise MappingError(record, f"kit_components[{c}].unit", "the component's own unit",
                               comp.get("unit"))
        q = _whole(comp.get("quantity"), record, f"kit_components[{c}].quantity")
        if q <= 0:
            raise MappingError(record, f"kit_components[{c}].quantity", "a positive whole quantity", q)
        kit[c] = kit.get(c, 0) + q
    if not kit:
        raise MappingError(record, "kit_components", "at least one component", [])
    return ItemInfo(code, code, active, kit)
