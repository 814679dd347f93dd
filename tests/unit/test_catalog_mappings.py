"""Golden tests of the catalog specs and of the extra transforms: literal input -> expected output."""

from __future__ import annotations

import datetime as dt

import pytest

from erpsync.errors import MappingError
from erpsync.mappings import transforms as tf
from erpsync.mappings.engine import F, RuleViolation, apply_spec
from erpsync.mappings.erp_catalog import product_from_erp
from erpsync.mappings.storefront_catalog import product_to_storefront

SKUS = {"ITEM-000001": "SKU-000001", "ITEM-000002": "SKU-000002"}.get

ITEM = {
    "item_code": "ITEM-000050", "sku": " sku-000050 ", "description": " Steel Lamp 50 ", "uom": "box",
    "active": True, "cost": "10.00", "list_price": "19.99", "currency": "USD",
    "kit_components": [{"item_code": "ITEM-000001", "qty": 2}, {"item_code": "ITEM-000002", "qty": "1"}],
    "weight": "1.25", "weight_uom": "kg", "barcode": "4006381333931", "brand": "Acme", "item_group": "Lamps",
    "modified_at": "2026-10-01T08:00:00Z",
}


def test_golden_single_item_product_and_its_storefront_payload() -> None:
    p = product_from_erp([ITEM], SKUS)
    assert p.to_dict() == {
        "code": "ITEM-000050", "name": "Steel Lamp 50", "description": "", "category": "Lamps", "brand": "Acme",
        "variants": [{"sku": "SKU-000050", "name": "Steel Lamp 50", "attributes": {}, "barcode": "4006381333931",
                      "weight_grams": 1250, "uom": "BOX", "active": True}],
        "is_kit": True, "kit_components": {"SKU-000001": 2, "SKU-000002": 1}, "active": True,
        "updated_at": "2026-10-01T08:00:00+00:00",
    }
    assert product_to_storefront(p) == {
        "handle": "sku-000050", "title": "Steel Lamp 50", "vendor": "Acme", "product_type": "Lamps",
        "status": "active",
        "variants": [{"sku": "SKU-000050", "title": "Default", "option_values": {}, "barcode": "4006381333931",
                      "weight_grams": 1250, "uom": "BOX"}],
    }


def test_golden_template_with_variants_and_a_retired_product() -> None:
    red = {"item_code": "TSHIRT-R", "variant_of": "TSHIRT", "template_description": "T-shirt", "sku": "TS-R",
           "description": "T-shirt red", "attributes": [{"attribute": "Colour", "value": "Red"}], "active": False,
           "modified_at": "2026-10-02T00:00:00Z", "weight": "8", "weight_uom": "oz"}
    blue = {**red, "item_code": "TSHIRT-B", "sku": "TS-B", "description": "T-shirt blue",
            "attributes": {"Colour": "Blue"}, "modified_at": "2026-10-03T00:00:00Z"}
    p = product_from_erp([red, blue], SKUS)
    assert (p.code, p.name, p.active, [v.sku for v in p.variants]) == ("TSHIRT", "T-shirt", False, ["TS-B", "TS-R"])
    assert p.variants[0].attributes == {"Colour": "Blue"} and p.variants[0].weight_grams == 227
    assert p.updated_at == dt.datetime(2026, 10, 3, tzinfo=dt.UTC)
    payload = product_to_storefront(p)
    assert payload["handle"] == "tshirt" and payload["status"] == "archived"
    assert [v["title"] for v in payload["variants"]] == ["Blue", "Red"]


@pytest.mark.parametrize(
    ("patch", "field", "rule"),
    [
        ({"sku": None}, "sku", "required"),
        ({"sku": "SKU 1"}, "sku", "sku_no_spaces"),
        ({"uom": "BARREL"}, "uom", "unit_of_measure"),
        ({"weight_uom": "stone"}, "weight_grams", "unit_of_measure"),
        ({"kit_components": [{"item_code": "ITEM-404", "qty": 1}]}, "kit_components", "item_xref"),
        ({"kit_components": [{"item_code": "ITEM-000001", "qty": 0}]}, "kit_components", "quantity"),
        ({"active": "yes"}, "active", "bool"),
        ({"modified_at": "yesterday"}, "modified_at", "iso8601"),
    ],
)
def test_mapping_errors_name_record_field_and_rule(patch: dict, field: str, rule: str) -> None:
    with pytest.raises(MappingError) as err:
        product_from_erp([{**ITEM, **patch}], SKUS)
    text = str(err.value)
    assert "ITEM-000050" in text and field in text and rule in text


# --------------------------------------------------------------------------- transforms


@pytest.mark.parametrize(("value", "expected"), [("de", "DE"), ("DEU", "DE"), ("Deutschland", "DE"),
                                                  (" united kingdom ", "GB"), ("USA", "US")])
def test_country_codes_to_iso_3166(value: str, expected: str) -> None:
    assert tf.country_iso(value) == expected


def test_unknown_country_is_refused() -> None:
    with pytest.raises(RuleViolation, match="iso3166"):
        tf.country_iso("Atlantis")


def test_date_formats_and_case_and_trim() -> None:
    parse = tf.date_in("%d/%m/%Y")
    assert parse("31/12/2025") == dt.datetime(2025, 12, 31, tzinfo=dt.UTC)
    assert parse("2025-12-31T10:00:00+01:00") == dt.datetime(2025, 12, 31, 9, tzinfo=dt.UTC)
    with pytest.raises(RuleViolation, match="date_format"):
        parse("12/31/2025")
    assert tf.chain(tf.upper)("  ab ") == "AB" and tf.lower(" AB") == "ab" and tf.title("steel lamp") == "Steel Lamp"


def test_units_and_minor_units() -> None:
    grams = tf.unit(tf.WEIGHT_GRAMS)
    assert grams(("2", "lb")) == 907 and grams(("0.5", "KG")) == 500
    cents = tf.minor_units({"USD": 2, "JPY": 0, "KWD": 3})
    assert cents(("12.34", "USD")) == 1234 and cents(("500", "JPY")) == 500 and cents(("1.234", "KWD")) == 1234
    for bad in (("12.345", "USD"), ("1.5", "JPY"), ("1", "XXX")):
        with pytest.raises(RuleViolation):
            cents(bad)


def test_defaults_when_empty_and_lookup_through_xref() -> None:
    spec = [F("code", "code", tf.lookup({"A": "1"}.get, "item_xref"), required=True),
            F("uom", "uom", tf.uom, default="EA"), F("price", "p", tf.minor_units({"USD": 2}))]
    assert apply_spec(spec, {"code": "A", "uom": "  "}, "r") == {"code": "1", "uom": "EA"}
    with pytest.raises(MappingError, match="item_xref"):
        apply_spec(spec, {"code": "B"}, "r")
