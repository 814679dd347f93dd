"""LookAhead: concurrent work, sequential outcomes; one lane never runs two records at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from erpsync.errors import TransientError
from erpsync.flows.base import RunSummary
from erpsync.flows.concurrent import LookAhead
from tests.unit.flow_doubles import FakeErp, FakeStorefront, make_ctx


def test_lanes_are_sequential_and_outcomes_arrive_in_order(store: Any) -> None:
    ctx = make_ctx(store, "orders_sync", FakeErp(), FakeStorefront())
    running: dict[str, int] = {}
    overlap: list[str] = []
    lock = threading.Lock()

    def work(wctx: Any, raw: dict, part: RunSummary) -> None:
        with lock:
            running[raw["lane"]] = running.get(raw["lane"], 0) + 1
            if running[raw["lane"]] > 1:
                overlap.append(raw["lane"])
        time.sleep(0.01)
        with lock:
            running[raw["lane"]] -= 1
        if raw["id"] == "bad":
            raise TransientError("erp down", system="erp")
        part.done += 1

    records = [{"id": f"o{i}", "lane": f"c{i % 3}"} for i in range(30)] + [{"id": "bad", "lane": "c0"}]
    summary = RunSummary()
    seen: list[str] = []
    failed: list[str] = []
    t0 = time.perf_counter()
    with LookAhead(ctx, work, lambda r: r["lane"], workers=8) as la:
        handle = la.handle(summary)
        for raw in la.feed(records):
            seen.append(raw["id"])
            try:
                handle(raw)
            except TransientError:
                failed.append(raw["id"])
    assert overlap == []
    assert seen == [r["id"] for r in records] and failed == ["bad"] and summary.done == 30
    assert time.perf_counter() - t0 < 30 * 0.01  # three lanes ran side by side


@pytest.fixture
def store(tmp_path: Any) -> Any:
    from erpsync.state import StateStore

    s = StateStore.from_url(f"sqlite:///{tmp_path}/s.db")
    s.migrate()
    yield s
    s.close()
