"""The conformance suite, ERP side: every ERP connector with its test server (sandbox, Tryton).
A new ERP connector is done when these pass for it (docs/adding-a-connector.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance import checks

pytestmark = pytest.mark.integration


def test_paging_reads_every_record_once_with_a_concurrent_insert(erp_driver: Any) -> None:
    checks.check_paging_reads_every_record_once(erp_driver)


def test_paging_survives_a_record_changing_mid_read(erp_driver: Any) -> None:
    checks.check_paging_survives_a_record_changing_mid_read(erp_driver)


def test_updated_since_is_inclusive_and_timestamps_round_trip(erp_driver: Any) -> None:
    checks.check_erp_updated_since_is_inclusive(erp_driver)


def test_a_lost_order_answer_is_found_by_its_reference(erp_driver: Any) -> None:
    checks.check_erp_lost_order_answer_is_found_by_reference(erp_driver)


def test_session_expiry_mid_read_is_recovered(erp_driver: Any) -> None:
    checks.check_session_expiry_mid_run_is_recovered(erp_driver)


def test_throttle_retry_after_is_honoured(erp_driver: Any) -> None:
    checks.check_throttle_retry_after_is_honoured(erp_driver)


def test_a_refusal_is_permanent_with_the_systems_message(erp_driver: Any) -> None:
    checks.check_refusal_is_permanent_with_the_systems_message(erp_driver)


def test_money_quantities_and_dates_round_trip(erp_driver: Any) -> None:
    checks.check_erp_money_quantities_round_trip(erp_driver)


def test_an_unknown_sku_is_named(erp_driver: Any) -> None:
    checks.check_erp_unknown_sku_is_named(erp_driver)
