"""The HTTP client's retry decisions: pure functions, no server."""

from __future__ import annotations

import email.utils

import pytest
import requests
import urllib3.exceptions

from erpsync.connectors.http import (
    Action,
    Failure,
    RetryPolicy,
    backoff_delay,
    classify_exception,
    decide,
    is_transient_status,
    parse_retry_after,
)

P = RetryPolicy(max_attempts=3, base_delay=1.0, multiplier=2.0, max_delay=5.0, jitter=0.5, max_retry_after=30)


@pytest.mark.parametrize("status", [200, 201, 204, 304])
def test_success_is_ok(status: int) -> None:
    assert decide(method="POST", attempt=1, policy=P, status=status) is Action.OK


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_permanent_4xx_never_retried(status: int) -> None:
    assert not is_transient_status(status)
    assert decide(method="GET", attempt=1, policy=P, status=status) is Action.PERMANENT


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_retried_on_reads_until_attempts_run_out(status: int) -> None:
    assert is_transient_status(status)
    assert decide(method="GET", attempt=1, policy=P, status=status) is Action.RETRY
    assert decide(method="GET", attempt=3, policy=P, status=status) is Action.TRANSIENT


@pytest.mark.parametrize("status", [408, 429, 503])
def test_not_processed_statuses_retried_even_for_unkeyed_writes(status: int) -> None:
    assert decide(method="POST", attempt=1, policy=P, status=status) is Action.RETRY


@pytest.mark.parametrize("status", [500, 502, 504])
def test_ambiguous_5xx_on_unkeyed_write_is_unknown_outcome(status: int) -> None:
    assert decide(method="POST", attempt=1, policy=P, status=status) is Action.UNKNOWN
    assert decide(method="POST", attempt=1, policy=P, status=status, has_idempotency_key=True) is Action.RETRY


def test_no_response_on_write_without_key_is_unknown_outcome() -> None:
    assert decide(method="POST", attempt=1, policy=P, failure=Failure.NO_RESPONSE) is Action.UNKNOWN
    assert decide(method="PATCH", attempt=1, policy=P, failure=Failure.NO_RESPONSE) is Action.UNKNOWN


def test_no_response_on_keyed_write_is_retried_then_unknown() -> None:
    kw = {"method": "POST", "policy": P, "failure": Failure.NO_RESPONSE, "has_idempotency_key": True}
    assert decide(attempt=1, **kw) is Action.RETRY
    assert decide(attempt=3, **kw) is Action.UNKNOWN


def test_no_response_on_read_is_retried_then_transient() -> None:
    assert decide(method="GET", attempt=1, policy=P, failure=Failure.NO_RESPONSE) is Action.RETRY
    assert decide(method="GET", attempt=3, policy=P, failure=Failure.NO_RESPONSE) is Action.TRANSIENT


def test_not_sent_is_always_safe_to_retry() -> None:
    assert decide(method="POST", attempt=1, policy=P, failure=Failure.NOT_SENT) is Action.RETRY
    assert decide(method="POST", attempt=3, policy=P, failure=Failure.NOT_SENT) is Action.TRANSIENT


def test_retry_after_beyond_the_cap_gives_up_at_once() -> None:
    assert decide(method="GET", attempt=1, policy=P, status=429, retry_after=600) is Action.TRANSIENT


def test_backoff_grows_exponentially_and_is_capped() -> None:
    no_jitter = [backoff_delay(a, P, rand=lambda: 0.0) for a in (1, 2, 3, 4, 5)]
    assert no_jitter == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_jitter_stays_within_its_share() -> None:
    assert backoff_delay(2, P, rand=lambda: 1.0) == pytest.approx(1.0)  # 2.0 minus 50%
    assert backoff_delay(2, P, rand=lambda: 0.5) == pytest.approx(1.5)


def test_backoff_honours_retry_after_with_a_little_jitter() -> None:
    assert backoff_delay(1, P, retry_after=3.0, rand=lambda: 0.0) == pytest.approx(3.0)
    assert backoff_delay(1, P, retry_after=3.0, rand=lambda: 1.0) == pytest.approx(3.3)
    assert backoff_delay(1, P, retry_after=999, rand=lambda: 0.0) == pytest.approx(30)


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_060, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(60)
    assert parse_retry_after(email.utils.formatdate(999_000, usegmt=True), now=1_000_000) == 0.0


def test_classify_exceptions() -> None:
    refused = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "Connection refused"))
    )
    assert classify_exception(refused) == (Failure.NOT_SENT, "connection refused")
    assert classify_exception(requests.exceptions.ConnectTimeout())[0] is Failure.NOT_SENT
    assert classify_exception(requests.exceptions.ReadTimeout()) == (Failure.NO_RESPONSE, "read timeout")
    dropped = requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted."))
    assert classify_exception(dropped) == (Failure.NO_RESPONSE, "connection dropped")
