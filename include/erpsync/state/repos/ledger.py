"""The idempotency ledger: one row per write, keyed, so a retried write is never sent twice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB, chunks
from erpsync.state.records import LedgerEntry


class LedgerRepository:
    """The ``idempotency_ledger`` table."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def begin(self, key: str, flow: str, target_system: str, request_hash: str | None = None) -> LedgerEntry:
        """Record the intent to write; if the key is known, return its row untouched so the caller
        can see the write was already done (or is in doubt) instead of writing twice."""
        lg = t.idempotency_ledger
        now = self.db.now()
        stmt = (
            self.db.insert(lg)
            .values(
                key=key,
                flow=flow,
                target_system=target_system,
                request_hash=request_hash,
                status="pending",
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[lg.c.key])
            .returning(*lg.c)
        )
        with self.db.begin() as conn:
            row = conn.execute(stmt).mappings().first()
            if row is None:
                row = conn.execute(sa.select(lg).where(lg.c.key == key)).mappings().one()
            return LedgerEntry.from_row(row)

    def get(self, key: str) -> LedgerEntry | None:
        lg = t.idempotency_ledger
        with self.db.begin(write=False) as conn:
            row = conn.execute(sa.select(lg).where(lg.c.key == key)).mappings().first()
        return LedgerEntry.from_row(row) if row else None

    def complete(self, key: str, result_ref: str | None, response: Any = None) -> None:
        self._update(
            key, status="done", result_ref=None if result_ref is None else str(result_ref), response=response
        )

    def fail(self, key: str, reason: str) -> None:
        self._update(key, status="failed", error=str(reason))

    def drop_responses(self, keys: Iterable[str]) -> int:
        """Forget the stored answers of these writes (they name a person who asked to be erased);
        the rows stay, so the writes are still known as done. Returns how many rows had a key."""
        lg = t.idempotency_ledger
        key_list = sorted(set(keys))
        changed = 0
        with self.db.begin() as conn:
            for chunk in chunks(key_list):
                changed += conn.execute(sa.update(lg).where(lg.c.key.in_(chunk)).values(response=None)).rowcount
        return changed

    def _update(self, key: str, **values: Any) -> None:
        lg = t.idempotency_ledger
        with self.db.begin() as conn:
            res = conn.execute(sa.update(lg).where(lg.c.key == key).values(updated_at=self.db.now(), **values))
        if res.rowcount == 0:
            raise KeyError(f"idempotency key {key!r} not in the ledger; call ledger_begin first")
