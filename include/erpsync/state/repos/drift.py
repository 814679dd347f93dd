"""Drift reports: what a reconciliation found, per run, with its items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB
from erpsync.state.records import DriftItem, DriftReport


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ItemPage:
    """One page of a report's items (``DriftReportRepository.page_items``): ``offset`` items come
    before it, ``total`` in all."""

    items: tuple[DriftItem, ...]
    offset: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.offset > 0

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total


class DriftReportRepository:
    """The ``drift_reports`` and ``drift_items`` tables."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(self, flow: str, run_id: str, summary: Any, items: Iterable[Mapping[str, Any]]) -> int:
        """Store a reconciliation result; re-running the same run replaces its report and items."""
        dr, di = t.drift_reports, t.drift_items
        item_list = [dict(t.to_jsonable(i)) for i in items]
        stmt = self.db.insert(dr).values(
            flow=flow, run_id=run_id, summary=summary, item_count=len(item_list), created_at=self.db.now()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[dr.c.flow, dr.c.run_id],
            set_={
                "summary": stmt.excluded.summary,
                "item_count": stmt.excluded.item_count,
                "created_at": stmt.excluded.created_at,
            },
        ).returning(dr.c.id)
        with self.db.begin() as conn:
            report_id = int(conn.execute(stmt).scalar_one())
            conn.execute(sa.delete(di).where(di.c.report_id == report_id))
            if item_list:
                conn.execute(
                    sa.insert(di),
                    [
                        {
                            "report_id": report_id,
                            "entity": _opt_str(i.get("entity")),
                            "external_id": _opt_str(i.get("external_id")),
                            "kind": _opt_str(i.get("kind")),
                            "detail": i,
                        }
                        for i in item_list
                    ],
                )
        return report_id

    def get(self, report_id: int, *, items: bool = True) -> DriftReport | None:
        """The report; with every item unless ``items`` is False (then page them: `page_items`)."""
        dr, di = t.drift_reports, t.drift_items
        with self.db.begin(write=False) as conn:
            row = conn.execute(sa.select(dr).where(dr.c.id == report_id)).mappings().first()
            if row is None:
                return None
            if not items:
                return DriftReport.from_row(row)
            found = tuple(
                DriftItem.from_row(r)
                for r in conn.execute(
                    sa.select(di).where(di.c.report_id == report_id).order_by(di.c.id)
                ).mappings()
            )
        return DriftReport.from_row(row, items=found)

    def page_items(
        self, report_id: int, *, after: int | None = None, before: int | None = None, limit: int = 500
    ) -> ItemPage:
        """At most ``limit`` items of a report in id order: the first ones, those after the item id
        ``after`` (the next page) or those just before ``before`` (the previous page). Keyset
        paging, no look-ahead row: a report of 300,000 items is read a page at a time, each item
        once per page shown; ``offset`` (a count of the items before the page) places it."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if after is not None and before is not None:
            raise ValueError("page by after or before, not both")
        dr, di = t.drift_reports, t.drift_items
        q = sa.select(di).where(di.c.report_id == report_id)
        if before is not None:
            q = q.where(di.c.id < before).order_by(di.c.id.desc())
        else:
            q = q.where(di.c.id > after) if after is not None else q
            q = q.order_by(di.c.id)
        with self.db.begin(write=False) as conn:
            rows = [DriftItem.from_row(r) for r in conn.execute(q.limit(limit)).mappings()]
            items = tuple(reversed(rows)) if before is not None else tuple(rows)
            total = conn.execute(sa.select(dr.c.item_count).where(dr.c.id == report_id)).scalar() or 0
            if items:
                first = sa.select(sa.func.count()).select_from(di).where(di.c.report_id == report_id,
                                                                         di.c.id < items[0].id)
            elif after is not None:  # past the last item: the page starts after all of them
                first = sa.select(sa.func.count()).select_from(di).where(di.c.report_id == report_id,
                                                                         di.c.id <= after)
            else:
                first = None
            offset = int(conn.execute(first).scalar_one()) if first is not None else 0
        return ItemPage(items, offset, int(total))

    def recent(self, flow: str | None = None, limit: int = 20) -> list[DriftReport]:
        """Newest first, without items (use `get` for those)."""
        dr = t.drift_reports
        q = sa.select(dr)
        if flow is not None:
            q = q.where(dr.c.flow == flow)
        q = q.order_by(dr.c.created_at.desc(), dr.c.id.desc()).limit(limit)
        with self.db.begin(write=False) as conn:
            return [DriftReport.from_row(r) for r in conn.execute(q).mappings()]
