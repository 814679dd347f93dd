"""The audit log: every transfer, its request and response redacted before they are stored."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB
from erpsync.state.records import AuditEntry
from erpsync.state.redact import Redactor
from erpsync.state.repos.dead_letters import retention_cutoff


class AuditRepository:
    """The ``audit_log`` table."""

    def __init__(self, db: StateDB, redactor: Redactor) -> None:
        self.db = db
        self.redactor = redactor

    def add(
        self,
        *,
        flow: str,
        system: str,
        operation: str,
        entity: str,
        external_id: str | None,
        request: Any,
        response: Any,
        duration_ms: float | None,
        result: str,
        run_id: str | None = None,
        correlation_id: str | None = None,
    ) -> int:
        """Log one transfer; request and response are redacted before they reach the database."""
        a = t.audit_log
        with self.db.begin() as conn:
            return int(
                conn.execute(
                    sa.insert(a)
                    .values(
                        flow=flow,
                        system=system,
                        operation=operation,
                        entity=entity,
                        external_id=None if external_id is None else str(external_id),
                        request=self.redactor.redact(t.to_jsonable(request, lenient=True)),
                        response=self.redactor.redact(t.to_jsonable(response, lenient=True)),
                        duration_ms=None if duration_ms is None else round(duration_ms),
                        result=result,
                        run_id=run_id,
                        correlation_id=correlation_id,
                        at=self.db.now(),
                    )
                    .returning(a.c.id)
                ).scalar_one()
            )

    def find(
        self,
        *,
        flow: str | None = None,
        entity: str | None = None,
        external_id: str | None = None,
        correlation_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        a = t.audit_log
        q = sa.select(a)
        for col, value in (
            (a.c.flow, flow),
            (a.c.entity, entity),
            (a.c.external_id, external_id),
            (a.c.correlation_id, correlation_id),
        ):
            if value is not None:
                q = q.where(col == value)
        q = q.order_by(a.c.at.desc(), a.c.id.desc()).limit(limit)
        with self.db.begin(write=False) as conn:
            return [AuditEntry.from_row(r) for r in conn.execute(q).mappings()]

    def purge(self, older_than_days: int | None = None) -> int:
        """Delete audit rows older than the retention (default `ERPSYNC_AUDIT_RETENTION_DAYS`)."""
        cutoff = retention_cutoff(self.db, older_than_days)
        a = t.audit_log
        with self.db.begin() as conn:
            return conn.execute(sa.delete(a).where(a.c.at < cutoff)).rowcount
