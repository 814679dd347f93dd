"""Two workers must never claim the same work item: real concurrent connections, both backends.

Each worker (thread or process) has its own engine; all start together behind a barrier and
claim small batches until the queue is empty. Every item must be claimed exactly once, and the
database must agree (attempts == 1, claimed_by == the worker that reported it).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from erpsync.state import StateStore
from erpsync.state.schema import work_items
from tests.state._claim_worker import FLOW, claim_until_empty, process_main

N_ITEMS = 2000
BATCH = 10


def _fill(url: str) -> None:
    with StateStore.from_url(url) as store:
        assert store.enqueue_many(FLOW, [(f"item-{i:05d}", {"n": i}) for i in range(N_ITEMS)]) == N_ITEMS


def _check(url: str, claims: dict[str, list[int]]) -> None:
    counts = Counter(i for ids in claims.values() for i in ids)
    twice = [i for i, n in counts.items() if n > 1]
    assert twice == [], f"items claimed more than once: {twice[:10]}"
    assert len(counts) == N_ITEMS, f"{N_ITEMS - len(counts)} items never claimed"
    assert sum(1 for ids in claims.values() if ids) >= 2, "the workers did not actually overlap"

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    work_items.c.id, work_items.c.claimed_by, work_items.c.attempts, work_items.c.status
                )
            ).all()
    finally:
        engine.dispose()
    owner = {i: w for w, ids in claims.items() for i in ids}
    assert len(rows) == N_ITEMS
    for item_id, claimed_by, attempts, status in rows:
        assert (status, attempts, claimed_by) == ("claimed", 1, owner[item_id]), item_id


def test_threads_never_claim_the_same_item(store_url: str) -> None:
    _fill(store_url)
    workers = 8
    barrier = threading.Barrier(workers)
    with ThreadPoolExecutor(workers) as pool:
        futures = {
            f"t{n}": pool.submit(claim_until_empty, store_url, f"t{n}", barrier, BATCH)
            for n in range(workers)
        }
        claims = {w: f.result(timeout=120) for w, f in futures.items()}
    _check(store_url, claims)


@pytest.mark.slow
def test_processes_never_claim_the_same_item(store_url: str) -> None:
    _fill(store_url)
    workers = 4
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=process_main, args=(store_url, f"p{n}", barrier, BATCH, results))
        for n in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        claims: dict[str, list[int]] = {}
        for _ in procs:
            worker, ids, error = results.get(timeout=120)
            assert error is None, f"worker {worker} failed: {error}"
            claims[worker] = ids
    except queue.Empty:
        pytest.fail("a claiming process did not report within 120 s")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    _check(store_url, claims)
