"""Pure parts of erpsync.reliability: the rate budget, the breaker e-mails, what the HTTP client
reports to the breaker, and the task-log summary with replay commands."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.flows.base import RunSummary
from erpsync.reliability.breaker import BreakerState
from erpsync.reliability.budget import TokenBucket, per_slot_rate, pool_specs, throttle_for
from erpsync.reliability.notify import render_breaker_email


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_token_bucket_spreads_requests_to_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(5, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(11):
        bucket.acquire()
    assert clock.t == pytest.approx(2.0)  # 11 requests at 5/s, the first one free


def test_pools_share_one_budget_per_system() -> None:
    specs = pool_specs({"erp": {"rps": 20, "concurrency": 4}, "storefront": {"concurrency": 2}})
    assert [(s["name"], s["slots"]) for s in specs] == [("erpsync_erp", 4), ("erpsync_storefront", 2)]
    assert "20 req/s shared by all of them" in specs[0]["description"]  # one budget in the store, not per slot
    assert per_slot_rate(20, 4) == 5
    assert throttle_for({"erp_rps": 20, "erp_pool_slots": 4}, "erp").rate == 5
    assert throttle_for({}, "erp") is None


def _state(**kw: Any) -> BreakerState:
    base = dict(system="erp", state="open", failures=5, opened_at=dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC),
                probe_owner=None, probe_until=None, last_error="erp POST /api/sales-orders: HTTP 503",
                updated_at=dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC))
    return BreakerState(**{**base, **kw})


def test_breaker_emails_say_what_happened_and_what_to_do() -> None:
    subject, body = render_breaker_email("opened", _state(), queued=42)
    assert subject == "[erpsync] ERP unreachable: circuit opened, work is queued"
    assert "5 consecutive failures" in body and "HTTP 503" in body and "42 record(s)" in body
    assert "erp-outage.md" in body
    subject, body = render_breaker_email("recovered", _state(state="closed"), queued=0)
    assert "recovered" in subject and "erpsync outbox status" in body


class Guard:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def before(self) -> None:
        self.calls.append("before")

    def success(self) -> None:
        self.calls.append("success")

    def failure(self, reason: str) -> None:
        self.calls.append("failure")


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status_code, self.headers, self.content = status, {"Retry-After": "0"}, b""


class FakeSession:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.headers: dict[str, str] = {}

    def request(self, *a: Any, **kw: Any) -> FakeResponse:
        return FakeResponse(self.statuses.pop(0))


@pytest.mark.parametrize(("statuses", "expected"), [
    ([200], ["before", "success"]),
    ([404], ["before", "success"]),  # the system answered: it is up
    ([503, 503], ["before", "failure"]),
    ([429, 429], ["before"]),  # busy, not down: the rate budget's business
])
def test_http_client_reports_each_call_to_the_breaker_once(statuses: list[int], expected: list[str]) -> None:
    client = HttpClient("http://x", system="erp", session=FakeSession(statuses),  # type: ignore[arg-type]
                        retry=RetryPolicy(max_attempts=2, base_delay=0), sleep=lambda s: None)
    client.guard = Guard()
    try:
        client.request("GET", "/a")
    except Exception:
        pass
    assert client.guard.calls == expected


def test_task_log_summary_lists_replay_commands_and_dag_params() -> None:
    s = RunSummary(flow="orders_sync", run_id="scheduled__1")
    s.done = 3
    s.quarantine(12, "O1", "unknown_sku: SKU-9")
    s.quarantine(13, "O2", "guest_held: waits")
    s.queued = 2
    text = s.render()
    assert text.splitlines()[0] == "orders_sync [scheduled__1]: done=3 failed=0 quarantined=2 skipped=0 queued=2"
    assert "#12 O1: unknown_sku: SKU-9  -> erpsync dead-letters replay --id 12" in text
    assert "erpsync dead-letters replay --ids 12 13 --dry-run" in text
    assert '{"ids": [12, 13], "dry_run": true}' in text
    assert "outbox: 2 record(s) queued" in text
