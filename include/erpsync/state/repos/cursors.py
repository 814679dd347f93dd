"""Cursors: where each flow left off, and the one set of rules for change-time cursors.

A cursor is a text value per (flow, name). Most are change times (the latest ``updated_at`` a
flow handled), and for those the rules live here and nowhere else:

- times are compared as times, never as text (``"…10:00:00Z"`` sorts after ``"…10:00:00.5Z"``
  as text; ``"2026-01-01 11:00:00"`` before ``"2026-01-01T10:00:00Z"``);
- a time without a zone is read as UTC; a stored time is written as ISO 8601 UTC with ``Z``;
- a change-time cursor only moves forward (``advance``): a batch whose latest change is older
  than the cursor (a re-read lookback overlap) leaves it where it is;
- a time beyond now + the allowed clock skew (``erpsync.limits.future_bound``) is never stored:
  it would make every later change unread; it is held at now instead, with a warning.

Other cursors (a feed's sequence number, a JSON note of the watchdog) are stored as given.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from erpsync import limits
from erpsync.state import schema as t
from erpsync.state.db import StateDB

log = logging.getLogger("erpsync.state")


def parse_time(value: str) -> dt.datetime:
    """A cursor's time: ISO 8601, ``Z`` accepted, no zone read as UTC; ValueError if not a time."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_time(value: dt.datetime) -> str:
    """ISO 8601 in UTC with ``Z``; a naive time is read as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def as_time(value: str | dt.datetime) -> dt.datetime:
    """``value`` as an aware time (text parsed by ``parse_time``, a naive datetime read as UTC)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return parse_time(value)


def bounded(flow: str, name: str, value: str, *, now: dt.datetime | None = None) -> str:
    """``value``, or now when it is a time beyond now + the allowed clock skew; a value that is not
    a time (a token, an id) is the flow's own business and kept as it is."""
    try:
        parsed = parse_time(value)
    except ValueError:
        return value
    now = now or dt.datetime.now(dt.UTC)
    if parsed <= limits.future_bound(now=now):
        return value
    held = format_time(now)
    log.warning(
        "cursor %s/%s: %s is beyond now + the allowed clock skew; held at %s (a record stamped in the "
        "future must not make every later change unread)", flow, name, value, held)
    return held


class HighWater:
    """The latest change time seen in a batch, compared as a time.

    ``see`` takes text or datetimes; what is not a time (None, a number, garbage) is passed over,
    and so is a time beyond ``bound`` when one is given (the quality gate dead-letters such a
    record; the cursor must not jump past every later change)."""

    def __init__(self, bound: dt.datetime | None = None) -> None:
        self.high: dt.datetime | None = None
        self.bound = bound

    def see(self, value: object) -> dt.datetime | None:
        """Take ``value`` into account; returns it as a time, or None when it was passed over."""
        if isinstance(value, dt.datetime):
            seen = as_time(value)
        elif isinstance(value, str):
            try:
                seen = parse_time(value)
            except ValueError:
                return None
        else:
            return None
        if self.bound is not None and seen > self.bound:
            return None
        if self.high is None or seen > self.high:
            self.high = seen
        return seen


class CursorRepository:
    """The ``cursors`` table: one text value per (flow, name)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def get(self, flow: str, name: str = "default") -> str | None:
        """The stored text, or None when there is none."""
        c = t.cursors
        with self.db.begin(write=False) as conn:
            return conn.execute(
                sa.select(c.c.value).where(c.c.flow == flow, c.c.name == name)
            ).scalar_one_or_none()

    def set(self, flow: str, value: str, name: str = "default") -> None:
        """Store a cursor as given (it may move back: an operator's reset); a time beyond now + the
        allowed clock skew is held at now instead (``bounded``)."""
        with self.db.begin() as conn:
            self._write(conn, flow, name, bounded(flow, name, str(value)))

    def get_time(self, flow: str, name: str = "default") -> dt.datetime | None:
        """A change-time cursor as an aware time; None when unset or empty (a full read). A stored
        value that is not a time raises ValueError naming the cursor."""
        value = self.get(flow, name)
        if not value:
            return None
        try:
            return parse_time(value)
        except ValueError:
            raise ValueError(f"cursor {flow}/{name} holds {value!r}, which is not a time (ISO 8601): "
                             "set it to a time, or to '' for a full read") from None

    def advance(self, flow: str, value: str | dt.datetime, name: str = "default") -> bool:
        """Move a change-time cursor forward to ``value`` (compared as times, never back); False
        when the cursor already is there or later. A time beyond now + the allowed clock skew is
        held at now. Read and write happen in one transaction (on PostgreSQL the row is locked),
        so two runs advancing at once cannot move it back."""
        target = as_time(value)
        held = bounded(flow, name, format_time(target))
        c = t.cursors
        with self.db.begin() as conn:
            q = sa.select(c.c.value).where(c.c.flow == flow, c.c.name == name)
            if not self.db.is_sqlite:
                q = q.with_for_update()
            current = conn.execute(q).scalar_one_or_none()
            if current:
                try:
                    if parse_time(current) >= parse_time(held):
                        return False
                except ValueError:
                    raise ValueError(f"cursor {flow}/{name} holds {current!r}, which is not a time "
                                     "(ISO 8601): set it to a time, or to '' for a full read") from None
            self._write(conn, flow, name, held)
        return True

    def _write(self, conn: sa.Connection, flow: str, name: str, value: str) -> None:
        c = t.cursors
        stmt = self.db.insert(c).values(flow=flow, name=name, value=value, updated_at=self.db.now())
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.c.flow, c.c.name],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        conn.execute(stmt)
