"""The state store: everything erpsync must remember between runs, on SQLite or PostgreSQL.

Every write is an upsert or a guarded update, so a retried or re-run task leaves the same state
as a single run. One `StateStore` per process; it is safe to share between threads.

The store is a set of small repositories (``erpsync.state.repos``) over one database
(``erpsync.state.db.StateDB``): ``store.xrefs``, ``store.cursors``, ``store.ledger``,
``store.dead_letters``, ``store.audit_log``, ``store.approvals``, ``store.drift_reports``,
``store.runs``. Modules with tables of their own (the outbox, the inbox, the inventory and price
books, ...) use ``store.db``: ``begin()``, ``insert()``, ``now()``, ``is_sqlite``. The flat methods
below (``get_xref``, ``set_cursor``, ``add_dead_letter``, ...) delegate to the repositories.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext

from erpsync import config as settings
from erpsync.state.db import (
    MIGRATIONS_DIR,
    SQLITE_BUSY_TIMEOUT_MS,
    UTC,
    VERSION_TABLE,
    StateDB,
    alembic_config,
    create_state_engine,
)
from erpsync.state.records import (
    Approval,
    AuditEntry,
    DeadLetter,
    DriftReport,
    LedgerEntry,
    RunMetric,
    Xref,
)
from erpsync.state.redact import Redactor
from erpsync.state.repos import (
    ApprovalRepository,
    AuditRepository,
    CursorRepository,
    DeadLetterRepository,
    DriftReportRepository,
    LedgerRepository,
    RunRepository,
    XrefRepository,
)
from erpsync.state.repos.xrefs import NO_ID, check_ref

__all__ = [
    "MIGRATIONS_DIR",
    "NO_ID",
    "SQLITE_BUSY_TIMEOUT_MS",
    "UTC",
    "VERSION_TABLE",
    "StateStore",
    "alembic_config",
    "check_ref",
    "create_state_engine",
]


class StateStore:
    """Cross references, cursors, idempotency ledger, dead letters, audit, approvals, drift, metrics."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        redact_keys: Iterable[str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.db = StateDB(engine, clock=clock)
        self.engine = engine
        self.xrefs = XrefRepository(self.db)
        self.cursors = CursorRepository(self.db)
        self.ledger = LedgerRepository(self.db)
        self.dead_letters = DeadLetterRepository(self.db)
        self.audit_log = AuditRepository(
            self.db, Redactor(settings.audit_redact_keys() if redact_keys is None else redact_keys)
        )
        self.approvals = ApprovalRepository(self.db)
        self.drift_reports = DriftReportRepository(self.db)
        self.runs = RunRepository(self.db)

    @classmethod
    def from_url(cls, url: str | None = None, **kwargs: Any) -> StateStore:
        """Open the store at `url` (None -> `erpsync.config.state_url()`); does not migrate."""
        return cls(create_state_engine(url or settings.state_url()), **kwargs)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        """The store's clock (``store.db.clock``); tests set a fake one."""
        return self.db.clock

    @clock.setter
    def clock(self, value: Callable[[], dt.datetime]) -> None:
        self.db.clock = value

    @property
    def redactor(self) -> Redactor:
        """What the audit log masks (``store.audit_log.redactor``)."""
        return self.audit_log.redactor

    @redactor.setter
    def redactor(self, value: Redactor) -> None:
        self.audit_log.redactor = value

    def transaction(self) -> AbstractContextManager[None]:
        """The store calls made in this block, on this thread, commit together or not at all (one
        write transaction instead of one each: the ledger's completion, its audit row and the
        cross-reference of a write, say). Keep it short: no network call inside; on SQLite it
        holds the write lock. Nested blocks join the outer one."""
        return self.db.transaction()

    # -- older private names: use store.db (begin, insert, now, is_sqlite) ------------------

    def _now(self) -> dt.datetime:
        return self.db.now()

    def _tx(self, *, write: bool = True) -> AbstractContextManager[sa.Connection]:
        return self.db.begin(write=write)

    def _insert(self, table: sa.Table) -> Any:
        return self.db.insert(table)

    @property
    def _sqlite(self) -> bool:
        return self.db.is_sqlite

    # -- schema -----------------------------------------------------------------------------

    def migrate(self, revision: str = "heads") -> None:
        """`alembic upgrade heads` on this store's database; a no-op when already current."""
        with self.db.begin() as conn:
            command.upgrade(alembic_config(conn), revision)

    def downgrade(self, revision: str = "base") -> None:
        """`alembic downgrade`; `base` drops every state table (tests and teardown only)."""
        with self.db.begin() as conn:
            command.downgrade(alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        """The applied revision(s), comma-joined when several branches are applied; None if none."""
        with self.db.begin(write=False) as conn:
            heads = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_heads()
        return ",".join(sorted(heads)) or None

    # -- cross references (store.xrefs) -----------------------------------------------------

    def get_xref(self, system: str, entity: str, external_id: str) -> Xref | None:
        return self.xrefs.get(system, entity, external_id)

    def get_xref_by_internal(self, system: str, entity: str, internal_id: str) -> Xref | None:
        """The binding of an internal id; if several external ids point at it, the latest synced."""
        return self.xrefs.get_by_internal(system, entity, internal_id)

    def upsert_xref(
        self, system: str, entity: str, external_id: str, internal_id: str, content_hash: str | None = None
    ) -> Xref:
        """Bind (or rebind) an external id (``XrefRepository.upsert``)."""
        return self.xrefs.upsert(system, entity, external_id, internal_id, content_hash)

    def list_xrefs(
        self, *, system: str | None = None, entity: str | None = None, search: str | None = None, limit: int = 100
    ) -> list[Xref]:
        """Cross-references for an operator (``XrefRepository.search``)."""
        return self.xrefs.search(system=system, entity=entity, search=search, limit=limit)

    def delete_xref(self, system: str, entity: str, external_id: str) -> Xref | None:
        """Remove one binding; the removed row, or None if there was none."""
        return self.xrefs.delete(system, entity, external_id)

    def xref_map(self, system: str, entity: str, external_ids: Iterable[str]) -> dict[str, Xref]:
        """Bulk lookup: external id -> Xref for those that are bound (missing ones are absent)."""
        return self.xrefs.map(system, entity, external_ids)

    # -- cursors (store.cursors) ------------------------------------------------------------

    def get_cursor(self, flow: str, name: str = "default") -> str | None:
        return self.cursors.get(flow, name)

    def set_cursor(self, flow: str, value: str, name: str = "default") -> None:
        """Store a cursor; a time beyond now + the allowed clock skew (``erpsync.limits``) is never
        stored: such a cursor would skip every later change. It is held at now instead (a re-read
        overlap the ledger makes harmless), with a warning. Change-time cursors of the flows move
        with ``store.cursors.advance`` (forward only, compared as times)."""
        self.cursors.set(flow, value, name)

    # -- idempotency ledger (store.ledger) --------------------------------------------------

    def ledger_begin(
        self, key: str, flow: str, target_system: str, request_hash: str | None = None
    ) -> LedgerEntry:
        """Record the intent to write; if the key is known, return its row untouched."""
        return self.ledger.begin(key, flow, target_system, request_hash)

    def ledger_get(self, key: str) -> LedgerEntry | None:
        return self.ledger.get(key)

    def ledger_complete(self, key: str, result_ref: str | None, response: Any = None) -> None:
        self.ledger.complete(key, result_ref, response)

    def ledger_fail(self, key: str, reason: str) -> None:
        self.ledger.fail(key, reason)

    # -- dead letters (store.dead_letters) --------------------------------------------------

    def add_dead_letter(
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
        """Park a record that failed; the open dead letter of the same record is updated, not duplicated."""
        return self.dead_letters.add(
            flow, entity, external_id, payload, reason, correlation_id=correlation_id, error_kind=error_kind
        )

    def list_dead_letters(
        self,
        flow: str | None = None,
        status: str | None = "open",
        reason_like: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 1000,
    ) -> list[DeadLetter]:
        """Oldest first (``DeadLetterRepository.find``)."""
        return self.dead_letters.find(flow, status, reason_like, since, until, limit)

    def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        return self.dead_letters.get(dead_letter_id)

    def set_dead_letter_status(self, ids: Iterable[int], status: str) -> int:
        """Move dead letters to `status`; returns how many rows changed."""
        return self.dead_letters.set_status(ids, status)

    def resolve_dead_letters(self, flow: str, entity: str, external_id: str) -> int:
        """Close the open dead letter of a record once it synced; returns how many were closed."""
        return self.dead_letters.resolve(flow, entity, external_id)

    def purge_closed_dead_letters(self, older_than_days: int | None = None) -> int:
        """Delete closed dead letters last seen before the retention; open ones are kept."""
        return self.dead_letters.purge_closed(older_than_days)

    # -- audit (store.audit_log) ------------------------------------------------------------

    def audit(
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
        return self.audit_log.add(
            flow=flow,
            system=system,
            operation=operation,
            entity=entity,
            external_id=external_id,
            request=request,
            response=response,
            duration_ms=duration_ms,
            result=result,
            run_id=run_id,
            correlation_id=correlation_id,
        )

    def list_audit(
        self,
        *,
        flow: str | None = None,
        entity: str | None = None,
        external_id: str | None = None,
        correlation_id: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        return self.audit_log.find(
            flow=flow, entity=entity, external_id=external_id, correlation_id=correlation_id, limit=limit
        )

    def purge_audit(self, older_than_days: int | None = None) -> int:
        """Delete audit rows older than the retention (default `ERPSYNC_AUDIT_RETENTION_DAYS`)."""
        return self.audit_log.purge(older_than_days)

    # -- approvals (store.approvals) --------------------------------------------------------

    def add_approval(
        self, flow: str, entity: str, external_id: str, kind: str, proposed: Any, current: Any, reason: str
    ) -> int:
        """Hold a change for a person; the pending approval of the same change is refreshed, not duplicated."""
        return self.approvals.add(flow, entity, external_id, kind, proposed, current, reason)

    def get_approval(self, approval_id: int) -> Approval | None:
        return self.approvals.get(approval_id)

    def list_approvals(self, status: str | None = "pending", flow: str | None = None) -> list[Approval]:
        """Oldest first; `status=None` lists all."""
        return self.approvals.find(status, flow)

    def decide_approval(self, approval_id: int, decision: str, decided_by: str, note: str = "") -> None:
        """pending -> approved | rejected (records who and when); approved -> published."""
        self.approvals.decide(approval_id, decision, decided_by, note)

    # -- drift reports (store.drift_reports) ------------------------------------------------

    def add_drift_report(
        self, flow: str, run_id: str, summary: Any, items: Iterable[Mapping[str, Any]]
    ) -> int:
        """Store a reconciliation result; re-running the same run replaces its report and items."""
        return self.drift_reports.add(flow, run_id, summary, items)

    def get_drift_report(self, report_id: int) -> DriftReport | None:
        return self.drift_reports.get(report_id)

    def list_drift_reports(self, flow: str | None = None, limit: int = 20) -> list[DriftReport]:
        """Newest first, without items (use `get_drift_report` for those)."""
        return self.drift_reports.recent(flow, limit)

    # -- run metrics (store.runs) -----------------------------------------------------------

    def record_run(
        self,
        flow: str,
        run_id: str,
        started_at: dt.datetime,
        finished_at: dt.datetime | None,
        done: int,
        failed: int,
        quarantined: int,
        skipped: int,
        extra: Any = None,
    ) -> None:
        """Upsert on (flow, run_id): a retried task overwrites its own row."""
        self.runs.record(flow, run_id, started_at, finished_at, done, failed, quarantined, skipped, extra)

    def last_runs(self, flow: str, limit: int = 10) -> list[RunMetric]:
        """Newest first."""
        return self.runs.last(flow, limit)

