"""Where a run's breakers, throttles and masked log come from (issue 19): ``FlowContext.for_run``
attaches them, explicitly; constructing a ``FlowContext`` attaches nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from erpsync.connectors.registry import build_erp, build_storefront
from erpsync.flows.base import FlowContext
from erpsync.reliability import BreakerGuard, breaker_for
from erpsync.reliability.budget import SharedRate
from erpsync.state import StateStore
from erpsync.state.redact import PersonalDataFilter


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def adapters() -> tuple[Any, Any]:
    """Real HTTP-backed adapters (nothing listens on port 1: no request is made here)."""
    erp = build_erp("sandbox", "http://127.0.0.1:1", "u", "p", {"rps": 40})
    storefront = build_storefront("sandbox", "http://127.0.0.1:1", "t", {"rps": 20})
    return erp, storefront


def masks(log: logging.Logger) -> bool:
    return any(isinstance(f, PersonalDataFilter) for f in log.filters)


def test_constructing_a_context_attaches_nothing(store: StateStore) -> None:
    erp, sf = adapters()
    log = logging.getLogger("test.builder.plain")
    FlowContext(flow="orders_sync", run_id="r1", store=store, erp=erp, storefront=sf, log=log)
    assert erp.http.guard is None and sf.http.guard is None
    assert erp.http.throttle is None and sf.http.throttle is None
    assert not masks(log)


def test_for_run_attaches_each_systems_breaker_and_budget_then_masks_the_log(store: StateStore) -> None:
    erp, sf = adapters()
    log = logging.getLogger("test.builder.run")
    ctx = FlowContext.for_run("orders_sync", "r1", store, erp, sf, log=log, params={"breaker_threshold": 2})
    for system, adapter in (("erp", erp), ("storefront", sf)):
        breaker = breaker_for(ctx, system)
        assert isinstance(adapter.http.guard, BreakerGuard) and breaker is adapter.http.guard.breaker
        assert breaker.store is store and breaker.system == system
        assert breaker.config.threshold == 2  # read from the params given to the builder
        assert isinstance(adapter.http.throttle, SharedRate)  # the Connection's rps, shared through the store
    assert masks(log)


def test_a_second_context_over_the_same_adapters_keeps_their_breakers(store: StateStore) -> None:
    erp, sf = adapters()
    first = FlowContext.for_run("orders_sync", "r1", store, erp, sf, log=logging.getLogger("test.builder.twice"))
    guard, throttle = erp.http.guard, erp.http.throttle
    again = first.derive(flow="customers_sync", params={"breaker_threshold": 9})
    assert erp.http.guard is guard and erp.http.throttle is throttle
    assert again.flow == "customers_sync" and again.store is store and again.erp is erp
    assert sum(isinstance(f, PersonalDataFilter) for f in again.log.filters) == 1


def test_a_worker_context_over_forked_adapters_gets_their_breakers(store: StateStore) -> None:
    """What ``flows.concurrent`` does for each worker thread: the forked session has no guard of
    its own until the context is built again (``dataclasses.replace`` would leave it unguarded)."""
    erp, sf = adapters()
    ctx = FlowContext.for_run("orders_sync", "r1", store, erp, sf, log=logging.getLogger("test.builder.fork"))
    fork = erp.fork()
    assert fork.http.guard is None and fork.http.throttle is erp.http.throttle
    worker = ctx.derive(erp=fork)
    assert isinstance(fork.http.guard, BreakerGuard) and fork.http.guard.breaker.store is store
    assert fork.http.guard.breaker.system == "erp"
    assert fork.http.throttle is erp.http.throttle  # one budget per system, whatever the thread
    assert worker.quality_reports is ctx.quality_reports  # the run's reports, whichever thread wrote them
