"""Test seams are not production Params (issue 19): a person triggering a run could pin
pricing_sync's clock (``now``) or hand the fast lane a sleep (``_sleep``) through the run's conf.
Now both are refused with a clear error before anything is read or written, and tests replace
``pricing.clock`` / ``inventory.poll_sleep`` instead (see tests/integration/test_pricing_sync.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from erpsync.errors import ConfigError
from erpsync.flows import inventory, pricing
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore

pytestmark = pytest.mark.integration


def ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                               log=logging.getLogger(f"test.{flow}"))


def test_a_run_conf_cannot_pin_the_clock_or_the_sleep(fresh, store, erp_adapter, storefront_adapter) -> None:
    before = fresh.stats("storefront")["writes_committed"]
    with pytest.raises(ConfigError, match=r"pricing_sync: param\(s\) now are not settings"):
        pricing.run(ctx("pricing_sync", store, erp_adapter, storefront_adapter, "p1", now="2026-11-24T12:00:00Z"))
    with pytest.raises(ConfigError, match=r"inventory_fast_lane: param\(s\) _sleep are not settings"):
        inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f1",
                                    fast_lane_skus=["SKU-000007"], _sleep="anything"))
    assert fresh.stats("storefront")["writes_committed"] == before  # refused before any write
    assert store.list_dead_letters(limit=10) == []


def test_the_fast_lane_waits_through_its_module_hook(fresh, store, erp_adapter, storefront_adapter,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(inventory, "poll_sleep", sleep)
    # a pass takes well under the 2 s left after it, even on a loaded machine: at least one wait
    params = {"fast_lane_skus": ["SKU-000007"], "poll_seconds": 1, "budget_seconds": 3}
    inventory.run(ctx("inventory_sync", store, erp_adapter, storefront_adapter, "r1", **params))  # items, SKUs
    summary = inventory.run_fast_lane(ctx("inventory_fast_lane", store, erp_adapter, storefront_adapter, "f1",
                                          **params))
    assert slept and set(slept) == {1.0}  # polled again after each injected wait
    assert not summary.failed
