"""The state database: one engine, its transactions, and the helpers every repository shares.

Every repository of the state store (``erpsync.state.repos``, and the modules that keep their own
tables: ``reliability.outbox``, ``inbox``, ``state.inventory``, ...) reaches the database through
one ``StateDB``: ``begin()`` for a connection inside a transaction (joined to the open
``transaction()`` of this thread), ``insert()`` for the dialect's upserting INSERT, ``now()`` for
the store's clock. One per process; safe to share between threads.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from erpsync import config as settings
from erpsync.errors import ConfigError

UTC = dt.UTC
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "erpsync_alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 30_000
T = TypeVar("T")
CHUNK = 500  # bound IN lists (SQLite caps bound parameters)
_SQLITE_BEGIN_OPTION = "erpsync_sqlite_begin"


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


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; a naive datetime (no zone) raises ValueError: the store never guesses one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware (UTC) datetime")
    return value.astimezone(UTC)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size``: bounded IN lists."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


class StateDB:
    """The engine of the state store, its transactions and its clock."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ConfigError(f"state store dialect {engine.dialect.name!r} is not supported")
        self.engine = engine
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(UTC))
        self.is_sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # SQLite's busy handler (1 ms growing to 100 ms steps) instead of being woken. Threads
        # of one process queue on this lock instead, so the write lock passes at once (about
        # 4x the write transactions per second with 24 threads); other processes still meet
        # the busy timeout.
        self._write_lock = threading.RLock() if self.is_sqlite else None
        self._local = threading.local()  # the connection of this thread's open transaction()

    def now(self) -> dt.datetime:
        """The store's clock, in UTC (a clock returning a naive time raises ValueError)."""
        return utc(self.clock())

    @contextmanager
    def begin(self, *, write: bool = True) -> Iterator[sa.Connection]:
        """A connection in one transaction; on SQLite a writer takes the write lock at BEGIN (BEGIN
        IMMEDIATE). Inside ``transaction()`` on the same thread, that open transaction is used."""
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
        with self.begin() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def insert(self, table: sa.Table) -> Any:
        """The dialect's INSERT, which has `on_conflict_do_update` / `on_conflict_do_nothing`."""
        return sqlite.insert(table) if self.is_sqlite else postgresql.insert(table)
