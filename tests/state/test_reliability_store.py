"""Circuit breaker and outbox state in the store, on SQLite and PostgreSQL, with real concurrent
connections: many workers failing at once open the circuit exactly once, exactly one of them
probes after the cooldown, exactly one recovery is announced, and no outbox row is drained twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from erpsync.reliability import BreakerConfig, CircuitBreaker, CircuitOpenError, Outbox, RecordingNotifier
from erpsync.state import StateStore
from tests.state._support import FakeClock

CONFIG = BreakerConfig(threshold=5, cooldown_seconds=60, probe_lease_seconds=30)


def _breaker(store: StateStore, owner: str, notifier: RecordingNotifier | None = None) -> CircuitBreaker:
    return CircuitBreaker(store, "erp", CONFIG, owner=owner, notifier=notifier)


def test_lifecycle_closed_open_half_open_closed(store_url: str, clock: FakeClock) -> None:
    mail = RecordingNotifier()
    with StateStore.from_url(store_url, clock=clock) as store:
        a, b = _breaker(store, "a", mail), _breaker(store, "b", mail)
        for _ in range(4):
            a.record_failure("HTTP 503")
        a.record_success()  # consecutive failures only: a success starts the count again
        assert a.state().failures == 0
        for _ in range(5):
            a.allow()
            a.record_failure("HTTP 503")
        assert a.state().state == "open"
        with pytest.raises(CircuitOpenError):
            b.allow()
        b.record_failure("late failure of a call sent before the opening")  # no second opening
        clock.advance(seconds=59)
        with pytest.raises(CircuitOpenError):
            a.allow()
        clock.advance(seconds=2)
        b.allow()  # b wins the probe
        with pytest.raises(CircuitOpenError):
            a.allow()  # a waits for b's verdict
        b.record_failure("still down")
        assert b.state().state == "open"  # reopened, no e-mail
        clock.advance(seconds=61)
        a.allow()
        a.record_success()
        st = a.state()
        assert (st.state, st.failures, st.probe_owner) == ("closed", 0, None)
        b.allow()
        assert [e.event for e in a.events()] == ["opened", "half_open", "reopened", "half_open", "recovered"]
    assert [s.split(":")[0] for s, _ in mail.sent] == ["[erpsync] ERP unreachable", "[erpsync] ERP recovered"]
    assert "5 consecutive failures" in mail.sent[0][1]


def test_a_silent_prober_loses_the_probe(store_url: str, clock: FakeClock) -> None:
    with StateStore.from_url(store_url, clock=clock) as store:
        a, b = _breaker(store, "a"), _breaker(store, "b")
        for _ in range(5):
            a.record_failure("down")
        clock.advance(seconds=61)
        a.allow()  # a probes, then its process is killed
        with pytest.raises(CircuitOpenError):
            b.allow()
        clock.advance(seconds=31)
        b.allow()  # lease expired: b takes the probe over
        b.record_success()
        assert b.state().state == "closed"


def _race(url: str, clock: FakeClock, workers: int, fn) -> list:
    barrier = threading.Barrier(workers)

    def run(n: int):
        store = StateStore.from_url(url, clock=clock)
        try:
            breaker = CircuitBreaker(store, "erp", CONFIG, owner=f"w{n}")
            breaker.state()  # connect before the race
            barrier.wait()
            return fn(breaker)
        finally:
            store.close()

    with ThreadPoolExecutor(workers) as pool:
        return [f.result(timeout=120) for f in [pool.submit(run, n) for n in range(workers)]]


def test_concurrent_workers_open_probe_and_recover_exactly_once(store_url: str, clock: FakeClock) -> None:
    def fail_a_few(breaker: CircuitBreaker) -> None:
        for _ in range(3):
            breaker.record_failure("HTTP 502")

    _race(store_url, clock, 8, fail_a_few)
    with StateStore.from_url(store_url, clock=clock) as store:
        watcher = CircuitBreaker(store, "erp", CONFIG, owner="watcher")
        assert watcher.state().state == "open"
        assert Counter(e.event for e in watcher.events()) == {"opened": 1}
    clock.advance(seconds=61)

    def try_probe(breaker: CircuitBreaker) -> str | None:
        try:
            breaker.allow()
        except CircuitOpenError:
            return None
        breaker.record_success()
        return breaker.owner

    winners = [w for w in _race(store_url, clock, 8, try_probe) if w]
    assert len(winners) == 1, winners
    with StateStore.from_url(store_url, clock=clock) as store:
        events = Counter(e.event for e in CircuitBreaker(store, "erp", CONFIG).events())
    assert events == {"opened": 1, "half_open": 1, "recovered": 1}


def test_outbox_keeps_order_dedupes_versions_and_lets_a_retry_reclaim(store_url: str, clock: FakeClock) -> None:
    with StateStore.from_url(store_url, clock=clock) as store:
        box = Outbox(store, "orders_sync")
        assert box.put("erp", "order", "O1", {"id": "O1", "v": 1}, "O1@v1")
        assert not box.put("erp", "order", "O1", {"id": "O1", "v": 1}, "O1@v1")  # same version again
        assert box.put("erp", "order", "O2", {"id": "O2"}, "O2@v1")
        assert box.put("erp", "order", "O1", {"id": "O1", "v": 2}, "O1@v2")
        first = box.claim("orders_sync:run-1", limit=2)
        assert [i.dedupe_key for i in first] == ["O1@v1", "O2@v1"]
        assert box.claim("orders_sync:run-2", limit=5)[0].dedupe_key == "O1@v2"  # others skip claimed rows
        # run-1 was killed: its retry (same worker id) gets its rows back at once, in order
        again = box.claim("orders_sync:run-1", limit=5)
        assert [i.dedupe_key for i in again] == ["O1@v1", "O2@v1"]
        box.done(again[0].id)
        box.release([again[1].id], error="HTTP 503")
        assert box.pending() == 2
        left = box.claim("orders_sync:run-3", limit=5)
        assert [i.dedupe_key for i in left] == ["O2@v1"]
        done = box.items(status="done")
        assert [d.payload for d in done] == [None]  # a drained row keeps no personal data


def test_concurrent_drainers_never_take_the_same_row(store_url: str) -> None:
    with StateStore.from_url(store_url) as store:
        box = Outbox(store, "orders_sync")
        for n in range(300):
            box.put("erp", "order", f"O{n}", {"id": f"O{n}"}, f"O{n}@1")
    barrier = threading.Barrier(6)

    def drain(worker: str) -> list[int]:
        store = StateStore.from_url(store_url)
        try:
            box = Outbox(store, "orders_sync")
            box.pending()
            barrier.wait()
            got: list[int] = []
            while items := box.claim(worker, limit=7):
                for item in items:
                    box.done(item.id)
                    got.append(item.id)
            return got
        finally:
            store.close()

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(drain, [f"w{n}" for n in range(6)]))
    seen = Counter(i for ids in results for i in ids)
    assert len(seen) == 300 and max(seen.values()) == 1
