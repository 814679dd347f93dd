"""Drift reports: what a reconciliation found, per run, with its items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB
from erpsync.state.records import DriftItem, DriftReport


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


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

    def get(self, report_id: int) -> DriftReport | None:
        dr, di = t.drift_reports, t.drift_items
        with self.db.begin(write=False) as conn:
            row = conn.execute(sa.select(dr).where(dr.c.id == report_id)).mappings().first()
            if row is None:
                return None
            items = tuple(
                DriftItem.from_row(r)
                for r in conn.execute(
                    sa.select(di).where(di.c.report_id == report_id).order_by(di.c.id)
                ).mappings()
            )
        return DriftReport.from_row(row, items=items)

    def recent(self, flow: str | None = None, limit: int = 20) -> list[DriftReport]:
        """Newest first, without items (use `get` for those)."""
        dr = t.drift_reports
        q = sa.select(dr)
        if flow is not None:
            q = q.where(dr.c.flow == flow)
        q = q.order_by(dr.c.created_at.desc(), dr.c.id.desc()).limit(limit)
        with self.db.begin(write=False) as conn:
            return [DriftReport.from_row(r) for r in conn.execute(q).mappings()]
