"""Golden tests of the catalog and pricing specs of Tryton (mappings/erp_tryton.py) and Vendure
(mappings/storefront_vendure.py): literal raw records as the adapters return them -> canonical
records -> Vendure payloads. The raw records are copied from a Tryton 8.2 and a Vendure 3.7."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.connectors.tryton import TrytonErpAdapter
from erpsync.connectors.vendure import VendureStorefrontAdapter
from erpsync.errors import MappingError, UnsupportedError
from erpsync.mappings import erp_sandbox, erp_tryton, storefront_sandbox, storefront_vendure
from erpsync.mappings.refs import CatalogItem, PriceRef
from erpsync.model import PriceEntry, PriceKind

#: a Tryton ``product.product`` as TrytonErpAdapter.list_items reads it (a product of its own)
LAMP = {
    "id": 2, "code": "LAMP-1", "suffix_code": "LAMP-1", "name": "Desk lamp", "active": True, "type": "goods",
    "list_price": None, "list_price_used": "39.90", "cost_price": "12.5000", "default_uom.symbol": "u",
    "default_uom.id": 1, "template": 2, "description": None,
    "create_date": "2026-12-03T07:51:18.900205Z", "write_date": "2026-12-03T07:51:18.900205Z",
    "template.id": 2, "template.code": None, "template.name": "Desk lamp", "template.active": True,
    "template.create_date": "2026-12-03T07:51:18.900205Z", "template.write_date": "2026-12-03T09:00:00.000000Z",
}
#: the two products of a template with a code (variants TEE-S and TEE-M)
TEE_S = {
    "id": 3, "code": "TEE-S", "suffix_code": "-S", "name": "T-shirt", "active": True, "type": "goods",
    "list_price": None, "list_price_used": "20.00", "cost_price": "5", "default_uom.symbol": "u", "template": 3,
    "create_date": "2026-12-03T08:05:10.384554Z", "write_date": "2026-12-03T08:05:10.384554Z",
    "template.id": 3, "template.code": "TEE", "template.name": "T-shirt", "template.active": True,
    "template.create_date": "2026-12-03T08:05:10.384554Z", "template.write_date": None,
}
TEE_M = {**TEE_S, "id": 4, "code": "TEE-M", "suffix_code": "-M", "write_date": "2026-12-04T10:00:00.000000Z"}
#: a price row of TrytonErpAdapter.list_prices
LAMP_PRICE = {"code": "LAMP-1", "list_price": "39.90", "currency": "USD", "write_date": "2026-12-03T09:00:00.000000Z"}


# --------------------------------------------------------------------------- the adapters name their mappings


def test_flows_find_the_catalog_and_pricing_specs_through_the_adapters() -> None:
    tryton = TrytonErpAdapter("http://127.0.0.1:8000/db", "admin", "pw")
    vendure = VendureStorefrontAdapter("http://127.0.0.1:3000", "pw", username="superadmin")
    assert erp_mapping(tryton) is erp_tryton and storefront_mapping(vendure) is storefront_vendure
    assert erp_mapping(object()) is erp_sandbox and storefront_mapping(object()) is storefront_sandbox
    names = ("catalog_item", "product_from_erp", "price_ref", "price_spec", "price_from_erp")
    assert all(callable(getattr(m, n)) for m in (erp_tryton, erp_sandbox) for n in names)
    names = ("handle_of", "product_handle", "product_to_storefront", "target_of", "variant_price",
             "published_prices")
    assert all(callable(getattr(m, n)) for m in (storefront_vendure, storefront_sandbox) for n in names)


# --------------------------------------------------------------------------- Tryton -> canonical


def test_golden_tryton_catalog_item() -> None:
    # the template's later change counts: its list price is the product's
    assert erp_tryton.catalog_item(LAMP) == CatalogItem(
        code="LAMP-1", sku="LAMP-1", template=None, updated_at="2026-12-03T09:00:00.000000Z",
        list_price="39.90", cost="12.5000", currency=None, active=True)
    assert erp_tryton.catalog_item(TEE_M) == CatalogItem(
        code="TEE-M", sku="TEE-M", template="TEE", updated_at="2026-12-04T10:00:00.000000Z",
        list_price="20.00", cost="5", currency=None, active=True)
    # retired: the product or its template inactive
    assert erp_tryton.catalog_item({**LAMP, "template.active": False}).active is False
    assert erp_tryton.catalog_item({**LAMP, "active": False}).active is False
    # a change time that is not one is left out (the template's is the product's then)
    assert erp_tryton.catalog_item({**LAMP, "write_date": "yesterday"}).updated_at == "2026-12-03T09:00:00.000000Z"
    # a variant's own list price wins over the template's
    assert erp_tryton.catalog_item({**LAMP, "list_price_used": None, "list_price": "41.00"}).list_price == "41.00"


def test_golden_tryton_product_of_its_own() -> None:
    assert erp_tryton.product_from_erp([LAMP]).to_dict() == {
        "code": "LAMP-1", "name": "Desk lamp", "description": "", "category": None, "brand": None,
        "variants": [{"sku": "LAMP-1", "name": "Desk lamp", "attributes": {}, "barcode": None,
                      "weight_grams": None, "uom": "EA", "active": True}],
        "is_kit": False, "kit_components": {}, "active": True, "updated_at": "2026-12-03T09:00:00+00:00",
    }


def test_golden_tryton_template_with_variants_and_a_retired_one() -> None:
    p = erp_tryton.product_from_erp([TEE_S, {**TEE_M, "active": False}])
    assert p.to_dict() == {
        "code": "TEE", "name": "T-shirt", "description": "", "category": None, "brand": None,
        "variants": [
            {"sku": "TEE-M", "name": "T-shirt M", "attributes": {"Variant": "M"}, "barcode": None,
             "weight_grams": None, "uom": "EA", "active": False},
            {"sku": "TEE-S", "name": "T-shirt S", "attributes": {"Variant": "S"}, "barcode": None,
             "weight_grams": None, "uom": "EA", "active": True},
        ],
        "is_kit": False, "kit_components": {}, "active": True, "updated_at": "2026-12-04T10:00:00+00:00",
    }
    retired = erp_tryton.product_from_erp([{**TEE_S, "template.active": False}, {**TEE_M, "template.active": False}])
    assert retired.active is False and not any(v.active for v in retired.variants)


@pytest.mark.parametrize(
    ("patch", "field", "rule"),
    [
        ({"code": None}, "code", "required"),
        ({"code": "LAMP 1"}, "code", "sku_no_spaces"),
        ({"name": "  ", "template.name": None}, "name", "required"),
        ({"default_uom.symbol": "kg"}, "uom", "unit_of_measure"),
    ],
)
def test_tryton_product_mapping_errors_name_record_field_and_rule(patch: dict, field: str, rule: str) -> None:
    with pytest.raises(MappingError) as err:
        erp_tryton.product_from_erp([{**LAMP, **patch}])
    text = str(err.value)
    assert "tryton product" in text and field in text and rule in text


def test_tryton_duplicate_variant_skus_are_refused() -> None:
    with pytest.raises(MappingError, match="unique"):
        erp_tryton.product_from_erp([TEE_S, {**TEE_M, "code": "TEE-S"}])


def test_golden_tryton_price_row() -> None:
    assert erp_tryton.price_ref(LAMP_PRICE) == PriceRef(
        item_code="LAMP-1", row_id="LAMP-1/LIST/USD/1", updated_at="2026-12-03T09:00:00.000000Z")
    entry = erp_tryton.price_from_erp(LAMP_PRICE, {"LAMP-1": "LAMP-1"}.get)
    assert entry == PriceEntry(sku="LAMP-1", price=D("39.90"), currency="USD", kind=PriceKind.BASE,
                               price_list="LIST", min_quantity=1)
    spec = erp_tryton.price_spec({"LAMP-1": "LAMP-1"}.get)  # built once per chunk by the flow
    assert erp_tryton.price_from_erp({**LAMP_PRICE, "list_price": "35.0000"}, {}.get, spec=spec).price == D("35.00")


@pytest.mark.parametrize(
    ("patch", "field", "rule"),
    [
        ({"code": "GHOST-1"}, "code", "item_xref"),  # an item the run has not read
        ({"list_price": "-1.00"}, "list_price", "price_not_negative"),
        ({"list_price": None}, "list_price", "required"),
        ({"currency": "usd"}, "currency", "iso4217"),
    ],
)
def test_tryton_price_mapping_errors(patch: dict, field: str, rule: str) -> None:
    with pytest.raises(MappingError) as err:
        erp_tryton.price_from_erp({**LAMP_PRICE, **patch}, {"LAMP-1": "LAMP-1"}.get)
    text = str(err.value)
    assert "tryton price" in text and field in text and rule in text


# --------------------------------------------------------------------------- canonical -> Vendure


def test_golden_vendure_product_payloads() -> None:
    lamp = erp_tryton.product_from_erp([LAMP])
    assert storefront_vendure.handle_of(lamp) == "lamp-1"
    # a new product: its first price in minor units
    assert storefront_vendure.product_to_storefront(lamp, prices={"LAMP-1": D("39.90")}) == {
        "name": "Desk lamp", "slug": "lamp-1", "enabled": True,
        "variants": [{"sku": "LAMP-1", "name": "Desk lamp", "enabled": True, "price": 3990}],
    }
    # an update: no price (pricing_sync's) and no description (the store's copy)
    assert storefront_vendure.product_to_storefront(lamp) == {
        "name": "Desk lamp", "slug": "lamp-1", "enabled": True,
        "variants": [{"sku": "LAMP-1", "name": "Desk lamp", "enabled": True}],
    }
    # a draft (no valid first price) is created disabled
    assert storefront_vendure.product_to_storefront(lamp, prices={}, draft=True)["enabled"] is False
    tee = erp_tryton.product_from_erp([TEE_S, TEE_M])
    assert storefront_vendure.product_to_storefront(tee, prices={"TEE-S": D("20"), "TEE-M": D("20")}) == {
        "name": "T-shirt", "slug": "tee", "enabled": True,
        "variants": [
            {"sku": "TEE-M", "name": "T-shirt M", "enabled": True, "options": {"Variant": "M"}, "price": 2000},
            {"sku": "TEE-S", "name": "T-shirt S", "enabled": True, "options": {"Variant": "S"}, "price": 2000},
        ],
    }
    # retired: unpublished (disabled), product and variants, never deleted
    retired = erp_tryton.product_from_erp([{**LAMP, "template.active": False}])
    assert storefront_vendure.product_to_storefront(retired) == {
        "name": "Desk lamp", "slug": "lamp-1", "enabled": False,
        "variants": [{"sku": "LAMP-1", "name": "Desk lamp", "enabled": False}],
    }


def test_vendure_first_price_must_be_whole_cents() -> None:
    lamp = erp_tryton.product_from_erp([LAMP])
    with pytest.raises(MappingError, match="minor_units"):
        storefront_vendure.product_to_storefront(lamp, prices={"LAMP-1": D("39.905")})


def test_golden_vendure_product_handle_and_published_prices() -> None:
    raw = {"id": "1", "name": "Desk lamp", "slug": "lamp-1", "enabled": True, "variants": [
        {"id": "1", "sku": "LAMP-1", "price": 3990, "currencyCode": "USD"},
        {"id": "2", "sku": "LAMP-2", "price": 5, "currencyCode": "USD"},
        {"id": "3", "sku": None, "price": 100}]}
    assert storefront_vendure.product_handle(raw) == "lamp-1"
    assert list(storefront_vendure.published_prices(raw)) == [("LAMP-1", "39.9", None), ("LAMP-2", "0.05", None)]


def _entry(**kw: object) -> PriceEntry:
    base: dict = {"sku": "LAMP-1", "price": D("39.90"), "currency": "USD"}
    return PriceEntry(**{**base, **kw})  # type: ignore[arg-type]


def test_golden_vendure_price_targets_and_payloads() -> None:
    assert storefront_vendure.target_of(_entry(), "USD").handle == "variant"
    sale = _entry(kind=PriceKind.SALE, price_list="SALE-BF", effective_from=dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
    assert storefront_vendure.target_of(sale, "USD").handle == "variant"  # the variant's price for its dates
    assert storefront_vendure.variant_price("LAMP-1", D("35.00"), None, currency="USD") == {
        "sku": "LAMP-1", "price": 3500, "currency": "USD"}
    assert storefront_vendure.variant_price("LAMP-1", D("29.99"), D("39.90"), currency="USD") == {
        "sku": "LAMP-1", "price": 2999, "currency": "USD", "compare_at_price": 3990}


@pytest.mark.parametrize(
    ("kw", "target", "why"),
    [
        ({"kind": PriceKind.CUSTOMER, "customer_id": "CUST-000021", "price_list": "CONTRACT-CUST-000021"},
         "customer-cust-000021-usd", "no customer-specific price lists"),
        ({"kind": PriceKind.GROUP, "customer_group": "wholesale", "price_list": "WHOLESALE"},
         "group-wholesale-usd", "no customer-group price lists"),
        ({"currency": "EUR", "price_list": "LIST-EUR"}, "currency-eur", "shop currency USD only"),
        ({"min_quantity": 10}, "qty-10-usd", "no quantity-break prices"),
    ],
)
def test_what_vendure_has_no_place_for_is_refused_with_its_reason(kw: dict, target: str, why: str) -> None:
    with pytest.raises(UnsupportedError) as err:
        storefront_vendure.target_of(_entry(**kw), "USD")
    assert err.value.target == target and why in err.value.reason
