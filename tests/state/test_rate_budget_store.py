"""The shared rate budget (``rate_budgets``, GCRA) on SQLite and PostgreSQL: reservations are
spaced by the rate, and several stores on one database (several task processes) share it."""

from __future__ import annotations

import threading
import time

import pytest

from erpsync.reliability.budget import SharedRate, reserve
from erpsync.state import StateStore


def test_reservations_follow_the_rate(store: StateStore) -> None:
    delays = reserve(store, "erp", rate=20, burst=2, count=4)
    assert delays[:2] == [0.0, 0.0]
    assert delays[2:] == pytest.approx([0.05, 0.1], abs=0.02)
    assert reserve(store, "storefront", rate=20, burst=2, count=1) == [0.0]


def test_processes_on_one_database_share_the_budget(store_url: str) -> None:
    stores = [StateStore.from_url(store_url) for _ in range(3)]
    rate, each = 50.0, 20
    done: list[float] = []
    lock = threading.Lock()

    def work(s: StateStore) -> None:
        t = SharedRate(s, "erp", rate, burst=1)
        for _ in range(each):
            t.acquire()
            with lock:
                done.append(time.monotonic())

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    for s in stores:
        s.close()
    assert len(done) == 3 * each
    assert elapsed >= (3 * each - 1) / rate * 0.95  # 60 requests at 50/s together, not 50/s each
