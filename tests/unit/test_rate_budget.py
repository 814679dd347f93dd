"""The rate budget of each external system (erpsync.reliability.budget): limits from a Connection's
extra, the pools they size, and the budget every process shares through the state store."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from erpsync.connectors.http import HttpClient
from erpsync.connectors.registry import build_erp, build_storefront
from erpsync.errors import ConfigError
from erpsync.reliability import budget
from erpsync.reliability.budget import (
    AllOf,
    Limits,
    SharedRate,
    TokenBucket,
    pool_specs,
    reserve,
    throttle_for,
)
from erpsync.state import StateStore


def test_limits_come_from_the_connection_extra_with_defaults() -> None:
    assert Limits.from_extra({"rps": 40, "concurrency": 15}) == Limits(rps=40.0, concurrency=15)
    assert Limits.from_extra({"rps": "2.5", "concurrency": "3"}) == Limits(rps=2.5, concurrency=3)
    assert Limits.from_extra({"adapter": "sandbox"}) == Limits(rps=budget.DEFAULT_RPS,
                                                              concurrency=budget.DEFAULT_CONCURRENCY)
    assert Limits.from_extra(None).concurrency == 4 and Limits.from_extra(None).rps is None
    assert Limits(rps=40).burst_size == 20 and Limits(rps=1).burst_size == 1 and Limits(rps=40, burst=5).burst_size == 5


@pytest.mark.parametrize("extra, word", [
    ({"rps": 0}, "'rps' must be a positive number"),
    ({"rps": "fast"}, "'rps' must be a positive number"),
    ({"rps": True}, "'rps' must be a positive number"),
    ({"concurrency": 0}, "'concurrency' must be a whole number >= 1"),
    ({"concurrency": 2.5}, "'concurrency' must be a whole number >= 1"),
])
def test_bad_limits_are_one_line_naming_the_connection(extra: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigError) as err:
        Limits.from_extra(extra, conn_id="erp_default")
    assert "Connection erp_default" in str(err.value) and word in str(err.value)


def test_adapters_carry_their_connection_limits_and_refuse_bad_ones() -> None:
    erp = build_erp("sandbox", "http://127.0.0.1:1", "u", "p", {"rps": 40, "concurrency": 15})
    assert budget.limits_of(erp) == Limits(rps=40.0, concurrency=15)
    store = build_storefront("sandbox", "http://127.0.0.1:1", "t", {})
    assert budget.limits_of(store) == Limits()
    with pytest.raises(ConfigError, match="Connection storefront_default: extra 'rps'"):
        build_storefront("sandbox", "http://127.0.0.1:1", "t", {"rps": -1})


def test_pools_are_sized_from_the_limits() -> None:
    specs = pool_specs({"erp": Limits(rps=40, concurrency=15), "storefront": {"concurrency": 2}})
    assert [(s["name"], s["slots"], s["rps"]) for s in specs] == [("erpsync_erp", 15, 40),
                                                                  ("erpsync_storefront", 2, None)]
    assert "40 req/s shared" in specs[0]["description"] and "erp_default" in specs[0]["description"]


def test_throttle_is_the_shared_budget_plus_a_run_cap() -> None:
    store = object()
    shared = throttle_for({}, "erp", limits=Limits(rps=40, concurrency=4), store=store)
    assert isinstance(shared, SharedRate) and shared.rate == 40 and shared.fallback_share == 4
    alone = throttle_for({}, "erp", limits=Limits(rps=40, concurrency=4))
    assert isinstance(alone, TokenBucket) and alone.rate == 10  # no store: its share of the pool
    both = throttle_for({"erp_rps": 10}, "erp", limits=Limits(rps=40), store=store)
    assert isinstance(both, AllOf) and [type(t) for t in both.throttles] == [TokenBucket, SharedRate]
    assert throttle_for({}, "erp", limits=Limits()) is None


def test_install_leaves_a_throttle_set_by_someone_else() -> None:
    class Adapter:
        limits = {"rps": 5}
        http = HttpClient("http://x", system="erp")

    a = Adapter()
    budget.install(a, "erp", {}, None)
    assert isinstance(a.http.throttle, TokenBucket) and a.http.throttle.rate == 5 / 4
    own = type("Own", (), {"acquire": lambda self: None})()
    a.http.throttle = own
    budget.install(a, "erp", {"erp_rps": 1}, None)
    assert a.http.throttle is own


def test_a_forked_worker_session_keeps_its_parents_budget() -> None:
    """orders_sync's worker threads fork the ERP adapter (own session, the parent's throttle) and
    each gets a context of its own: protecting it must not drop the shared budget."""
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter

    parent = build_erp("sandbox", "http://127.0.0.1:1", "u", "p", {"rps": 40})
    budget.install(parent, "erp", {}, object())
    shared = parent.http.throttle
    assert isinstance(shared, SharedRate)
    worker = parent.fork()
    assert isinstance(worker, SandboxErpAdapter) and worker.http.throttle is shared
    budget.install(worker, "erp", {}, object())
    assert worker.http.throttle is shared


def _store(tmp_path) -> StateStore:
    s = StateStore.from_url(f"sqlite:///{tmp_path}/state.db")
    s.migrate()
    return s


def test_reservations_are_spaced_by_the_rate_after_the_burst(tmp_path) -> None:
    store = _store(tmp_path)
    delays = reserve(store, "erp", rate=10, burst=3, count=6)
    # three at once (the burst), then one every 0.1 s
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:] == pytest.approx([0.1, 0.2, 0.3], abs=0.02)
    later = reserve(store, "erp", rate=10, burst=3, count=1)
    assert later[0] == pytest.approx(0.4, abs=0.03)  # the next caller queues behind them
    assert reserve(store, "storefront", rate=10, burst=3, count=1) == [0.0]  # one budget per system


def test_two_processes_share_one_budget(tmp_path) -> None:
    """Two stores on one database stand for two task processes: together they keep to the rate."""
    first, second = _store(tmp_path), StateStore.from_url(f"sqlite:///{tmp_path}/state.db")
    rate, n = 40.0, 30
    throttles = [SharedRate(first, "erp", rate, burst=1), SharedRate(second, "erp", rate, burst=1)]
    sent: list[float] = []
    lock = threading.Lock()

    def worker(t: SharedRate) -> None:
        for _ in range(n):
            t.acquire()
            with lock:
                sent.append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(t,)) for t in throttles]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    assert len(sent) == 2 * n
    assert elapsed >= (2 * n - 1) / rate * 0.95  # a budget of its own each would take half as long
    sent.sort()
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    window = [sum(1 for s in sent if a <= s < a + 0.5) for a in sent]
    assert max(window) <= rate * 0.5 + 2, (max(window), min(gaps))


def test_an_unreachable_store_falls_back_to_the_pool_share(tmp_path) -> None:
    store = StateStore.from_url(f"sqlite:///{tmp_path}/never-migrated.db")  # no rate_budgets table
    t = SharedRate(store, "erp", 40, fallback_share=4)
    t.acquire()
    assert t._fallback is not None and t._fallback.rate == 10
