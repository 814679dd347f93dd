"""Webhook inbox (issue 21): one row per signed webhook delivery, unique per (source, event_id).

The receiver answers 2xx only after its row is committed; the triggerer's ``InboxTrigger`` claims
pending rows and fires one Asset event for them; the flow run reads the named records from the API
and marks the rows done. Written out in full so it never changes when ``schema.py`` moves on.

Revision ID: 0013_inbox
Revises: 0011_xref_real_ids
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_inbox"
down_revision: str | Sequence[str] | None = "0011_xref_real_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claim", sa.String(64)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("run_id", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("source", "event_id", name="uq_inbox_source_event_id"),
        sa.CheckConstraint("status IN ('pending', 'claimed', 'done')", name="ck_inbox_status"),
    )
    op.create_index("ix_inbox_entity_status", "inbox", ["entity", "status"])


def downgrade() -> None:
    op.drop_index("ix_inbox_entity_status", table_name="inbox")
    op.drop_table("inbox")
