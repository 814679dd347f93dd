"""Pricing: the price book (accepted rules and published prices per price key) and the items
pricing needs (SKU and cost per ERP item code).

A branch of its own off the initial revision (``StateStore.migrate()`` upgrades ``heads``).

Revision ID: 0003_pricing
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_pricing"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("pricing",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "price_book",
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("handle", sa.String(200), nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("min_qty", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rules", JSON, nullable=False),
        sa.Column("published", JSON),
        sa.Column("published_at", TS),
        sa.Column("next_change_at", TS),
        sa.Column("dirty", sa.Boolean, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_price_book"),
    )
    op.create_index("ix_price_book_dirty", "price_book", ["dirty"])
    op.create_index("ix_price_book_next_change_at", "price_book", ["next_change_at"])
    op.create_index("ix_price_book_sku", "price_book", ["sku"])

    op.create_table(
        "pricing_items",
        sa.Column("item_code", sa.String(128), nullable=False),
        sa.Column("sku", sa.String(128), nullable=False),
        sa.Column("cost", sa.String(40)),
        sa.Column("currency", sa.String(3)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("in_store", sa.Boolean),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("item_code", name="pk_pricing_items"),
    )
    op.create_index("ix_pricing_items_sku", "pricing_items", ["sku"])


def downgrade() -> None:
    op.drop_table("pricing_items")
    op.drop_table("price_book")
