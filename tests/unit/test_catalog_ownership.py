"""System of record per field: flows never write a field the target owns."""

from __future__ import annotations

import pytest

from erpsync import ownership
from erpsync.mappings.erp_sandbox import customer_update_to_erp
from erpsync.model import Address, Customer
from erpsync.ownership import ERP, STOREFRONT, OwnershipError, check_writable, writable


def test_registry_names_an_owner_for_the_fields_of_the_pain_story() -> None:
    assert ownership.owned_by("customer", "credit_limit") == ERP
    assert ownership.owned_by("customer", "payment_terms") == ERP
    assert ownership.owned_by("product", "description") == STOREFRONT
    assert ownership.owned_by("product", "variants.price") == ERP


def test_writable_drops_target_owned_fields_and_prices_outside_pricing() -> None:
    payload = {
        "title": "Lamp",
        "description": "storefront copy",
        "tags": ["x"],
        "status": "active",
        "variants": [{"sku": "S1", "price": "9.99", "inventory_policy": "deny", "title": "Default"}],
    }
    out = writable("product", payload, ERP, flow="catalog_sync")
    assert out == {"title": "Lamp", "status": "active", "variants": [{"sku": "S1", "title": "Default"}]}
    priced = writable("product", payload, ERP, flow="pricing_sync")
    assert priced["variants"] == [{"sku": "S1", "price": "9.99", "title": "Default"}]
    with pytest.raises(OwnershipError, match=r"product\.description"):
        check_writable("product", payload, ERP, flow="catalog_sync")


def test_customers_flow_update_payload_respects_the_registry() -> None:
    """customers_sync (storefront -> ERP) updates only storefront-owned fields."""
    c = Customer(external_id="C1", email="a@b.co", first_name="A", last_name="B",
                 addresses=[Address(line1="1 St", city="X", postcode="1", country="US")])
    check_writable("customer", customer_update_to_erp(c), STOREFRONT)
