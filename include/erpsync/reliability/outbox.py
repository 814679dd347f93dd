"""The outbox: source records kept in the state store while their target system is unavailable.

A flow that cannot reach a system (its circuit is open, or a call failed transiently) puts the
record here instead of dropping it or failing the whole batch; the next run drains the outbox,
oldest first, through the same ``sync_one`` path as a fresh record, so every guarantee of the flow
(ledger, look-up by key, dead letters) still applies. ``dedupe_key`` (record id + version) keeps
one row per version of a record however many times it is read; a drained row keeps no payload.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from erpsync.state import schema as t

if TYPE_CHECKING:
    from erpsync.state import StateStore

DEFAULT_LEASE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    flow: str
    system: str
    entity: str
    external_id: str
    dedupe_key: str
    payload: Any
    status: str
    attempts: int
    claimed_by: str | None
    last_error: str | None
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> OutboxItem:
        return cls(**{k: row[k] for k in cls.__slots__})  # type: ignore[attr-defined]


class Outbox:
    """The outbox rows of one flow."""

    def __init__(self, store: StateStore, flow: str) -> None:
        self.store = store
        self.flow = flow

    def put(self, system: str, entity: str, external_id: str, payload: Any, dedupe_key: str) -> bool:
        """Queue a record; False when this version of it is already known (queued or drained)."""
        o = t.outbox
        now = self.store.db.now()
        stmt = (
            self.store.db.insert(o)
            .values(flow=self.flow, system=system, entity=entity, external_id=str(external_id),
                    dedupe_key=dedupe_key[:255], payload=payload, status="queued", attempts=0,
                    created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[o.c.flow, o.c.dedupe_key])
            .returning(o.c.id)
        )
        with self.store.db.begin() as conn:
            return conn.execute(stmt).first() is not None

    def pending(self) -> int:
        """Rows not drained yet (queued, or claimed by a worker that may still be at it)."""
        o = t.outbox
        q = sa.select(sa.func.count()).where(o.c.flow == self.flow, o.c.status != "done")
        with self.store.db.begin(write=False) as conn:
            return int(conn.execute(q).scalar_one())

    def claim(self, worker: str, limit: int = 100, lease_seconds: int = DEFAULT_LEASE_SECONDS,
              after_id: int = 0) -> list[OutboxItem]:
        """The oldest ``limit`` rows (after ``after_id``) for ``worker``: queued ones, those whose lease
        ran out, and the worker's own (a retried task keeps its worker id, so a killed try does not
        block its retry)."""
        o = t.outbox
        now = self.store.db.now()
        claimable = sa.and_(
            o.c.flow == self.flow,
            o.c.id > after_id,
            sa.or_(
                o.c.status == "queued",
                sa.and_(o.c.status == "claimed", sa.or_(o.c.lease_until < now, o.c.claimed_by == worker)),
            ),
        )
        pick = sa.select(o.c.id).where(claimable).order_by(o.c.id).limit(limit)
        if not self.store.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        with self.store.db.begin() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            rows = conn.execute(
                sa.update(o).where(o.c.id.in_(ids), claimable)
                .values(status="claimed", claimed_by=worker, attempts=o.c.attempts + 1, updated_at=now,
                        lease_until=now + dt.timedelta(seconds=lease_seconds))
                .returning(*o.c)
            ).mappings()
            items = [OutboxItem.from_row(r) for r in rows]
        return sorted(items, key=lambda i: i.id)

    def done(self, item_id: int) -> None:
        """Drained: the record went through its flow (written, skipped or dead-lettered)."""
        o = t.outbox
        with self.store.db.begin() as conn:
            conn.execute(sa.update(o).where(o.c.id == item_id).values(
                status="done", payload=None, claimed_by=None, lease_until=None, updated_at=self.store.db.now()))

    def release(self, item_ids: Iterable[int], error: str | None = None) -> None:
        """Give rows back to the queue (in their original place: the order is by id)."""
        ids = sorted(set(item_ids))
        if not ids:
            return
        o = t.outbox
        values: dict[str, Any] = {"status": "queued", "claimed_by": None, "lease_until": None,
                                  "updated_at": self.store.db.now()}
        if error is not None:
            values["last_error"] = error[:2000]
        with self.store.db.begin() as conn:
            conn.execute(sa.update(o).where(o.c.id.in_(ids), o.c.status == "claimed").values(**values))

    def items(self, status: str | None = None, limit: int = 1000) -> list[OutboxItem]:
        o = t.outbox
        q = sa.select(o).where(o.c.flow == self.flow)
        if status is not None:
            q = q.where(o.c.status == status)
        with self.store.db.begin(write=False) as conn:
            return [OutboxItem.from_row(r) for r in conn.execute(q.order_by(o.c.id).limit(limit)).mappings()]


def outbox_counts(store: StateStore) -> dict[tuple[str, str], int]:
    """(flow, status) -> rows, for ``erpsync outbox status`` and the e-mails."""
    o = t.outbox
    q = sa.select(o.c.flow, o.c.status, sa.func.count()).group_by(o.c.flow, o.c.status)
    with store.db.begin(write=False) as conn:
        return {(f, s): int(n) for f, s, n in conn.execute(q)}


def purge_outbox(store: StateStore, older_than_days: int) -> int:
    """Delete drained rows older than the retention (they hold no payload, only the history)."""
    o = t.outbox
    cutoff = store.db.now() - dt.timedelta(days=older_than_days)
    with store.db.begin() as conn:
        return conn.execute(sa.delete(o).where(o.c.status == "done", o.c.updated_at < cutoff)).rowcount
