"""The cursor rules, in one place (issue 19): change times compared as times (never as text), a
time without a zone read as UTC, change-time cursors only move forward, and a time beyond now +
the allowed clock skew is never stored."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from erpsync.state import StateStore
from erpsync.state.repos.cursors import HighWater, as_time, bounded, format_time, parse_time

UTC = dt.UTC


# -- parsing and formatting ----------------------------------------------------------------


def test_times_parse_with_z_offsets_or_no_zone_as_utc() -> None:
    ten = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_time("2026-11-23T10:00:00Z") == ten
    assert parse_time("2026-11-23T12:00:00+02:00") == ten
    assert parse_time("2026-11-23 10:00:00") == ten  # no zone (Tryton's write_date): UTC
    assert parse_time("2026-11-23T10:00:00").tzinfo is not None
    with pytest.raises(ValueError):
        parse_time("token-42")


def test_times_are_written_as_utc_with_z() -> None:
    assert format_time(dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == (
        "2026-11-23T10:00:00Z")
    assert format_time(dt.datetime(2026, 11, 23, 10, 0)) == "2026-11-23T10:00:00Z"  # naive: UTC
    assert as_time(dt.datetime(2026, 11, 23, 10, 0)) == dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


# -- the high water mark of a batch ----------------------------------------------------------


def test_high_water_compares_times_not_text() -> None:
    hw = HighWater()
    hw.see("2026-11-23T10:00:00.500000Z")
    hw.see("2026-11-23T10:00:00Z")  # sorts after the first as text ("Z" > "."), but is earlier
    assert hw.high == dt.datetime(2026, 11, 23, 10, 0, 0, 500000, tzinfo=UTC)
    hw.see("2026-11-23 10:30:00")  # sorts before every "…T…" text, but is the latest
    assert hw.high == dt.datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    hw.see("2026-11-23T12:00:00+03:00")  # 09:00 UTC: text says later, time says earlier
    assert hw.high == dt.datetime(2026, 11, 23, 10, 30, tzinfo=UTC)


def test_high_water_passes_over_what_is_not_a_time_and_what_is_beyond_its_bound() -> None:
    bound = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    hw = HighWater(bound)
    for value in (None, 42, "", "yesterday", "2026-11-23T13:00:00Z"):
        assert hw.see(value) is None
    assert hw.high is None
    assert hw.see(dt.datetime(2026, 11, 23, 11, 0)) == dt.datetime(2026, 11, 23, 11, 0, tzinfo=UTC)
    assert hw.high == dt.datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


# -- the far-future clamp ----------------------------------------------------------------------


def test_a_time_beyond_now_plus_the_skew_is_held_at_now(caplog: pytest.LogCaptureFixture) -> None:
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert bounded("f", "default", "2026-11-23T10:04:00Z", now=now) == "2026-11-23T10:04:00Z"  # within skew
    with caplog.at_level(logging.WARNING, logger="erpsync.state"):
        assert bounded("f", "default", "2099-01-01T00:00:00Z", now=now) == "2026-11-23T10:00:00Z"
    assert "beyond now + the allowed clock skew" in caplog.text
    assert bounded("f", "default", "2099-01-01 00:00:00", now=now) == "2026-11-23T10:00:00Z"  # naive too
    assert bounded("f", "seq", "99999999", now=now) == "99999999"  # not a time: the flow's business


def test_set_cursor_stores_text_as_given_but_never_a_far_future_time(store: StateStore) -> None:
    store.set_cursor("events", "1234", name="seq")
    assert store.get_cursor("events", "seq") == "1234"
    store.set_cursor("orders_sync", "2026-11-23T10:00:00Z")
    store.set_cursor("orders_sync", "2026-01-01T00:00:00Z")  # an operator's reset may move it back
    assert store.get_cursor("orders_sync") == "2026-01-01T00:00:00Z"
    before = dt.datetime.now(UTC)
    store.cursors.set("orders_sync", "2999-01-01T00:00:00Z")
    held = store.cursors.get_time("orders_sync")
    assert held is not None and before <= held <= dt.datetime.now(UTC)


# -- typed reads and forward-only advances ---------------------------------------------------------


def test_get_time_reads_a_cursor_as_an_aware_time(store: StateStore) -> None:
    assert store.cursors.get_time("orders_sync") is None
    store.set_cursor("orders_sync", "")  # emptied by an operator: a full read
    assert store.cursors.get_time("orders_sync") is None
    store.set_cursor("orders_sync", "2026-11-23 10:00:00")
    assert store.cursors.get_time("orders_sync") == dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    store.set_cursor("orders_sync", "not a time")
    with pytest.raises(ValueError, match="cursor orders_sync/default holds 'not a time'"):
        store.cursors.get_time("orders_sync")


def test_advance_moves_forward_only_comparing_times(store: StateStore) -> None:
    cur = store.cursors
    assert cur.advance("inventory_sync", "2026-11-23T10:00:00.500000Z", "stock") is True
    # as text "…10:00:00Z" > "…10:00:00.500000Z"; as times it is earlier: the cursor stays
    assert cur.advance("inventory_sync", "2026-11-23T10:00:00Z", "stock") is False
    assert cur.get_time("inventory_sync", "stock") == dt.datetime(2026, 11, 23, 10, 0, 0, 500000, tzinfo=UTC)
    # an ERP time without a zone, later as a time though "2026-11-23 …" < "2026-11-23T…" as text
    assert cur.advance("inventory_sync", "2026-11-23 11:00:00", "stock") is True
    assert store.get_cursor("inventory_sync", "stock") == "2026-11-23T11:00:00Z"
    assert cur.advance("inventory_sync", dt.datetime(2026, 11, 23, 11, 0, tzinfo=UTC), "stock") is False
    assert cur.advance("inventory_sync", dt.datetime(2026, 11, 23, 12, 0), "stock") is True  # naive: UTC
    assert store.get_cursor("inventory_sync", "stock") == "2026-11-23T12:00:00Z"


def test_advance_over_a_stored_text_cursor_compares_its_time(store: StateStore) -> None:
    store.set_cursor("pricing_sync", "2026-11-23T12:00:00+02:00", "items")  # 10:00 UTC, as a flow once wrote it
    assert store.cursors.advance("pricing_sync", "2026-11-23T09:30:00Z", "items") is False
    assert store.cursors.advance("pricing_sync", "2026-11-23T10:30:00Z", "items") is True
    store.set_cursor("pricing_sync", "", "items")
    assert store.cursors.advance("pricing_sync", "2026-01-01T00:00:00Z", "items") is True  # empty: no cursor


def test_advance_holds_a_far_future_time_at_now_and_never_goes_back_from_it(store: StateStore) -> None:
    before = dt.datetime.now(UTC)
    assert store.cursors.advance("catalog_sync", "2999-01-01T00:00:00Z") is True
    held = store.cursors.get_time("catalog_sync")
    assert held is not None and before <= held <= dt.datetime.now(UTC)
    assert store.cursors.advance("catalog_sync", before - dt.timedelta(minutes=1)) is False


def test_advance_refuses_to_compare_with_a_cursor_that_is_not_a_time(store: StateStore) -> None:
    store.set_cursor("orders_sync", "token-9")
    with pytest.raises(ValueError, match="not a time"):
        store.cursors.advance("orders_sync", "2026-11-23T10:00:00Z")
    assert store.get_cursor("orders_sync") == "token-9"
