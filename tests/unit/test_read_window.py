"""``flows.base.read_window``: the half-open slice each kind of run reads, and who moves the cursor."""

from __future__ import annotations

import datetime as dt

import pytest
from flow_doubles import FakeErp, FakeStorefront, make_ctx

from erpsync.flows.base import CursorTracker, read_window, window_kwargs
from erpsync.state import StateStore

T = dt.datetime(2026, 6, 10, tzinfo=dt.UTC)
END = T + dt.timedelta(days=1)


@pytest.fixture
def ctx(tmp_path):
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    c = make_ctx(store, "shipments_sync", FakeErp(), FakeStorefront())
    yield c
    store.close()


def test_backfill_reads_its_interval_minus_the_lookback_and_ignores_the_cursor(ctx) -> None:
    ctx.store.set_cursor(ctx.flow, "2026-01-01T00:00:00Z")
    ctx.run_type, ctx.interval_start, ctx.interval_end = "backfill", T, END
    assert read_window(ctx) == (T - dt.timedelta(minutes=5), END)
    ctx.params["lookback_minutes"] = 0
    assert read_window(ctx, from_start=True) == (T, END)


def test_scheduled_run_reaches_back_to_an_older_cursor(ctx) -> None:
    ctx.interval_start, ctx.interval_end = T, END
    assert read_window(ctx) == (T - dt.timedelta(minutes=5), END)  # no cursor: its interval
    assert read_window(ctx, from_start=True) == (None, END)  # or everything, for flows that start so
    ctx.store.set_cursor(ctx.flow, "2026-06-01T00:00:00Z", "erp")
    assert read_window(ctx, "erp") == (dt.datetime(2026, 5, 31, 23, 55, tzinfo=dt.UTC), END)


def test_manual_run_reads_since_the_cursor_without_an_end(ctx) -> None:
    assert read_window(ctx) == (None, None)
    ctx.store.set_cursor(ctx.flow, "2026-06-01T00:00:00Z")
    assert read_window(ctx) == (dt.datetime(2026, 5, 31, 23, 55, tzinfo=dt.UTC), None)


def test_window_kwargs_pass_an_end_only_when_there_is_one() -> None:
    assert window_kwargs(T, None) == {"updated_since": T}
    assert window_kwargs(None, END) == {"updated_since": None, "updated_before": END}


def test_a_backfill_never_moves_the_cursor(ctx) -> None:
    tracker = CursorTracker()
    tracker.see({"updated_at": "2026-07-01T00:00:00Z"})
    ctx.run_type = "backfill"
    tracker.save(ctx)
    assert ctx.store.get_cursor(ctx.flow) is None
    ctx.run_type = "scheduled"
    tracker.save(ctx, "store")
    assert ctx.store.get_cursor(ctx.flow, "store") == "2026-07-01T00:00:00Z"
