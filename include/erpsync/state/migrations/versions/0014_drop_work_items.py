"""Drop the work_items queue (issue 19): nothing but a test used it; the outbox is the queue.

Downgrade recreates the table exactly as ``0001_initial`` made it (empty: its rows are gone).

Revision ID: 0014_drop_work_items
Revises: 0013_inbox
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_drop_work_items"
down_revision: str | Sequence[str] | None = "0013_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.drop_index("ix_work_items_flow_status_lease_until", table_name="work_items")
    op.drop_table("work_items")


def downgrade() -> None:
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
        sa.CheckConstraint("status IN ('queued', 'claimed', 'done', 'failed')", name="ck_work_items_status"),
    )
    op.create_index("ix_work_items_flow_status_lease_until", "work_items", ["flow", "status", "lease_until"])
