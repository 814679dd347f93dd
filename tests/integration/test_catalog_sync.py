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
    return catalog.run(FlowContext.for_run(flow="catalog_sync", run_id=run_id, store=store, erp=erp,
                                           storefront=sf, params=params,
                                           log=logging.getLogger("test.catalog")))


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


# --------------------------------------------------------------------------- the quality gate (issue 6)

GATE_SEED = {"seed": 7, "skus": 40, "customers": 10, "orders": 5}
LONG_NAME = "Steel lamp " * 30  # 330 characters: more than a storefront title holds


def _break(world: Any, item_code: str, **fields: Any) -> None:
    world.admin("erp", "POST", "items", {"item_code": item_code, **fields})


def test_bad_products_are_quarantined_with_their_check_and_value_and_the_rest_is_loaded(
    sandbox: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    sandbox.reset(**GATE_SEED)
    sandbox.clear_faults()
    try:
        # three of the products the store does not have yet (items 5, 10, 15, ... are not published)
        _break(sandbox, "ITEM-000005", description=LONG_NAME)  # fails an expectation
        _break(sandbox, "ITEM-000010", uom="BARREL")  # cannot be mapped
        _break(sandbox, "ITEM-000015", sku="SKU 000015")
        summary = run(store, erp_adapter, storefront_adapter, "r1")
        assert (summary.quarantined, summary.failed) == (3, 0), summary.render()
        reasons = {d.external_id: d.reason for d in store.list_dead_letters(flow="catalog_sync")}
        assert set(reasons) == {"ITEM-000005", "ITEM-000010", "ITEM-000015"}
        # the offending value is quoted bounded (issue 17: a reason never copies a huge value whole)
        name = LONG_NAME.strip()
        assert reasons["ITEM-000005"].startswith(f"name_too_long: name={name[:80]!r}… ({len(name)} characters) "
                                                 "(expect_column_value_lengths_to_be_between(name): name must be")
        assert reasons["ITEM-000010"].startswith("mapping_error:") and "unit_of_measure" in reasons["ITEM-000010"]
        assert "'BARREL'" in reasons["ITEM-000010"]
        assert "sku_no_spaces" in reasons["ITEM-000015"] and "'SKU 000015'" in reasons["ITEM-000015"]
        # none of them was written; the rest was (37 products less the retired ones the store never had)
        after = products(storefront_adapter)
        assert not {"sku-000005", "sku-000010", "sku-000015"} & set(after)
        assert {"sku-000025", "sku-000030", "sku-000035"} <= set(after)
        assert summary.done == GATE_SEED["skus"] - 3 - summary.reasons["retired_not_in_store"]
        # fixed in the ERP, the product goes out with the next run and its dead letter is resolved
        _break(sandbox, "ITEM-000010", uom="EA")
        again = run(store, erp_adapter, storefront_adapter, "r2")
        assert "sku-000010" in products(storefront_adapter) and again.quarantined == 2
        assert {d.external_id for d in store.list_dead_letters(flow="catalog_sync")} == {"ITEM-000005", "ITEM-000015"}
    finally:
        from tests.fixtures.sandbox import TEST_SEED

        sandbox.reset(**TEST_SEED)


def test_a_batch_over_the_catalog_limit_fails_the_run_and_writes_nothing(
    sandbox: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    from erpsync.quality import QualityGateFailed

    sandbox.reset(**GATE_SEED)
    sandbox.clear_faults()
    try:
        for n in (5, 10, 15, 25, 30, 35):  # 6 of 40 products: 15 %, above catalog_sync's 10 %
            _break(sandbox, f"ITEM-{n:06d}", uom="BARREL")
        writes = sandbox.stats("storefront")["writes_committed"]
        with pytest.raises(QualityGateFailed, match=r"catalog_sync/product: 6 of 40 bad \(15.0%, limit 10%\)"):
            run(store, erp_adapter, storefront_adapter, "r1")
        assert sandbox.stats("storefront")["writes_committed"] == writes, "nothing of the batch was loaded"
        assert store.get_cursor("catalog_sync") is None, "the cursor stays: the rerun reads it all again"
        assert len(store.list_dead_letters(flow="catalog_sync")) == 6
    finally:
        from tests.fixtures.sandbox import TEST_SEED

        sandbox.reset(**TEST_SEED)
