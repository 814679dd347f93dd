"""Run metrics: one row per (flow, run), what it did."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB
from erpsync.state.records import RunMetric


class RunRepository:
    """The ``run_metrics`` table."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def record(
        self,
        flow: str,
        run_id: str,
        started_at: dt.datetime,
        finished_at: dt.datetime | None,
        done: int,
        failed: int,
        quarantined: int,
        skipped: int,
        extra: Any = None,
    ) -> None:
        """Upsert on (flow, run_id): a retried task overwrites its own row."""
        rm = t.run_metrics
        stmt = self.db.insert(rm).values(
            flow=flow,
            run_id=run_id,
            started_at=started_at,
            finished_at=finished_at,
            done=done,
            failed=failed,
            quarantined=quarantined,
            skipped=skipped,
            extra=extra,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[rm.c.flow, rm.c.run_id],
            set_={
                c: getattr(stmt.excluded, c)
                for c in ("started_at", "finished_at", "done", "failed", "quarantined", "skipped", "extra")
            },
        )
        with self.db.begin() as conn:
            conn.execute(stmt)

    def last(self, flow: str, limit: int = 10) -> list[RunMetric]:
        """Newest first."""
        rm = t.run_metrics
        q = (
            sa.select(rm)
            .where(rm.c.flow == flow)
            .order_by(rm.c.started_at.desc(), rm.c.id.desc())
            .limit(limit)
        )
        with self.db.begin(write=False) as conn:
            return [RunMetric.from_row(r) for r in conn.execute(q).mappings()]
