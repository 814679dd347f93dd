"""Migrations create the whole schema, are idempotent, go down to base and up again."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

import erpsync.state.store as store_module
from erpsync.state import StateStore
from erpsync.state.schema import metadata
from erpsync.state.store import VERSION_TABLE

STATE_TABLES = {t.name for t in metadata.sorted_tables}


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_migrate_is_idempotent_and_reversible(blank_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini here: the config must come from the package
    with StateStore.from_url(blank_url) as store:
        assert store.current_revision() is None
        store.migrate()
        head = store.current_revision()
        assert head is not None
        store.migrate()
        assert store.current_revision() == head
        assert STATE_TABLES <= _tables(blank_url)

        store.downgrade("base")
        assert store.current_revision() is None
        assert _tables(blank_url) & STATE_TABLES == set()

        store.migrate()
        assert store.current_revision() == head
        store.set_cursor("orders", "42")
        assert store.get_cursor("orders") == "42"


def test_schema_module_matches_migrations(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "compare_type": False}
            )
            diff = compare_metadata(ctx, metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_alembic_command_line_config(blank_url: str, monkeypatch, tmp_path: Path) -> None:
    """`alembic -c .../migrations/alembic.ini upgrade head` uses ERPSYNC_STATE_URL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ERPSYNC_STATE_URL", blank_url)
    cfg = Config(str(store_module.MIGRATIONS_DIR / "alembic.ini"))
    command.upgrade(cfg, "heads")
    assert STATE_TABLES <= _tables(blank_url)
    command.downgrade(cfg, "base")
    assert _tables(blank_url) & STATE_TABLES == set()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_offline_sql_renders(dialect: str, monkeypatch, capsys) -> None:
    """`alembic upgrade head --sql` works, for DBAs who apply DDL by hand."""
    url = "sqlite:///x.db" if dialect == "sqlite" else "postgresql://u@h/db"
    cfg = store_module.alembic_config(url=url)
    command.upgrade(cfg, "heads", sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE work_items" in out
    assert "DROP TABLE work_items" in out  # 0014: the unused queue is gone (the outbox is the queue)
    assert "CREATE UNIQUE INDEX uq_dead_letters_open" in out
