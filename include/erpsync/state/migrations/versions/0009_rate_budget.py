"""Rate budget (issue 7): one row per external system, the shared request budget (GCRA) of every
process that calls it.

A branch off the initial revision (``store.migrate()`` upgrades ``heads``); written out in full so
it never changes when ``schema.py`` moves on.

Revision ID: 0009_rate_budget
Revises: 0001_initial
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_rate_budget"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("rate_budget",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_budgets",
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("tat", sa.Double, nullable=False),
        sa.Column("rps", sa.Double, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", name="pk_rate_budgets"),
    )


def downgrade() -> None:
    op.drop_table("rate_budgets")
