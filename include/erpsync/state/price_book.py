"""The price book: what pricing_sync knows between runs, read and written in set-based batches.

Tables ``price_book`` (one row per price key) and ``pricing_items`` (SKU and cost per ERP item),
migration ``0003_pricing``. Rows are loaded and saved a chunk at a time, so a run over 300,000
price rows never holds the whole book in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from erpsync.state import schema as t

if TYPE_CHECKING:
    from erpsync.state.store import StateStore

CHUNK = 500  # bound IN lists (SQLite caps bound parameters)


@dataclass(slots=True)
class BookRow:
    key: str
    handle: str
    sku: str
    min_qty: int
    currency: str
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # rule id -> PriceRule.to_json()
    published: dict[str, Any] | None = None  # {"price": "9.99", "compare_at": null}
    next_change_at: dt.datetime | None = None
    dirty: bool = False
    published_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class PricingItem:
    item_code: str
    sku: str
    cost: Decimal | None
    currency: str | None
    active: bool


class PriceBook:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    # ------------------------------------------------------------------ price book
    def is_empty(self) -> bool:
        with self.store.db.begin(write=False) as conn:
            return conn.execute(sa.select(t.price_book.c.key).limit(1)).first() is None

    def load(self, keys: Iterable[str]) -> dict[str, BookRow]:
        pb = t.price_book
        out: dict[str, BookRow] = {}
        keys = list(dict.fromkeys(keys))
        with self.store.db.begin(write=False) as conn:
            for i in range(0, len(keys), CHUNK):
                for r in conn.execute(sa.select(pb).where(pb.c.key.in_(keys[i : i + CHUNK]))).mappings():
                    out[r["key"]] = _row(r)
        return out

    def save(self, rows: Sequence[BookRow]) -> None:
        """Upsert whole rows (rules, published state, next change, dirty flag)."""
        if not rows:
            return
        pb = t.price_book
        now = self._now()
        values = [
            {
                "key": r.key, "handle": r.handle, "sku": r.sku, "min_qty": r.min_qty, "currency": r.currency,
                "rules": r.rules, "published": r.published, "published_at": r.published_at,
                "next_change_at": r.next_change_at, "dirty": r.dirty, "updated_at": now,
            }
            for r in rows
        ]
        stmt = self.store.db.insert(pb)
        stmt = stmt.on_conflict_do_update(
            index_elements=[pb.c.key],
            set_={c: stmt.excluded[c] for c in ("rules", "published", "published_at", "next_change_at", "dirty",
                                                 "updated_at")},
        )
        with self.store.db.begin() as conn:
            for i in range(0, len(values), CHUNK):
                conn.execute(stmt, values[i : i + CHUNK])

    def due(self, now: dt.datetime, *, after: str = "", limit: int = 1000) -> list[BookRow]:
        """Rows to (re)publish: changed since published, or a rule starts or ends by ``now``; key order."""
        pb = t.price_book
        q = (
            sa.select(pb)
            .where(sa.or_(pb.c.dirty.is_(True), pb.c.next_change_at <= now), pb.c.key > after)
            .order_by(pb.c.key)
            .limit(limit)
        )
        with self.store.db.begin(write=False) as conn:
            return [_row(r) for r in conn.execute(q).mappings()]

    def count(self) -> int:
        with self.store.db.begin(write=False) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.price_book)).scalar_one())

    # ------------------------------------------------------------------ items
    def save_items(self, items: Sequence[PricingItem]) -> None:
        if not items:
            return
        pi = t.pricing_items
        now = self._now()
        values = [
            {"item_code": i.item_code, "sku": i.sku, "cost": None if i.cost is None else str(i.cost),
             "currency": i.currency, "active": i.active, "updated_at": now}
            for i in items
        ]
        stmt = self.store.db.insert(pi)
        stmt = stmt.on_conflict_do_update(
            index_elements=[pi.c.item_code],
            set_={c: stmt.excluded[c] for c in ("sku", "cost", "currency", "active", "updated_at")},
        )
        with self.store.db.begin() as conn:
            for i in range(0, len(values), CHUNK):
                conn.execute(stmt, values[i : i + CHUNK])

    def items(self, item_codes: Iterable[str] | None = None) -> dict[str, PricingItem]:
        """Items by code (all of them when ``item_codes`` is None)."""
        pi = t.pricing_items
        out: dict[str, PricingItem] = {}
        with self.store.db.begin(write=False) as conn:
            if item_codes is None:
                batches: Iterator[Any] = iter([conn.execute(sa.select(pi)).mappings()])
            else:
                codes = list(dict.fromkeys(item_codes))
                batches = (
                    conn.execute(sa.select(pi).where(pi.c.item_code.in_(codes[i : i + CHUNK]))).mappings()
                    for i in range(0, len(codes), CHUNK)
                )
            for batch in batches:
                for r in batch:
                    out[r["item_code"]] = PricingItem(
                        r["item_code"], r["sku"], Decimal(r["cost"]) if r["cost"] is not None else None,
                        r["currency"], bool(r["active"]),
                    )
        return out

    def not_in_store(self, skus: Iterable[str]) -> set[str]:
        """Of ``skus``, those the storefront refused prices for (``in_store`` false)."""
        pi = t.pricing_items
        skus = list(dict.fromkeys(skus))
        out: set[str] = set()
        with self.store.db.begin(write=False) as conn:
            for i in range(0, len(skus), CHUNK):
                q = sa.select(pi.c.sku).where(pi.c.sku.in_(skus[i : i + CHUNK]), pi.c.in_store.is_(False))
                out.update(r[0] for r in conn.execute(q))
        return out

    def set_in_store(self, skus: Iterable[str], value: bool) -> None:
        pi = t.pricing_items
        skus = list(dict.fromkeys(skus))
        with self.store.db.begin() as conn:
            for i in range(0, len(skus), CHUNK):
                conn.execute(sa.update(pi).where(pi.c.sku.in_(skus[i : i + CHUNK])).values(in_store=value))

    def sku_items(self, skus: Iterable[str]) -> dict[str, PricingItem]:
        pi = t.pricing_items
        skus = list(dict.fromkeys(skus))
        out: dict[str, PricingItem] = {}
        with self.store.db.begin(write=False) as conn:
            for i in range(0, len(skus), CHUNK):
                for r in conn.execute(sa.select(pi).where(pi.c.sku.in_(skus[i : i + CHUNK]))).mappings():
                    out[r["sku"]] = PricingItem(
                        r["item_code"], r["sku"], Decimal(r["cost"]) if r["cost"] is not None else None,
                        r["currency"], bool(r["active"]),
                    )
        return out


def _row(r: Any) -> BookRow:
    return BookRow(
        key=r["key"], handle=r["handle"], sku=r["sku"], min_qty=int(r["min_qty"]), currency=r["currency"],
        rules=dict(r["rules"] or {}), published=r["published"], next_change_at=r["next_change_at"],
        dirty=bool(r["dirty"]), published_at=r["published_at"],
    )


def add_approvals(store: StateStore, rows: Sequence[dict[str, Any]]) -> list[int]:
    """``store.approvals.add_many``: many held changes in one statement (a 90 % cut holds 300,000
    prices). Each row: flow, entity, external_id, kind, proposed, current, reason."""
    return store.approvals.add_many(rows)
