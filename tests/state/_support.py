"""Helpers shared by the state tests (kept out of conftest so tests can import them plainly)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from erpsync.state.schema import metadata


class FakeClock:
    """A settable clock for the store, so leases and retention need no sleeping."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.now = now or dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def truncate_pg(url: str) -> None:
    """Empty every state table (faster than a fresh database per test)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()
