"""Alembic environment: runs on the connection `StateStore.migrate()` hands over, or on its own URL.

The version table is `erpsync_alembic_version`, so the state store can share a PostgreSQL
database with another Alembic user (Airflow's metadata DB has its own `alembic_version`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from erpsync import config as settings
from erpsync.state.schema import metadata

VERSION_TABLE = "erpsync_alembic_version"
# Serialises concurrent migrations on PostgreSQL (two task processes starting at once).
PG_MIGRATION_LOCK = 0x45525053594E43  # "ERPSYNC"


def _configure_and_run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    from erpsync.state.store import create_state_engine  # not at import: store imports alembic config

    engine = create_state_engine(url or settings.state_url())
    try:
        with engine.begin() as conn:
            _configure_and_run(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or settings.state_url()
    context.configure(
        url=settings.normalise_db_url(url),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
