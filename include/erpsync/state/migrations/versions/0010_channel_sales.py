"""Channel sales (issue 4): units sold per store order line and channel, the observed demand that
channel reallocation reads.

A branch off the initial revision (``store.migrate()`` upgrades ``heads``); written out in full so
it never changes when ``schema.py`` moves on.

Revision ID: 0010_channel_sales
Revises: 0001_initial
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_channel_sales"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("channel_sales",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_sales",
        sa.Column("order_id", sa.String(255), nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("units", sa.Integer, nullable=False),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "sku", name="pk_channel_sales"),
    )
    op.create_index("ix_channel_sales_sold_at", "channel_sales", ["sold_at"])


def downgrade() -> None:
    op.drop_index("ix_channel_sales_sold_at", table_name="channel_sales")
    op.drop_table("channel_sales")
