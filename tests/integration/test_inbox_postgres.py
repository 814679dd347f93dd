"""The webhook inbox on a PostgreSQL state store (issue 21), in a database of its own: duplicate
deliveries racing each other are stored once, triggerers racing for a burst claim it once, and
with senders, triggerers and runs all going at once no event is lost or consumed twice."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from erpsync import inbox
from erpsync.state import StateStore, schema

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def pg_store(pg_database: Callable[[], str]) -> Iterator[StateStore]:
    store = StateStore.from_url(pg_database())  # a fresh erpsync_test_<hex> database, dropped at the end
    store.migrate()
    yield store
    store.close()


def _event(n: int, record: str | None = None) -> inbox.InboxEvent:
    return inbox.InboxEvent("storefront", f"evt-{n}", "order.paid", "order", record or f"O{n}",
                            dt.datetime.now(dt.UTC))


def _together(workers: list[Callable[[], None]]) -> None:
    """Run the workers in threads released at the same moment; re-raise the first failure."""
    gate = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> None:
        try:
            gate.wait(10)
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not [t for t in threads if t.is_alive()], "a worker hung"
    if errors:
        raise errors[0]


def test_duplicate_deliveries_racing_each_other_are_stored_once(pg_store: StateStore) -> None:
    events = [_event(n) for n in range(60)]
    stored: Counter[str] = Counter()
    lock = threading.Lock()

    def deliver(seed: int) -> Callable[[], None]:
        def run() -> None:
            mine = events[:]
            random.Random(seed).shuffle(mine)  # every sender delivers all of them, in its own order
            for e in mine:
                if inbox.add(pg_store, e):
                    with lock:
                        stored[e.event_id] += 1
        return run

    _together([deliver(s) for s in range(6)])
    assert stored == Counter({e.event_id: 1 for e in events})  # one 'stored' answer per event, 5 'duplicate'
    rows = inbox.open_rows(pg_store, "order")
    assert sorted(r.event_id for r in rows) == sorted(e.event_id for e in events)
    assert inbox.counts(pg_store) == {"order": {"pending": 60}}


def test_triggerers_racing_for_a_burst_claim_it_once(pg_store: StateStore) -> None:
    for n in range(100):
        inbox.add(pg_store, _event(n))
    claims: list[tuple[str, int] | None] = []
    lock = threading.Lock()

    def trigger() -> None:
        got = inbox.claim(pg_store, "order", reclaim=300)
        with lock:
            claims.append(got)

    _together([trigger for _ in range(6)])
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0][1] == 100, claims  # one Asset event for the burst
    assert inbox.counts(pg_store) == {"order": {"claimed": 100}}
    # while that claim waits for its run, no triggerer fires again
    assert inbox.claim(pg_store, "order", reclaim=300) is None


def test_senders_triggerers_and_runs_at_once_lose_nothing_and_consume_nothing_twice(pg_store: StateStore) -> None:
    produced = [_event(n, record=f"O{n % 150}") for n in range(300)]  # 150 orders, two events each
    marked: Counter[str] = Counter()  # rows each run turned done
    lock = threading.Lock()
    sending = threading.Event()
    sending.set()

    def sender(part: int) -> Callable[[], None]:
        def run() -> None:
            mine = produced[part::3] + produced[: 30]  # its share, and a few duplicates of others'
            for e in mine:
                inbox.add(pg_store, e)
        return run

    def triggerer() -> None:
        while sending.is_set():
            inbox.claim(pg_store, "order", reclaim=5)

    def flow_run(name: str) -> Callable[[], None]:
        def run() -> None:
            n = 0
            while sending.is_set():
                n += 1
                rows = inbox.open_rows(pg_store, "order")
                got = inbox.mark_done(pg_store, [r.id for r in rows], f"{name}-{n}")
                with lock:
                    marked[f"{name}-{n}"] += got
        return run

    def senders_then_stop() -> None:
        threads = [threading.Thread(target=sender(p)) for p in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        sending.clear()

    _together([senders_then_stop, triggerer, triggerer, flow_run("a"), flow_run("b")])
    # the last run after the burst (the sweep, or the claim fired again) takes what is left
    left = inbox.open_rows(pg_store, "order")
    marked["last"] += inbox.mark_done(pg_store, [r.id for r in left], "last")
    assert inbox.open_rows(pg_store, "order") == []
    assert sum(marked.values()) == 300  # each row turned done exactly once, by one run
    assert inbox.counts(pg_store) == {"order": {"done": 300}}  # every event once, duplicates not stored
    with pg_store.engine.connect() as conn:
        rows = conn.execute(schema.inbox.select()).mappings().all()
    assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in produced)
    assert {r["record_id"] for r in rows} == {f"O{n}" for n in range(150)}
    by_run = Counter(r["run_id"] for r in rows)
    assert by_run == +marked  # the run a row names is the one whose mark turned it done
