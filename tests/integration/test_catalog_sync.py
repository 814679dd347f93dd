"""catalog_sync end to end against the sandbox: create missing products, never touch what the
storefront owns, unpublish (never delete) retired products, write nothing on an unchanged rerun."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from erpsync.flows import catalog
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.state import StateStore

pytestmark = pytest.mark.integration

SEED = {"seed": 7, "skus": 25, "customers": 10, "orders": 5}


def run(store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> RunSummary:
    return catalog.run(FlowContext(flow="catalog_sync", run_id=run_id, store=store, erp=erp, storefront=sf,
                                   params=params, log=logging.getLogger("test.catalog")))


def products(sf: Any) -> dict[str, dict]:
    return {p["handle"]: p for p in sf.list_products()}


@pytest.fixture
def world(sandbox: Any) -> Any:
    sandbox.reset(**SEED)
    sandbox.clear_faults()
    yield sandbox
    from tests.fixtures.sandbox import TEST_SEED

    sandbox.reset(**TEST_SEED)


def test_full_sync_creates_binds_and_keeps_storefront_fields(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    before = products(storefront_adapter)
    assert "sku-000005" not in before  # items 5, 10, ... are not in the store yet
    summary = run(store, erp_adapter, storefront_adapter, "r1")
    assert summary.quarantined == 0 and summary.failed == 0
    after = products(storefront_adapter)
    new = after["sku-000005"]
    item = next(i for i in erp_adapter.list_items() if i["sku"] == "SKU-000005")
    assert new["status"] == "active" and new["variants"][0]["price"] == item["list_price"]
    kept = after["sku-000001"]
    assert kept["description"] == before["sku-000001"]["description"]  # storefront-owned
    assert kept["variants"][0]["price"] == before["sku-000001"]["variants"][0]["price"]  # pricing_sync's
    assert kept["variants"][0]["inventory_policy"] == "deny"
    # the cross reference the inventory flow reads: SKU -> storefront product
    assert store.get_xref("storefront", "variant", "SKU-000005").internal_id == new["id"]
    # retired items the store never had are not created
    assert "sku-000020" not in after and summary.reasons["retired_not_in_store"] >= 1


def test_second_run_with_no_change_writes_nothing(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    writes = world.stats("storefront")["writes_committed"]
    again = run(store, erp_adapter, storefront_adapter, "r2", full_pass=True)
    assert world.stats("storefront")["writes_committed"] == writes
    assert again.done == 0 and again.skipped == again.reasons["unchanged"] + again.reasons["retired_not_in_store"]
    incremental = run(store, erp_adapter, storefront_adapter, "r3")
    assert incremental.done == 0 and world.stats("storefront")["writes_committed"] == writes


def test_a_retired_product_is_unpublished_not_deleted(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000002", "active": False})
    summary = run(store, erp_adapter, storefront_adapter, "r2")
    assert summary.done == 1 and summary.reasons["unpublished"] == 1
    p = products(storefront_adapter)["sku-000002"]
    assert p["status"] == "archived" and p["variants"][0]["sku"] == "SKU-000002"


def test_mapping_error_dead_letters_one_product_and_the_batch_goes_on(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000003", "uom": "BARREL"})
    summary = run(store, erp_adapter, storefront_adapter, "r1")
    assert summary.quarantined == 1 and summary.done > 10
    (dl,) = store.list_dead_letters(flow="catalog_sync")
    assert dl.external_id == "ITEM-000003" and "unit_of_measure" in dl.reason
