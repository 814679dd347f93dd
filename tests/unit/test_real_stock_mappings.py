"""Golden tests of the stock mappings of the real pair (Tryton -> Vendure) that inventory_sync
picks through the adapters' ``mapping``: raw record in, what the flow works on out."""

from __future__ import annotations

import pytest

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.connectors.tryton import TrytonErpAdapter
from erpsync.connectors.vendure import VendureStorefrontAdapter
from erpsync.errors import MappingError
from erpsync.mappings import erp_tryton, storefront_vendure
from erpsync.mappings.stock import StockFigures
from erpsync.rules.availability import StoreLevel
from erpsync.state.inventory import ItemInfo


def test_the_adapters_name_the_stock_mappings() -> None:
    assert erp_mapping(TrytonErpAdapter).stock_figures is erp_tryton.stock_figures
    assert storefront_mapping(VendureStorefrontAdapter).store_level_of is storefront_vendure.store_level_of


def test_tryton_stock_row_sells_the_forecast_and_has_no_damaged_figure() -> None:
    raw = {"product": 4, "code": "LAMP-1", "warehouse": "WH", "quantity": 7.0, "forecast_quantity": 5.0}
    assert erp_tryton.stock_figures(raw) == StockFigures("LAMP-1", "WH", 5, False, None, None)
    # more expected than allocated: on hand is what may be sold
    assert erp_tryton.stock_figures({**raw, "forecast_quantity": 12.0}).available == 7
    assert erp_tryton.stock_figures({**raw, "quantity": -2.0, "forecast_quantity": -2.0}).available == 0


@pytest.mark.parametrize("field,value", [("code", None), ("warehouse", ""), ("quantity", 1.5),
                                         ("forecast_quantity", "x")])
def test_tryton_stock_row_refuses_what_it_cannot_read(field: str, value: object) -> None:
    raw = {"code": "LAMP-1", "warehouse": "WH", "quantity": 7.0, "forecast_quantity": 7.0, field: value}
    with pytest.raises(MappingError):
        erp_tryton.stock_figures(raw)


def test_tryton_product_is_its_own_sku_and_retired_with_its_template() -> None:
    raw = {"id": 4, "code": "LAMP-1", "active": True, "template.active": True, "write_date": "2026-12-01T10:00:00"}
    assert erp_tryton.item_from_erp(raw) == ItemInfo("LAMP-1", "LAMP-1", True, None)
    assert erp_tryton.item_from_erp({**raw, "template.active": False}).active is False
    assert erp_tryton.item_changed_at(raw) == "2026-12-01T10:00:00"


def test_tryton_forecast_below_zero_is_an_over_allocation_the_other_locations_cover() -> None:
    """Issue 16, 9: sales booked on a warehouse beyond its stock: it sells 0 and is short by
    minus its forecast (``StockFigures.short``), which inventory_sync takes off the item's other
    store locations."""
    raw = {"product": 4, "code": "BULB-1", "warehouse": "WH", "quantity": 3.0, "forecast_quantity": -2.0}
    f = erp_tryton.stock_figures(raw)
    assert (f.available, f.short, f.net) == (0, 2, -2)
    assert erp_tryton.stock_figures({**raw, "forecast_quantity": 1.0}).short == 0


def test_tryton_kit_is_its_components_per_kit() -> None:
    """Issue 16, 8: a Tryton kit (product_kit) carries its components; inventory_sync derives its
    availability from theirs."""
    comps = [{"code": "LAMP-1", "quantity": 1.0, "unit": 1, "default_uom": 1, "fixed": False},
             {"code": "BULB-1", "quantity": 2.0, "unit": 1, "default_uom": 1, "fixed": False}]
    raw = {"id": 9, "code": "DESK-KIT", "type": "kit", "active": True, "kit_components": comps}
    assert erp_tryton.item_from_erp(raw) == ItemInfo("DESK-KIT", "DESK-KIT", True, {"LAMP-1": 1, "BULB-1": 2})
    # what cannot be computed is refused (a dead letter), never sold on a guess
    for bad in ({"fixed": True}, {"quantity": 0.5}, {"unit": 2}, {"code": None}, {"quantity": 0.0}):
        with pytest.raises(MappingError):
            erp_tryton.item_from_erp({**raw, "kit_components": [{**comps[0], **bad}]})
    with pytest.raises(MappingError, match="kit_components"):
        erp_tryton.item_from_erp({**raw, "kit_components": []})


def test_vendure_products_levels_and_orders() -> None:
    product = {"id": "3", "enabled": False, "updatedAt": "2026-12-01T10:00:00.000Z",
               "variants": [{"sku": "TEE-S"}, {"sku": "TEE-M"}]}
    assert storefront_vendure.store_skus_of(product) == [("TEE-S", "3", False), ("TEE-M", "3", False)]
    assert storefront_vendure.product_changed_at(product) == "2026-12-01T10:00:00.000Z"
    level = {"sku": "TEE-S", "stockLocationId": "1", "stockOnHand": 4, "stockAllocated": 1}
    # what Vendure sells there: on hand less its own allocations (issue 16, 4)
    assert storefront_vendure.store_level_of(level) == {
        "sku": "TEE-S", "location": "1", "available": 3, "backorderable": False, "restock_date": None}
    assert storefront_vendure.store_level_of({**level, "stockOnHand": None}) is None
    assert storefront_vendure.level_to_storefront(StoreLevel("TEE-S", "1", 4, False, None, None)) == {
        "sku": "TEE-S", "location_id": "1", "available": 4}
    order = {"code": "ABC", "state": "PaymentSettled",
             "lines": [{"quantity": 2, "productVariant": {"sku": "TEE-S"}}]}
    assert storefront_vendure.in_flight_lines(order) == ("ABC", [("TEE-S", 2)])
    assert storefront_vendure.in_flight_lines({**order, "state": "Cancelled"}) is None
    assert storefront_vendure.in_flight_lines({**order, "state": "AddingItems"}) is None
