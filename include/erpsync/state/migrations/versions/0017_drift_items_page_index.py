"""A report's items are read a page at a time in id order (the console's Reports page,
``DriftReportRepository.page_items``: keyset by item id): index ``(report_id, id)`` so a page of a
large report is read in index order instead of sorting all of the report's items for every page.
It replaces the index on ``report_id`` alone, which it covers.

Revision ID: 0017_drift_items_page_index
Revises: 0016_ledger_claims
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_drift_items_page_index"
down_revision: str | Sequence[str] | None = "0016_ledger_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_drift_items_report_id_id", "drift_items", ["report_id", "id"])
    op.drop_index("ix_drift_items_report_id", table_name="drift_items")


def downgrade() -> None:
    op.create_index("ix_drift_items_report_id", "drift_items", ["report_id"])
    op.drop_index("ix_drift_items_report_id_id", table_name="drift_items")
