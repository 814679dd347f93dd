"""Cross references: (system, entity, external id) <-> the internal id it is bound to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB, chunks
from erpsync.state.records import Xref

#: ids that stand for nothing (a str() of None or null): never an internal or external id
NO_ID = frozenset({"", "none", "null", "nil", "undefined", "?"})


def check_ref(value: Any, what: str) -> str:
    """``value`` as an id, or ValueError when it is empty or stands for nothing ("None", "null")."""
    text = "" if value is None else str(value).strip()
    if text.lower() in NO_ID:
        raise ValueError(f"{what} is {value!r}: not an id (a cross-reference must name a real record)")
    return text


class XrefRepository:
    """The ``xref`` table."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def get(self, system: str, entity: str, external_id: str) -> Xref | None:
        x = t.xref
        with self.db.begin(write=False) as conn:
            row = (
                conn.execute(
                    sa.select(x).where(
                        x.c.system == system, x.c.entity == entity, x.c.external_id == str(external_id)
                    )
                )
                .mappings()
                .first()
            )
        return Xref.from_row(row) if row else None

    def get_by_internal(self, system: str, entity: str, internal_id: str) -> Xref | None:
        """The binding of an internal id; if several external ids point at it, the latest synced."""
        x = t.xref
        with self.db.begin(write=False) as conn:
            row = (
                conn.execute(
                    sa.select(x)
                    .where(x.c.system == system, x.c.entity == entity, x.c.internal_id == str(internal_id))
                    .order_by(x.c.last_synced_at.desc(), x.c.id.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
        return Xref.from_row(row) if row else None

    def upsert(
        self, system: str, entity: str, external_id: str, internal_id: str, content_hash: str | None = None
    ) -> Xref:
        """Bind (or rebind) an external id; `content_hash` is replaced too, None forces the next sync.

        Both ids must be real: an empty, blank or "None"/"null" id raises ValueError (a binding to
        nothing is a false success; the table has the same CHECK, migration 0011)."""
        check_ref(internal_id, f"{system} {entity} {external_id}: internal id")
        check_ref(external_id, f"{system} {entity}: external id")
        x = t.xref
        now = self.db.now()
        stmt = self.db.insert(x).values(
            system=system,
            entity=entity,
            external_id=str(external_id),
            internal_id=str(internal_id),
            content_hash=content_hash,
            last_synced_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[x.c.system, x.c.entity, x.c.external_id],
            set_={
                "internal_id": stmt.excluded.internal_id,
                "content_hash": stmt.excluded.content_hash,
                "last_synced_at": stmt.excluded.last_synced_at,
            },
        ).returning(*x.c)
        with self.db.begin() as conn:
            return Xref.from_row(conn.execute(stmt).mappings().one())

    def search(
        self, *, system: str | None = None, entity: str | None = None, search: str | None = None, limit: int = 100
    ) -> list[Xref]:
        """Cross-references for an operator: filtered by system and entity, ``search`` a substring of
        either id (case-insensitive); ordered by system, entity, external id."""
        x = t.xref
        q = sa.select(x)
        if system:
            q = q.where(x.c.system == system)
        if entity:
            q = q.where(x.c.entity == entity)
        if search:
            like = f"%{search.lower()}%"
            q = q.where(sa.or_(sa.func.lower(x.c.external_id).like(like), sa.func.lower(x.c.internal_id).like(like)))
        q = q.order_by(x.c.system, x.c.entity, x.c.external_id).limit(limit)
        with self.db.begin(write=False) as conn:
            return [Xref.from_row(r) for r in conn.execute(q).mappings()]

    def delete(self, system: str, entity: str, external_id: str) -> Xref | None:
        """Remove one binding; the removed row, or None if there was none."""
        x = t.xref
        where = (x.c.system == system, x.c.entity == entity, x.c.external_id == str(external_id))
        with self.db.begin() as conn:
            row = conn.execute(sa.select(x).where(*where)).mappings().first()
            if row is None:
                return None
            conn.execute(sa.delete(x).where(*where))
        return Xref.from_row(row)

    def map(self, system: str, entity: str, external_ids: Iterable[str]) -> dict[str, Xref]:
        """Bulk lookup: external id -> Xref for those that are bound (missing ones are absent)."""
        x = t.xref
        wanted = sorted({str(e) for e in external_ids})
        result: dict[str, Xref] = {}
        if not wanted:
            return result
        with self.db.begin(write=False) as conn:
            for chunk in chunks(wanted):
                rows = conn.execute(
                    sa.select(x).where(x.c.system == system, x.c.entity == entity, x.c.external_id.in_(chunk))
                ).mappings()
                for row in rows:
                    result[row["external_id"]] = Xref.from_row(row)
        return result
