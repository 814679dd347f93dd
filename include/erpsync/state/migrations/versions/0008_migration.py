"""Historical migration (issue 8): one row per migration job, its checkpoint, counts and report.

A branch off the initial revision (``store.migrate()`` upgrades ``heads``); written out in full so
it never changes when ``schema.py`` moves on.

Revision ID: 0008_migration
Revises: 0001_initial
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_migration"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("migration",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "migration_jobs",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("date_from", TS, nullable=False),
        sa.Column("date_to", TS, nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("params", JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("checkpoint", JSON),
        sa.Column("total", sa.Integer),
        sa.Column("batches", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False),
        sa.Column("written", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("counts", JSON),
        sa.Column("owner", sa.String(255)),
        sa.Column("lease_until", TS),
        sa.Column("report", JSON),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.PrimaryKeyConstraint("id", name="pk_migration_jobs"),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'stopped', 'failed', 'succeeded')", name="ck_migration_jobs_status"
        ),
    )
    op.create_index("ix_migration_jobs_status_updated_at", "migration_jobs", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_table("migration_jobs")
