"""A claim on each idempotency key: two writers at the same time never both write it.

``idempotency_ledger.claimed_by`` names the one writer (a token per ``idempotent_write`` call:
host, process, random part) that may send the key's write, until ``lease_until``. A second
writer that finds a live claim waits for the row to be done (and takes its result) or for the
lease to run out (a crashed writer: it then takes the claim and looks the record up before
writing). Both NULL: nobody is writing the key now (every row before this revision).

Revision ID: 0016_ledger_claims
Revises: 0015_console_indexes
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_ledger_claims"
down_revision: str | Sequence[str] | None = "0015_console_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("idempotency_ledger", sa.Column("claimed_by", sa.String(255)))
    op.add_column("idempotency_ledger", sa.Column("lease_until", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite 3.35+): neither column is in an index or a constraint, and a batch
    # copy would lose the table's CHECK on status, which SQLite does not reflect
    op.drop_column("idempotency_ledger", "lease_until")
    op.drop_column("idempotency_ledger", "claimed_by")
