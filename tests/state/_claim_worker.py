"""Claim loop run by test threads and spawned processes; each opens its own engine."""

from __future__ import annotations

from typing import Any

from erpsync.state import StateStore

FLOW = "concurrent"


def claim_until_empty(url: str, worker: str, barrier: Any, batch: int) -> list[int]:
    """Claim in small batches until nothing is left; returns the ids this worker got."""
    store = StateStore.from_url(url)
    try:
        store.get_cursor("warm-up")  # open the connection before the race starts
        barrier.wait()
        got: list[int] = []
        while True:
            items = store.claim(FLOW, worker, limit=batch)
            if not items:
                return got
            got.extend(i.id for i in items)
    finally:
        store.close()


def process_main(url: str, worker: str, barrier: Any, batch: int, results: Any) -> None:
    try:
        results.put((worker, claim_until_empty(url, worker, barrier, batch), None))
    except BaseException as exc:  # report, so the parent fails with the reason instead of hanging
        results.put((worker, [], repr(exc)))
