"""Indexes of the console's health dashboard (issue 20): the newest stock pushes (change -> store
latency, ``inventory_pushed.pushed_at``) and the outbox rows not yet drained per flow
(``outbox.status, flow``) without scanning a table of a million rows.

Revision ID: 0015_console_indexes
Revises: 0014_drop_work_items
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_console_indexes"
down_revision: str | Sequence[str] | None = "0014_drop_work_items"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inventory_pushed_pushed_at", "inventory_pushed", ["pushed_at"])
    op.create_index("ix_outbox_status_flow", "outbox", ["status", "flow"])


def downgrade() -> None:
    op.drop_index("ix_outbox_status_flow", table_name="outbox")
    op.drop_index("ix_inventory_pushed_pushed_at", table_name="inventory_pushed")
