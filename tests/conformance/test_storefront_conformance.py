"""The conformance suite, storefront side: every storefront connector with its test server
(sandbox, Vendure). A new storefront connector is done when these pass for it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance import checks
from tests.conformance.drivers import tag

pytestmark = pytest.mark.integration


def test_paging_reads_every_record_once_with_a_concurrent_insert(store_driver: Any) -> None:
    checks.check_paging_reads_every_record_once(store_driver)


def test_paging_survives_a_record_changing_mid_read(store_driver: Any) -> None:
    checks.check_paging_survives_a_record_changing_mid_read(store_driver)


def test_paging_reads_records_sharing_one_change_time_once(store_driver: Any, request: pytest.FixtureRequest) -> None:
    if store_driver.label == "storefront:vendure":  # the tie is made in Vendure's database
        store_driver.database = request.getfixturevalue("conformance_pair").vendure.database
    checks.check_paging_reads_records_sharing_one_change_time_once(store_driver)


def test_order_window_is_since_inclusive_before_exclusive(store_driver: Any) -> None:
    if hasattr(store_driver, "place_order"):
        sku = f"CONF-W-{tag()}".upper()
        store_driver.product(sku, "4.00")
        order = store_driver.place_order(sku)
    else:
        key = store_driver.insert()
        order = next(r for r in store_driver.adapter.list_orders() if store_driver.order_key(r) == key)
    checks.check_store_order_window_is_since_inclusive_before_exclusive(store_driver, order)


def test_a_lost_product_answer_makes_no_duplicate(store_driver: Any) -> None:
    checks.check_store_lost_product_answer_makes_no_duplicate(store_driver)


def test_session_expiry_mid_read_is_recovered(store_driver: Any) -> None:
    checks.check_session_expiry_mid_run_is_recovered(store_driver)


def test_throttle_retry_after_is_honoured(store_driver: Any) -> None:
    checks.check_throttle_retry_after_is_honoured(store_driver)


def test_a_refusal_is_permanent_with_the_systems_message(store_driver: Any) -> None:
    checks.check_refusal_is_permanent_with_the_systems_message(store_driver)


def test_money_and_quantities_round_trip(store_driver: Any) -> None:
    checks.check_store_money_quantities_round_trip(store_driver)


def test_an_unknown_sku_is_named(store_driver: Any) -> None:
    checks.check_store_unknown_sku_is_named(store_driver)
