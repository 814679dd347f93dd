"""A cross-reference names real records (issue 16): CHECK that neither id is empty or a text
standing for nothing ("None", "null"). A binding to the string "None" once turned a failed order
into a false success; ``StateStore.upsert_xref`` refuses such ids in code too (``check_ref``).

Rows that already break the rule are false bindings: they are deleted (each one is printed), so
the next run looks the record up again and checks it instead of trusting them.

Also the merge point of the feature branches off ``0001_initial``: one Alembic head again.

Revision ID: 0011_xref_real_ids
Revises: 0003_pricing, 0004_inventory, 0007_reliability, 0008_migration, 0009_rate_budget,
    0010_channel_sales
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0011_xref_real_ids"
down_revision: str | Sequence[str] | None = (
    "0003_pricing", "0004_inventory", "0007_reliability", "0008_migration", "0009_rate_budget",
    "0010_channel_sales")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the ids that stand for nothing (``erpsync.state.store.NO_ID``), written out so this never moves
_NOTHING = "('', 'none', 'null', 'nil', 'undefined', '?')"
CHECK = (f"lower(trim(internal_id)) NOT IN {_NOTHING} AND lower(trim(external_id)) NOT IN {_NOTHING}")


def _xref(*constraints: sa.Constraint) -> sa.Table:
    """The xref table as 0001 made it (SQLite's batch copy needs it without reflection in --sql mode)."""
    return sa.Table(
        "xref", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("internal_id", sa.String(255), nullable=False),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(128)),
        sa.PrimaryKeyConstraint("id", name="pk_xref"),
        sa.UniqueConstraint("system", "entity", "external_id", name="uq_xref_system_entity_external_id"),
        sa.Index("ix_xref_system_entity_internal_id", "system", "entity", "internal_id"),
        *constraints,
    )


def upgrade() -> None:
    if not context.is_offline_mode():
        bad = sa.text(f"SELECT system, entity, external_id, internal_id FROM xref WHERE NOT ({CHECK})")
        for row in op.get_bind().execute(bad):
            print(f"0011_xref_real_ids: deleting the false binding {tuple(row)}")
    op.execute(f"DELETE FROM xref WHERE NOT ({CHECK})")
    with op.batch_alter_table("xref", copy_from=_xref()) as batch:
        batch.create_check_constraint(op.f("ck_xref_real_ids"), CHECK)


def downgrade() -> None:
    with op.batch_alter_table("xref", copy_from=_xref(sa.CheckConstraint(CHECK, name=op.f("ck_xref_real_ids")))) as batch:
        batch.drop_constraint(op.f("ck_xref_real_ids"), type_="check")
