"""Reliability (issue 7): circuit breakers, breaker events, the outbox, record versions.

Circuit breakers are shared by all workers; record versions keep the newest source version each
flow handled per record.

A branch off the initial revision (``store.migrate()`` upgrades ``heads``); written out in full so
it never changes when ``schema.py`` moves on.

Revision ID: 0007_reliability
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_reliability"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("reliability",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "circuit_breakers",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened_at", TS),
        sa.Column("probe_owner", sa.String(128)),
        sa.Column("probe_until", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("system", name="pk_circuit_breakers"),
        sa.CheckConstraint(
            "state IN ('closed', 'open', 'half_open')", name="ck_circuit_breakers_state"
        ),
    )
    op.create_table(
        "breaker_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_breaker_events"),
    )
    op.create_index("ix_breaker_events_system_at", "breaker_events", ["system", "at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("dedupe_key", sa.String(255), nullable=False),
        sa.Column("payload", JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claimed_by", sa.String(255)),
        sa.Column("lease_until", TS),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("flow", "dedupe_key", name="uq_outbox_flow_dedupe_key"),
        sa.CheckConstraint("status IN ('queued', 'claimed', 'done')", name="ck_outbox_status"),
    )
    op.create_index("ix_outbox_flow_status_id", "outbox", ["flow", "status", "id"])
    op.create_table(
        "record_versions",
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("flow", "external_id", name="pk_record_versions"),
    )


def downgrade() -> None:
    for table in ("record_versions", "outbox", "breaker_events", "circuit_breakers"):
        op.drop_table(table)
