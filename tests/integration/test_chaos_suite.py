"""The chaos suite, reduced (a few hundred records per scenario), in the default test command.

Full size: ``python -m benchmarks chaos`` (10,000 orders with commit-then-timeout). Each scenario
runs a writing flow (orders_sync; customers_sync, shipments_sync, returns_sync in the
``*_commit_then_timeout_keys_ignored`` ones) against the real sandbox under its faults; the
target is 0 duplicated and 0 lost, counted in the target system, and exactly the dead letters and
deliveries each scenario expects (``ChaosResult.expected_dead_letters`` with its reason: none,
except the returns the store must refuse as over_refund; every other record delivered). A dead
letter is not lost, but it is not delivered either: a regression that dead-letters every order
fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.chaos import run_scenario
from tests.fixtures.sandbox import TEST_SEED

pytestmark = pytest.mark.integration

SIZES = {
    "commit_then_timeout_keys_ignored": 300,
    "erp_outage": 150,
    "sigkill": 150,
    "429_storm": 150,
    "out_of_order": 150,
    "customers_commit_then_timeout_keys_ignored": 150,  # storefront customers
    "shipments_commit_then_timeout_keys_ignored": 120,  # orders, each shipped in one or two packages
    "returns_commit_then_timeout_keys_ignored": 120,  # orders, a store return on half of them
    "returns_erp_outage": 90,  # orders, a store return on half of them, most during the outage
}


@pytest.fixture
def chaos_sandbox(sandbox: Any) -> Any:
    yield sandbox
    sandbox.clear_faults()
    sandbox.reset(**TEST_SEED)


@pytest.mark.parametrize("scenario", list(SIZES))
def test_no_order_is_duplicated_or_lost(scenario: str, chaos_sandbox: Any, tmp_path: Path) -> None:
    result = run_scenario(scenario, chaos_sandbox, tmp_path, SIZES[scenario])
    print(result.row())
    assert result.expected >= SIZES[scenario] // 2, result
    assert result.duplicated == 0, result
    assert result.lost == 0, result
    # dead letters: exactly the expected ones (their reason is the scenario's expected_dead_why)
    assert result.dead_letters == result.expected_dead_letters, (result.expected_dead_why, result)
    assert result.unexpected_dead == [], result
    assert result.expected_dead_letters <= max(2, result.expected // 20), result  # a few, never "all"
    # deliveries: every record but the expected dead letters reached the target
    assert result.delivered == result.expected - result.expected_dead_letters, result
    assert not result.notes.startswith("FAILED"), result.notes
    assert result.problems() == [], result.problems()
    if scenario in ("erp_outage", "returns_erp_outage"):
        assert "e-mails: 1 opened, 1 recovered" in result.notes, result.notes
    if scenario == "erp_outage":
        assert "e-mails: 1 opened, 1 recovered" in result.notes and "drained in order" in result.notes
    if scenario == "sigkill":
        assert result.notes.startswith("3 SIGKILLs"), result.notes
