"""Newest source version handled per record, so an out-of-order or stale delivery cannot undo it.

A version is the record's ``updated_at`` normalised to a fixed-width UTC string (so the database
compares it as text); records without one are never considered stale.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from erpsync.state import schema as t

if TYPE_CHECKING:
    from erpsync.state import StateStore


def version_of(raw: Any) -> str | None:
    value = raw.get("updated_at") if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Versions:
    def __init__(self, store: StateStore, flow: str) -> None:
        self.store = store
        self.flow = flow

    def newest(self, external_id: str) -> str | None:
        v = t.record_versions
        with self.store.db.begin(write=False) as conn:
            return conn.execute(
                sa.select(v.c.version).where(v.c.flow == self.flow, v.c.external_id == external_id)
            ).scalar_one_or_none()

    def is_stale(self, external_id: str, version: str | None) -> bool:
        if version is None:
            return False
        newest = self.newest(external_id)
        return newest is not None and version < newest

    def seen(self, external_id: str, version: str | None) -> None:
        """Remember ``version`` as handled unless a newer one already is (one guarded upsert)."""
        if version is None:
            return
        v = t.record_versions
        stmt = self.store.db.insert(v).values(flow=self.flow, external_id=external_id, version=version,
                                            updated_at=self.store.db.now())
        stmt = stmt.on_conflict_do_update(
            index_elements=[v.c.flow, v.c.external_id],
            set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
            where=v.c.version < stmt.excluded.version,
        )
        with self.store.db.begin() as conn:
            conn.execute(stmt)
