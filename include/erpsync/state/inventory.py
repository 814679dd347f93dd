"""Set-based access to the inventory tables: a million SKU-locations in batches, never row by row.

Reads go by chunks of keys (bounded IN lists); writes are one ``executemany`` upsert per chunk
inside one transaction, which SQLite runs at ~1 µs a row and PostgreSQL pipelines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.store import StateStore

READ_CHUNK = 900  # keys per IN list (well under every driver's bound-parameter limit)
WRITE_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Pushed:
    available: int
    backorderable: bool
    restock_date: str | None
    source_modified: str | None


@dataclass(frozen=True, slots=True)
class ItemInfo:
    item_code: str
    sku: str
    active: bool
    kit: Mapping[str, int] | None


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class InventoryState:
    """The inventory flows' memory: last pushed values, item facts, the store's SKUs."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def _upsert(self, table: sa.Table, keys: list[str], rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        stmt = self.store.db.insert(table)
        cols = [c for c in rows[0] if c not in keys]
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys], set_={c: stmt.excluded[c] for c in cols}
        )
        with self.store.db.begin() as conn:
            for chunk in _chunks(rows, WRITE_CHUNK):
                conn.execute(stmt, list(chunk))
        return len(rows)

    # -- last pushed ------------------------------------------------------------------------

    def pushed(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Pushed]:
        """Last pushed value per (sku, location) for the keys that have one."""
        wanted = set(keys)
        skus = sorted({k[0] for k in wanted})
        p = t.inventory_pushed
        out: dict[tuple[str, str], Pushed] = {}
        q = sa.select(p.c.sku, p.c.location, p.c.available, p.c.backorderable, p.c.restock_date,
                      p.c.source_modified)
        with self.store.db.begin(write=False) as conn:
            for chunk in _chunks(skus, READ_CHUNK):
                for sku, loc, avail, back, restock, src in conn.execute(q.where(p.c.sku.in_(chunk))):
                    if (sku, loc) in wanted:
                        out[(sku, loc)] = Pushed(avail, bool(back), restock, src)
        return out

    def record_pushed(self, rows: Iterable[Mapping[str, Any]], *, at: dt.datetime | None = None) -> int:
        """Remember what the store now holds (after a successful push, or as seen in the store)."""
        now = at or self.store.db.now()
        data = [
            {"sku": r["sku"], "location": r["location"], "available": int(r["available"]),
             "backorderable": bool(r.get("backorderable", False)), "restock_date": r.get("restock_date"),
             "source_modified": r.get("source_modified"), "pushed_at": now}
            for r in rows
        ]
        return self._upsert(t.inventory_pushed, ["sku", "location"], data)

    def pushed_count(self) -> int:
        with self.store.db.begin(write=False) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.inventory_pushed)).scalar_one())

    def pushed_since(self, keys: Iterable[tuple[str, str]], since: dt.datetime) -> set[tuple[str, str]]:
        """Keys pushed at or after ``since`` (a newer write the drift healer must not overwrite)."""
        wanted = set(keys)
        p = t.inventory_pushed
        out: set[tuple[str, str]] = set()
        with self.store.db.begin(write=False) as conn:
            for chunk in _chunks(sorted({k[0] for k in wanted}), READ_CHUNK):
                q = sa.select(p.c.sku, p.c.location).where(p.c.sku.in_(chunk), p.c.pushed_at >= since)
                out.update(k for k in conn.execute(q) if tuple(k) in wanted)
        return {tuple(k) for k in out}  # type: ignore[misc]

    # -- items ------------------------------------------------------------------------------

    def upsert_items(self, items: Iterable[ItemInfo], modified: Mapping[str, str] | None = None) -> int:
        rows = [
            {"item_code": i.item_code, "sku": i.sku, "active": i.active, "kit": dict(i.kit) if i.kit else None,
             "modified": (modified or {}).get(i.item_code)}
            for i in items
        ]
        return self._upsert(t.inventory_items, ["item_code"], rows)

    def items(self, codes: Iterable[str]) -> dict[str, ItemInfo]:
        it = t.inventory_items
        out: dict[str, ItemInfo] = {}
        with self.store.db.begin(write=False) as conn:
            for chunk in _chunks(sorted(set(codes)), READ_CHUNK):
                q = sa.select(it.c.item_code, it.c.sku, it.c.active, it.c.kit).where(it.c.item_code.in_(chunk))
                for code, sku, active, kit in conn.execute(q):
                    out[code] = ItemInfo(code, sku, bool(active), kit)
        return out

    def items_by_sku(self, skus: Iterable[str]) -> dict[str, ItemInfo]:
        it = t.inventory_items
        out: dict[str, ItemInfo] = {}
        with self.store.db.begin(write=False) as conn:
            for chunk in _chunks(sorted(set(skus)), READ_CHUNK):
                q = sa.select(it.c.item_code, it.c.sku, it.c.active, it.c.kit).where(it.c.sku.in_(chunk))
                for code, sku, active, kit in conn.execute(q):
                    out[sku] = ItemInfo(code, sku, bool(active), kit)
        return out

    def all_items(self) -> Iterator[ItemInfo]:
        it = t.inventory_items
        with self.store.db.begin(write=False) as conn:
            for code, sku, active, kit in conn.execute(sa.select(it.c.item_code, it.c.sku, it.c.active, it.c.kit)):
                yield ItemInfo(code, sku, bool(active), kit)

    def item_skus(self) -> dict[str, tuple[str, bool]]:
        """Item code -> (SKU, active) of every item in one scan (the drift check's third of a
        million items; no kit JSON parsed, no object per item)."""
        it = t.inventory_items
        with self.store.db.begin(write=False) as conn:
            rows = conn.execute(sa.select(it.c.item_code, it.c.sku, it.c.active)).all()
        return {code: (sku, bool(active)) for code, sku, active in rows}

    def kits(self) -> dict[str, ItemInfo]:
        """Every kit, by item code (a few percent of the items)."""
        it = t.inventory_items
        with self.store.db.begin(write=False) as conn:
            q = sa.select(it.c.item_code, it.c.sku, it.c.active, it.c.kit).where(it.c.kit.is_not(None))
            return {
                code: ItemInfo(code, sku, bool(active), kit)
                for code, sku, active, kit in conn.execute(q)
                if kit  # JSON null may come back as None
            }

    def item_count(self) -> int:
        with self.store.db.begin(write=False) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.inventory_items)).scalar_one())

    # -- the store's SKUs -------------------------------------------------------------------

    def upsert_store_skus(self, rows: Iterable[tuple[str, str, bool]]) -> int:
        data = [{"sku": s, "product_id": p, "active": bool(a)} for s, p, a in rows]
        return self._upsert(t.inventory_store_skus, ["sku"], data)

    def store_skus(self, skus: Iterable[str]) -> set[str]:
        s = t.inventory_store_skus
        out: set[str] = set()
        with self.store.db.begin(write=False) as conn:
            for chunk in _chunks(sorted(set(skus)), READ_CHUNK):
                out.update(r[0] for r in conn.execute(sa.select(s.c.sku).where(s.c.sku.in_(chunk))))
        return out

    def all_store_skus(self) -> set[str]:
        s = t.inventory_store_skus
        with self.store.db.begin(write=False) as conn:
            return {r[0] for r in conn.execute(sa.select(s.c.sku))}

    def store_sku_count(self) -> int:
        with self.store.db.begin(write=False) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.inventory_store_skus)).scalar_one())

    # -- observed channel sales (channel reallocation) ---------------------------------------

    def record_sales(self, rows: Iterable[tuple[str, str, str, int, dt.datetime]]) -> int:
        """(order id, sku, channel, units, sold at) of store order lines; an order read again
        rewrites its rows (a cancelled order is recorded with 0 units), so nothing counts twice."""
        data: dict[tuple[str, str], dict[str, Any]] = {}
        for oid, sku, channel, units, at in rows:
            row = data.setdefault((oid, sku), {"order_id": oid, "sku": sku, "channel": channel, "units": 0,
                                               "sold_at": at})
            row["units"] += units  # two lines of one SKU in one order
        return self._upsert(t.channel_sales, ["order_id", "sku"], list(data.values()))

    def channel_demand(self, since: dt.datetime, skus: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        """SKU -> channel -> units sold since ``since`` (every SKU sold when ``skus`` is None)."""
        c = t.channel_sales
        query = (sa.select(c.c.sku, c.c.channel, sa.func.sum(c.c.units))
                 .where(c.c.sold_at >= since, c.c.units > 0).group_by(c.c.sku, c.c.channel))
        out: dict[str, dict[str, int]] = {}
        with self.store.db.begin(write=False) as conn:
            if skus is None:
                results: Iterable[Any] = conn.execute(query)
            else:
                results = [r for chunk in _chunks(sorted(set(skus)), READ_CHUNK)
                           for r in conn.execute(query.where(c.c.sku.in_(chunk)))]
            for sku, channel, units in results:
                out.setdefault(sku, {})[channel] = int(units)
        return out

    def purge_sales(self, before: dt.datetime) -> int:
        """Forget sales older than ``before`` (housekeeping)."""
        c = t.channel_sales
        with self.store.db.begin() as conn:
            return int(conn.execute(sa.delete(c).where(c.c.sold_at < before)).rowcount or 0)
