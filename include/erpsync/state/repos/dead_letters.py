"""Dead letters: records that failed, parked with their payload and reason until someone acts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from erpsync import config as settings
from erpsync.state import schema as t
from erpsync.state.db import StateDB, chunks, utc
from erpsync.state.records import DeadLetter


def retention_cutoff(db: StateDB, older_than_days: int | None) -> dt.datetime:
    """Now minus the retention in days (default ``ERPSYNC_AUDIT_RETENTION_DAYS``)."""
    days = settings.audit_retention_days() if older_than_days is None else older_than_days
    if days < 0:
        raise ValueError(f"older_than_days must be >= 0, got {days}")
    return db.now() - dt.timedelta(days=days)


class DeadLetterRepository:
    """The ``dead_letters`` table: one open dead letter per (flow, entity, external id)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(
        self,
        flow: str,
        entity: str,
        external_id: str,
        payload: Any,
        reason: str,
        *,
        correlation_id: str | None = None,
        error_kind: str = "permanent",
    ) -> int:
        """Park a record that failed; the open dead letter of the same record is updated, not duplicated.
        A payload over the record limits is kept as its bounded excerpt, a reason cut to its limit
        (``erpsync.limits``)."""
        from erpsync import limits

        payload = limits.bounded_payload(payload)
        reason = limits.bounded(str(reason))
        dl = t.dead_letters
        now = self.db.now()
        stmt = self.db.insert(dl).values(
            flow=flow,
            entity=entity,
            external_id=str(external_id),
            payload=payload,
            reason=str(reason),
            error_kind=error_kind,
            attempts=1,
            status="open",
            correlation_id=correlation_id,
            first_seen=now,
            last_seen=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[dl.c.flow, dl.c.entity, dl.c.external_id],
            index_where=dl.c.status == "open",
            set_={
                "payload": stmt.excluded.payload,
                "reason": stmt.excluded.reason,
                "error_kind": stmt.excluded.error_kind,
                "correlation_id": sa.func.coalesce(stmt.excluded.correlation_id, dl.c.correlation_id),
                "attempts": dl.c.attempts + 1,
                "last_seen": stmt.excluded.last_seen,
            },
        ).returning(dl.c.id)
        with self.db.begin() as conn:
            return int(conn.execute(stmt).scalar_one())

    def find(
        self,
        flow: str | None = None,
        status: str | None = "open",
        reason_like: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 1000,
    ) -> list[DeadLetter]:
        """Oldest first. `status=None` lists all; `reason_like` is a case-insensitive substring
        (or a LIKE pattern if it has `%`); `since`/`until` bound `last_seen` (until exclusive)."""
        dl = t.dead_letters
        q = sa.select(dl)
        if flow is not None:
            q = q.where(dl.c.flow == flow)
        if status is not None:
            q = q.where(dl.c.status == status)
        if reason_like:
            pattern = reason_like if "%" in reason_like else f"%{reason_like}%"
            q = q.where(dl.c.reason.ilike(pattern))
        if since is not None:
            q = q.where(dl.c.last_seen >= utc(since))
        if until is not None:
            q = q.where(dl.c.last_seen < utc(until))
        q = q.order_by(dl.c.id).limit(limit)
        with self.db.begin(write=False) as conn:
            return [DeadLetter.from_row(r) for r in conn.execute(q).mappings()]

    def get(self, dead_letter_id: int) -> DeadLetter | None:
        dl = t.dead_letters
        with self.db.begin(write=False) as conn:
            row = conn.execute(sa.select(dl).where(dl.c.id == dead_letter_id)).mappings().first()
        return DeadLetter.from_row(row) if row else None

    def set_status(self, ids: Iterable[int], status: str) -> int:
        """Move dead letters to `status`; returns how many rows changed."""
        if status not in t.DEAD_LETTER_STATUSES:
            raise ValueError(f"dead letter status {status!r}: use one of {', '.join(t.DEAD_LETTER_STATUSES)}")
        dl = t.dead_letters
        id_list = sorted({int(i) for i in ids})
        changed = 0
        try:
            with self.db.begin() as conn:
                for chunk in chunks(id_list):
                    changed += conn.execute(
                        sa.update(dl).where(dl.c.id.in_(chunk), dl.c.status != status).values(status=status)
                    ).rowcount
        except IntegrityError:
            raise ValueError(
                "cannot reopen: another open dead letter exists for the same record; resolve it first"
            ) from None
        return changed

    def resolve(self, flow: str, entity: str, external_id: str) -> int:
        """Close the open dead letter of a record once it synced; returns how many were closed."""
        dl = t.dead_letters
        with self.db.begin() as conn:
            return conn.execute(
                sa.update(dl)
                .where(
                    dl.c.flow == flow,
                    dl.c.entity == entity,
                    dl.c.external_id == str(external_id),
                    dl.c.status == "open",
                )
                .values(status="resolved")
            ).rowcount

    def resolve_unless_seen_since(self, flow: str, entity: str, external_ids: Iterable[str],
                                  since: dt.datetime) -> int:
        """Close the open dead letters of these records unless one was filed again at or after
        ``since`` (a run's start): what a run read whole and did not dead-letter again is stale."""
        dl = t.dead_letters
        ids = sorted({str(x) for x in external_ids})
        closed = 0
        with self.db.begin() as conn:
            for start in range(0, len(ids), 500):
                closed += conn.execute(
                    sa.update(dl)
                    .where(dl.c.flow == flow, dl.c.entity == entity, dl.c.status == "open",
                           dl.c.external_id.in_(ids[start:start + 500]), dl.c.last_seen < utc(since))
                    .values(status="resolved")
                ).rowcount
        return closed

    def replace_payload(self, dead_letter_id: int, payload: Any) -> bool:
        """Put a corrected payload on an open dead letter (an operator's edit before a replay);
        False when it is not open (closed meanwhile, or unknown): nothing is changed then."""
        dl = t.dead_letters
        with self.db.begin() as conn:
            return conn.execute(
                sa.update(dl).where(dl.c.id == dead_letter_id, dl.c.status == "open").values(payload=payload)
            ).rowcount == 1

    def redact_payloads(self, needle: str, redact: Callable[[Any], Any]) -> int:
        """Replace by ``redact(payload)`` every payload, open or closed, whose text holds ``needle``
        (case-insensitive; a person's e-mail on erasure); returns how many were rewritten."""
        needle = needle.lower()
        if not needle:
            return 0
        dl = t.dead_letters
        changed = 0
        with self.db.begin() as conn:
            for row in conn.execute(sa.select(dl.c.id, dl.c.payload)).mappings():
                if needle in str(row["payload"]).lower():
                    conn.execute(dl.update().where(dl.c.id == row["id"]).values(payload=redact(row["payload"])))
                    changed += 1
        return changed

    def purge_closed(self, older_than_days: int | None = None) -> int:
        """Delete dead letters that are closed (resolved, replayed, ignored) and were last seen
        before the retention (default `ERPSYNC_AUDIT_RETENTION_DAYS`): their payloads hold personal
        data. Open ones are kept whatever their age: they are work nobody has done yet."""
        cutoff = retention_cutoff(self.db, older_than_days)
        dl = t.dead_letters
        with self.db.begin() as conn:
            return conn.execute(
                sa.delete(dl).where(dl.c.status != "open", dl.c.last_seen < cutoff)
            ).rowcount
