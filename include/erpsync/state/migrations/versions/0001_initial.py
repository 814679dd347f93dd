"""Initial state store: xref, cursors, ledger, dead letters, audit, approvals, drift, run metrics, work items.

Written out in full (not imported from `schema.py`) so this revision never changes when the
schema module moves on; a test checks the two agree.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _status(table: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"status IN ({allowed})", name=f"ck_{table}_status")


def upgrade() -> None:
    op.create_table(
        "xref",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("internal_id", sa.String(255), nullable=False),
        sa.Column("last_synced_at", TS, nullable=False),
        sa.Column("content_hash", sa.String(128)),
        sa.PrimaryKeyConstraint("id", name="pk_xref"),
        sa.UniqueConstraint("system", "entity", "external_id", name="uq_xref_system_entity_external_id"),
    )
    op.create_index("ix_xref_system_entity_internal_id", "xref", ["system", "entity", "internal_id"])

    op.create_table(
        "cursors",
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("flow", "name", name="pk_cursors"),
    )

    op.create_table(
        "idempotency_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("target_system", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result_ref", sa.String(255)),
        sa.Column("response", JSON),
        sa.Column("error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_ledger"),
        sa.UniqueConstraint("key", name="uq_idempotency_ledger_key"),
        _status("idempotency_ledger", ("pending", "done", "failed")),
    )

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("payload", JSON),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("error_kind", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        _status("dead_letters", ("open", "replayed", "resolved", "ignored")),
    )
    op.create_index(
        "uq_dead_letters_open",
        "dead_letters",
        ["flow", "entity", "external_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_dead_letters_status_flow_last_seen", "dead_letters", ["status", "flow", "last_seen"])

    op.create_table(
        "audit_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255)),
        sa.Column("request", JSON),
        sa.Column("response", JSON),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(255)),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_flow_entity_external_id", "audit_log", ["flow", "entity", "external_id"])
    op.create_index("ix_audit_log_correlation_id", "audit_log", ["correlation_id"])

    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("proposed", JSON),
        sa.Column("current", JSON),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(128)),
        sa.Column("decided_at", TS),
        sa.Column("note", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        _status("approvals", ("pending", "approved", "rejected", "published")),
    )
    op.create_index(
        "uq_approvals_pending",
        "approvals",
        ["flow", "entity", "external_id", "kind"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_approvals_status_flow", "approvals", ["status", "flow"])

    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("summary", JSON),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_drift_reports"),
        sa.UniqueConstraint("flow", "run_id", name="uq_drift_reports_flow_run_id"),
    )
    op.create_table(
        "drift_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("report_id", sa.Integer, nullable=False),
        sa.Column("entity", sa.String(64)),
        sa.Column("external_id", sa.String(255)),
        sa.Column("kind", sa.String(64)),
        sa.Column("detail", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_drift_items"),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["drift_reports.id"],
            name="fk_drift_items_report_id_drift_reports",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_drift_items_report_id", "drift_items", ["report_id"])

    op.create_table(
        "run_metrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("extra", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_run_metrics"),
        sa.UniqueConstraint("flow", "run_id", name="uq_run_metrics_flow_run_id"),
    )
    op.create_index("ix_run_metrics_flow_started_at", "run_metrics", ["flow", "started_at"])

    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(128), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("lease_until", TS),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_work_items"),
        sa.UniqueConstraint("flow", "key", name="uq_work_items_flow_key"),
        _status("work_items", ("queued", "claimed", "done", "failed")),
    )
    op.create_index("ix_work_items_flow_status_lease_until", "work_items", ["flow", "status", "lease_until"])


def downgrade() -> None:
    for table in (
        "work_items",
        "run_metrics",
        "drift_items",
        "drift_reports",
        "approvals",
        "audit_log",
        "dead_letters",
        "idempotency_ledger",
        "cursors",
        "xref",
    ):
        op.drop_table(table)
