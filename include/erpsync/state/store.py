"""The state store: everything erpsync must remember between runs, on SQLite or PostgreSQL.

Every write is an upsert or a guarded update, so a retried or re-run task leaves the same state
as a single run. One `StateStore` per process; it is safe to share between threads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from erpsync import config as settings
from erpsync.errors import ConfigError
from erpsync.state import schema as t
from erpsync.state.records import (
    Approval,
    AuditEntry,
    DeadLetter,
    DriftItem,
    DriftReport,
    LedgerEntry,
    RunMetric,
    Xref,
)
from erpsync.state.redact import Redactor

UTC = dt.UTC
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "erpsync_alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")
_CHUNK = 500  # bound IN lists (SQLite caps bound parameters)
_SQLITE_BEGIN_OPTION = "erpsync_sqlite_begin"

_APPROVAL_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "approved": ("pending",),
    "rejected": ("pending",),
    "published": ("approved",),
    # erpsync itself: the ERP no longer says what was proposed or approved (compare-and-set of
    # pricing_sync); kept as status "rejected" with a note "superseded: ..."
    "superseded": ("pending", "approved"),
}
_APPROVAL_ALIASES = {"approve": "approved", "reject": "rejected", "publish": "published", "supersede": "superseded"}


def create_state_engine(url: str) -> sa.Engine:
    """An engine tuned for the state store.

    SQLite: one file shared by threads and processes, so WAL (readers never block the writer),
    a busy timeout instead of instant "database is locked", and the driver's own transaction
    handling switched off so we can send `BEGIN IMMEDIATE` for writes (see `_begin`).
    PostgreSQL: pre-ping, because task processes hold pooled connections across long idle gaps.
    """
    url = settings.normalise_db_url(url)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_recycle=1800)
    if backend != "sqlite":
        raise ConfigError(
            f"state store URL {parsed.render_as_string(hide_password=True)!r} is not supported; "
            "use sqlite:///path/state.db or postgresql+psycopg://user:pass@host/db"
        )
    # one SQLite file cannot be shared by workers on several machines (Celery, ...): refused
    settings.refuse_sqlite_across_hosts(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    }
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        # concurrent writers (write_concurrency up to 64) plus their reads: no waiting for the pool
        kwargs.update(pool_size=8, max_overflow=64)
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        try:
            if not in_memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that reads and then
        # writes can fail with SQLITE_BUSY without waiting, and claims must serialise.
        conn.exec_driver_sql(conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "BEGIN"))

    return engine


def alembic_config(connection: sa.Connection | None = None, url: str | None = None) -> Config:
    """Alembic configuration built in code, so migrations run from an installed package in any CWD."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware (UTC) datetime")
    return value.astimezone(UTC)


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class StateStore:
    """Cross references, cursors, idempotency ledger, dead letters, audit, approvals, drift, metrics."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        redact_keys: Iterable[str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError(f"state store dialect {engine.dialect.name!r} is not supported")
        self.engine = engine
        self.redactor = Redactor(settings.audit_redact_keys() if redact_keys is None else redact_keys)
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(UTC))
        self._sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler (1 ms growing to 100 ms steps) instead of being woken. Threads
        # of one process queue on this lock instead, so the write lock passes at once (about
        # 4x the write transactions per second with 24 threads); other processes still meet
        # the busy timeout.
        self._write_lock = threading.RLock() if self._sqlite else None
        self._local = threading.local()  # the connection of this thread's open transaction()

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

    # -- plumbing ---------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return _utc(self.clock())

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[sa.Connection]:
        """One transaction; on SQLite a writer takes the write lock at BEGIN (BEGIN IMMEDIATE).
        Inside ``transaction()`` on the same thread, the open transaction is used."""
        joined = getattr(self._local, "conn", None)
        if joined is not None:
            yield joined
            return
        if write and self._write_lock is not None:
            with self._write_lock, self.engine.connect() as conn:
                conn.execution_options(**{_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
                with conn.begin():
                    yield conn
            return
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The store calls made in this block, on this thread, commit together or not at all (one
        write transaction instead of one each: the ledger's completion, its audit row and the
        cross-reference of a write, say). Keep it short: no network call inside; on SQLite it
        holds the write lock. Nested blocks join the outer one."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self._tx() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def _insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which has `on_conflict_do_update` / `on_conflict_do_nothing`."""
        return sqlite.insert(table) if self._sqlite else postgresql.insert(table)

    # -- schema -----------------------------------------------------------------------------

    def migrate(self, revision: str = "heads") -> None:
        """`alembic upgrade heads` on this store's database; a no-op when already current.

        ``heads`` (not ``head``): each feature may add its own migration branch off ``0001``.
        """
        with self._tx() as conn:
            command.upgrade(alembic_config(conn), revision)

    def downgrade(self, revision: str = "base") -> None:
        """`alembic downgrade`; `base` drops every state table (tests and teardown only)."""
        with self._tx() as conn:
            command.downgrade(alembic_config(conn), revision)

    def current_revision(self) -> str | None:
        """The applied revision(s), comma-joined when several branches are applied; None if none."""
        with self._tx(write=False) as conn:
            heads = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_heads()
        return ",".join(sorted(heads)) or None

    # -- cross references -------------------------------------------------------------------

    def get_xref(self, system: str, entity: str, external_id: str) -> Xref | None:
        x = t.xref
        with self._tx(write=False) as conn:
            row = (
                conn.execute(
                    sa.select(x).where(
                        x.c.system == system, x.c.entity == entity, x.c.external_id == str(external_id)
                    )
                )
                .mappings()
                .first()
            )
        return Xref.from_row(row) if row else None

    def get_xref_by_internal(self, system: str, entity: str, internal_id: str) -> Xref | None:
        """The binding of an internal id; if several external ids point at it, the latest synced."""
        x = t.xref
        with self._tx(write=False) as conn:
            row = (
                conn.execute(
                    sa.select(x)
                    .where(x.c.system == system, x.c.entity == entity, x.c.internal_id == str(internal_id))
                    .order_by(x.c.last_synced_at.desc(), x.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return Xref.from_row(row) if row else None

    def upsert_xref(
        self, system: str, entity: str, external_id: str, internal_id: str, content_hash: str | None = None
    ) -> Xref:
        """Bind (or rebind) an external id; `content_hash` is replaced too, None forces the next sync.

        Both ids must be real: an empty, blank or "None"/"null" id raises ValueError (a binding to
        nothing is a false success; the table has the same CHECK, migration 0011)."""
        check_ref(internal_id, f"{system} {entity} {external_id}: internal id")
        check_ref(external_id, f"{system} {entity}: external id")
        x = t.xref
        now = self._now()
        stmt = self._insert(x).values(
            system=system,
            entity=entity,
            external_id=str(external_id),
            internal_id=str(internal_id),
            content_hash=content_hash,
            last_synced_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[x.c.system, x.c.entity, x.c.external_id],
            set_={
                "internal_id": stmt.excluded.internal_id,
                "content_hash": stmt.excluded.content_hash,
                "last_synced_at": stmt.excluded.last_synced_at,
            },
        ).returning(*x.c)
        with self._tx() as conn:
            return Xref.from_row(conn.execute(stmt).mappings().one())

    def list_xrefs(
        self, *, system: str | None = None, entity: str | None = None, search: str | None = None, limit: int = 100
    ) -> list[Xref]:
        """Cross-references for an operator: filtered by system and entity, ``search`` a substring of
        either id (case-insensitive); ordered by system, entity, external id."""
        x = t.xref
        q = sa.select(x)
        if system:
            q = q.where(x.c.system == system)
        if entity:
            q = q.where(x.c.entity == entity)
        if search:
            like = f"%{search.lower()}%"
            q = q.where(sa.or_(sa.func.lower(x.c.external_id).like(like), sa.func.lower(x.c.internal_id).like(like)))
        q = q.order_by(x.c.system, x.c.entity, x.c.external_id).limit(limit)
        with self._tx(write=False) as conn:
            return [Xref.from_row(r) for r in conn.execute(q).mappings()]

    def delete_xref(self, system: str, entity: str, external_id: str) -> Xref | None:
        """Remove one binding; the removed row, or None if there was none."""
        x = t.xref
        where = (x.c.system == system, x.c.entity == entity, x.c.external_id == str(external_id))
        with self._tx() as conn:
            row = conn.execute(sa.select(x).where(*where)).mappings().first()
            if row is None:
                return None
            conn.execute(sa.delete(x).where(*where))
        return Xref.from_row(row)

    def xref_map(self, system: str, entity: str, external_ids: Iterable[str]) -> dict[str, Xref]:
        """Bulk lookup: external id -> Xref for those that are bound (missing ones are absent)."""
        x = t.xref
        wanted = sorted({str(e) for e in external_ids})
        result: dict[str, Xref] = {}
        if not wanted:
            return result
        with self._tx(write=False) as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    sa.select(x).where(x.c.system == system, x.c.entity == entity, x.c.external_id.in_(chunk))
                ).mappings()
                for row in rows:
                    result[row["external_id"]] = Xref.from_row(row)
        return result

    # -- cursors ----------------------------------------------------------------------------

    def get_cursor(self, flow: str, name: str = "default") -> str | None:
        c = t.cursors
        with self._tx(write=False) as conn:
            return conn.execute(
                sa.select(c.c.value).where(c.c.flow == flow, c.c.name == name)
            ).scalar_one_or_none()

    def set_cursor(self, flow: str, value: str, name: str = "default") -> None:
        """Store a cursor; a time beyond now + the allowed clock skew (``erpsync.limits``) is never
        stored: such a cursor would skip every later change. It is held at now instead (a re-read
        overlap the ledger makes harmless), with a warning."""
        value = _bounded_cursor(flow, name, str(value))
        c = t.cursors
        stmt = self._insert(c).values(flow=flow, name=name, value=str(value), updated_at=self._now())
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.c.flow, c.c.name],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
        with self._tx() as conn:
            conn.execute(stmt)

    # -- idempotency ledger -----------------------------------------------------------------

    def ledger_begin(
        self, key: str, flow: str, target_system: str, request_hash: str | None = None
    ) -> LedgerEntry:
        """Record the intent to write; if the key is known, return its row untouched so the caller
        can see the write was already done (or is in doubt) instead of writing twice."""
        lg = t.idempotency_ledger
        now = self._now()
        stmt = (
            self._insert(lg)
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
        with self._tx() as conn:
            row = conn.execute(stmt).mappings().first()
            if row is None:
                row = conn.execute(sa.select(lg).where(lg.c.key == key)).mappings().one()
            return LedgerEntry.from_row(row)

    def ledger_get(self, key: str) -> LedgerEntry | None:
        lg = t.idempotency_ledger
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(lg).where(lg.c.key == key)).mappings().first()
        return LedgerEntry.from_row(row) if row else None

    def ledger_complete(self, key: str, result_ref: str | None, response: Any = None) -> None:
        self._ledger_update(
            key, status="done", result_ref=None if result_ref is None else str(result_ref), response=response
        )

    def ledger_fail(self, key: str, reason: str) -> None:
        self._ledger_update(key, status="failed", error=str(reason))

    def _ledger_update(self, key: str, **values: Any) -> None:
        lg = t.idempotency_ledger
        with self._tx() as conn:
            res = conn.execute(sa.update(lg).where(lg.c.key == key).values(updated_at=self._now(), **values))
        if res.rowcount == 0:
            raise KeyError(f"idempotency key {key!r} not in the ledger; call ledger_begin first")

    # -- dead letters -----------------------------------------------------------------------

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
        """Park a record that failed; the open dead letter of the same record is updated, not duplicated.
        A payload over the record limits is kept as its bounded excerpt, a reason cut to its limit
        (``erpsync.limits``)."""
        from erpsync import limits

        payload = limits.bounded_payload(payload)
        reason = limits.bounded(str(reason))
        dl = t.dead_letters
        now = self._now()
        stmt = self._insert(dl).values(
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
        with self._tx() as conn:
            return int(conn.execute(stmt).scalar_one())

    def list_dead_letters(
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
            q = q.where(dl.c.last_seen >= _utc(since))
        if until is not None:
            q = q.where(dl.c.last_seen < _utc(until))
        q = q.order_by(dl.c.id).limit(limit)
        with self._tx(write=False) as conn:
            return [DeadLetter.from_row(r) for r in conn.execute(q).mappings()]

    def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        dl = t.dead_letters
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(dl).where(dl.c.id == dead_letter_id)).mappings().first()
        return DeadLetter.from_row(row) if row else None

    def set_dead_letter_status(self, ids: Iterable[int], status: str) -> int:
        """Move dead letters to `status`; returns how many rows changed."""
        if status not in t.DEAD_LETTER_STATUSES:
            raise ValueError(f"dead letter status {status!r}: use one of {', '.join(t.DEAD_LETTER_STATUSES)}")
        dl = t.dead_letters
        id_list = sorted({int(i) for i in ids})
        changed = 0
        try:
            with self._tx() as conn:
                for chunk in _chunks(id_list):
                    changed += conn.execute(
                        sa.update(dl).where(dl.c.id.in_(chunk), dl.c.status != status).values(status=status)
                    ).rowcount
        except IntegrityError:
            raise ValueError(
                "cannot reopen: another open dead letter exists for the same record; resolve it first"
            ) from None
        return changed

    def resolve_dead_letters(self, flow: str, entity: str, external_id: str) -> int:
        """Close the open dead letter of a record once it synced; returns how many were closed."""
        dl = t.dead_letters
        with self._tx() as conn:
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

    # -- audit ------------------------------------------------------------------------------

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
        a = t.audit_log
        with self._tx() as conn:
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
                        at=self._now(),
                    )
                    .returning(a.c.id)
                ).scalar_one()
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
        with self._tx(write=False) as conn:
            return [AuditEntry.from_row(r) for r in conn.execute(q).mappings()]

    def purge_audit(self, older_than_days: int | None = None) -> int:
        """Delete audit rows older than the retention (default `ERPSYNC_AUDIT_RETENTION_DAYS`)."""
        days = settings.audit_retention_days() if older_than_days is None else older_than_days
        if days < 0:
            raise ValueError(f"older_than_days must be >= 0, got {days}")
        cutoff = self._now() - dt.timedelta(days=days)
        a = t.audit_log
        with self._tx() as conn:
            return conn.execute(sa.delete(a).where(a.c.at < cutoff)).rowcount

    def purge_closed_dead_letters(self, older_than_days: int | None = None) -> int:
        """Delete dead letters that are closed (resolved, replayed, ignored) and were last seen
        before the retention (default `ERPSYNC_AUDIT_RETENTION_DAYS`): their payloads hold personal
        data. Open ones are kept whatever their age: they are work nobody has done yet."""
        days = settings.audit_retention_days() if older_than_days is None else older_than_days
        if days < 0:
            raise ValueError(f"older_than_days must be >= 0, got {days}")
        cutoff = self._now() - dt.timedelta(days=days)
        dl = t.dead_letters
        with self._tx() as conn:
            return conn.execute(
                sa.delete(dl).where(dl.c.status != "open", dl.c.last_seen < cutoff)
            ).rowcount

    # -- approvals --------------------------------------------------------------------------

    def add_approval(
        self, flow: str, entity: str, external_id: str, kind: str, proposed: Any, current: Any, reason: str
    ) -> int:
        """Hold a change for a person; the pending approval of the same change is refreshed, not duplicated."""
        ap = t.approvals
        stmt = self._insert(ap).values(
            flow=flow,
            entity=entity,
            external_id=str(external_id),
            kind=kind,
            proposed=proposed,
            current=current,
            reason=str(reason),
            status="pending",
            created_at=self._now(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[ap.c.flow, ap.c.entity, ap.c.external_id, ap.c.kind],
            index_where=ap.c.status == "pending",
            set_={
                "proposed": stmt.excluded.proposed,
                "current": stmt.excluded.current,
                "reason": stmt.excluded.reason,
            },
        ).returning(ap.c.id)
        with self._tx() as conn:
            return int(conn.execute(stmt).scalar_one())

    def get_approval(self, approval_id: int) -> Approval | None:
        ap = t.approvals
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(ap).where(ap.c.id == approval_id)).mappings().first()
        return Approval.from_row(row) if row else None

    def list_approvals(self, status: str | None = "pending", flow: str | None = None) -> list[Approval]:
        """Oldest first; `status=None` lists all."""
        ap = t.approvals
        q = sa.select(ap)
        if status is not None:
            q = q.where(ap.c.status == status)
        if flow is not None:
            q = q.where(ap.c.flow == flow)
        with self._tx(write=False) as conn:
            return [Approval.from_row(r) for r in conn.execute(q.order_by(ap.c.id)).mappings()]

    def decide_approval(self, approval_id: int, decision: str, decided_by: str, note: str = "") -> None:
        """pending -> approved | rejected (records who and when); approved -> published.

        Guarded by the current status in the UPDATE itself, so two people deciding at once
        cannot both win.
        """
        decision = _APPROVAL_ALIASES.get(decision, decision)
        if decision not in _APPROVAL_TRANSITIONS:
            raise ValueError(f"approval decision {decision!r}: use approved, rejected, published or superseded")
        ap = t.approvals
        values: dict[str, Any] = {"status": "rejected" if decision == "superseded" else decision}
        if decision != "published":
            values.update(decided_by=decided_by, decided_at=self._now(), note=note)
        elif note:
            values["note"] = note
        with self._tx() as conn:
            res = conn.execute(
                sa.update(ap)
                .where(ap.c.id == approval_id, ap.c.status.in_(_APPROVAL_TRANSITIONS[decision]))
                .values(**values)
            )
            if res.rowcount:
                return
            found = conn.execute(sa.select(ap.c.status, ap.c.note).where(ap.c.id == approval_id)).first()
        if found is None:
            raise KeyError(f"approval {approval_id} does not exist")
        current, why = found
        if current == "rejected" and (why or "").startswith("superseded:"):
            current = f"superseded ({why[len('superseded:'):].strip()})"
        raise ValueError(f"approval {approval_id} is {current}; it cannot become {decision}")

    # -- drift reports ----------------------------------------------------------------------

    def add_drift_report(
        self, flow: str, run_id: str, summary: Any, items: Iterable[Mapping[str, Any]]
    ) -> int:
        """Store a reconciliation result; re-running the same run replaces its report and items."""
        dr, di = t.drift_reports, t.drift_items
        item_list = [dict(t.to_jsonable(i)) for i in items]
        stmt = self._insert(dr).values(
            flow=flow, run_id=run_id, summary=summary, item_count=len(item_list), created_at=self._now()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[dr.c.flow, dr.c.run_id],
            set_={
                "summary": stmt.excluded.summary,
                "item_count": stmt.excluded.item_count,
                "created_at": stmt.excluded.created_at,
            },
        ).returning(dr.c.id)
        with self._tx() as conn:
            report_id = int(conn.execute(stmt).scalar_one())
            conn.execute(sa.delete(di).where(di.c.report_id == report_id))
            if item_list:
                conn.execute(
                    sa.insert(di),
                    [
                        {
                            "report_id": report_id,
                            "entity": _opt_str(i.get("entity")),
                            "external_id": _opt_str(i.get("external_id")),
                            "kind": _opt_str(i.get("kind")),
                            "detail": i,
                        }
                        for i in item_list
                    ],
                )
        return report_id

    def get_drift_report(self, report_id: int) -> DriftReport | None:
        dr, di = t.drift_reports, t.drift_items
        with self._tx(write=False) as conn:
            row = conn.execute(sa.select(dr).where(dr.c.id == report_id)).mappings().first()
            if row is None:
                return None
            items = tuple(
                DriftItem.from_row(r)
                for r in conn.execute(
                    sa.select(di).where(di.c.report_id == report_id).order_by(di.c.id)
                ).mappings()
            )
        return DriftReport.from_row(row, items=items)

    def list_drift_reports(self, flow: str | None = None, limit: int = 20) -> list[DriftReport]:
        """Newest first, without items (use `get_drift_report` for those)."""
        dr = t.drift_reports
        q = sa.select(dr)
        if flow is not None:
            q = q.where(dr.c.flow == flow)
        q = q.order_by(dr.c.created_at.desc(), dr.c.id.desc()).limit(limit)
        with self._tx(write=False) as conn:
            return [DriftReport.from_row(r) for r in conn.execute(q).mappings()]

    # -- run metrics ------------------------------------------------------------------------

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
        rm = t.run_metrics
        stmt = self._insert(rm).values(
            flow=flow,
            run_id=run_id,
            started_at=started_at,
            finished_at=finished_at,
            done=done,
            failed=failed,
            quarantined=quarantined,
            skipped=skipped,
            extra=extra,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[rm.c.flow, rm.c.run_id],
            set_={
                c: getattr(stmt.excluded, c)
                for c in ("started_at", "finished_at", "done", "failed", "quarantined", "skipped", "extra")
            },
        )
        with self._tx() as conn:
            conn.execute(stmt)

    def last_runs(self, flow: str, limit: int = 10) -> list[RunMetric]:
        """Newest first."""
        rm = t.run_metrics
        q = (
            sa.select(rm)
            .where(rm.c.flow == flow)
            .order_by(rm.c.started_at.desc(), rm.c.id.desc())
            .limit(limit)
        )
        with self._tx(write=False) as conn:
            return [RunMetric.from_row(r) for r in conn.execute(q).mappings()]


#: ids that stand for nothing (a str() of None or null): never an internal or external id
NO_ID = frozenset({"", "none", "null", "nil", "undefined", "?"})


def check_ref(value: Any, what: str) -> str:
    """``value`` as an id, or ValueError when it is empty or stands for nothing ("None", "null")."""
    text = "" if value is None else str(value).strip()
    if text.lower() in NO_ID:
        raise ValueError(f"{what} is {value!r}: not an id (a cross-reference must name a real record)")
    return text


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _bounded_cursor(flow: str, name: str, value: str) -> str:
    """``value``, or now when it is a time beyond now + the allowed clock skew."""
    from erpsync import limits

    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value  # not a time (a token, an id): the flow's own business
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    now = dt.datetime.now(dt.UTC)
    if parsed <= limits.future_bound(now=now):
        return value
    held = now.isoformat().replace("+00:00", "Z")
    logging.getLogger("erpsync.state").warning(
        "cursor %s/%s: %s is beyond now + the allowed clock skew; held at %s (a record stamped in the "
        "future must not make every later change unread)", flow, name, value, held)
    return held
