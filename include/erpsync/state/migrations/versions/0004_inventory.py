"""Inventory (issue 4): what was last pushed per SKU-location, items (SKU, kits), the store's SKUs.

A branch off the initial revision (``store.migrate()`` upgrades ``heads``); written out in full so
it never changes when ``schema.py`` moves on.

Revision ID: 0004_inventory
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_inventory"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = ("inventory",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "inventory_pushed",
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("available", sa.Integer, nullable=False),
        sa.Column("backorderable", sa.Boolean, nullable=False),
        sa.Column("restock_date", sa.String(10)),
        sa.Column("source_modified", sa.String(32)),
        sa.Column("pushed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("sku", "location", name="pk_inventory_pushed"),
    )
    op.create_table(
        "inventory_items",
        sa.Column("item_code", sa.String(255), nullable=False),
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("kit", JSON),
        sa.Column("modified", sa.String(32)),
        sa.PrimaryKeyConstraint("item_code", name="pk_inventory_items"),
    )
    op.create_index("ix_inventory_items_sku", "inventory_items", ["sku"])
    op.create_table(
        "inventory_store_skus",
        sa.Column("sku", sa.String(255), nullable=False),
        sa.Column("product_id", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_inventory_store_skus"),
    )


def downgrade() -> None:
    op.drop_table("inventory_store_skus")
    op.drop_index("ix_inventory_items_sku", table_name="inventory_items")
    op.drop_table("inventory_items")
    op.drop_table("inventory_pushed")
