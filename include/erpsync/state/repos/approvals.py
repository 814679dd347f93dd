"""Approvals: changes held for a person to approve, reject or publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB, chunks
from erpsync.state.records import Approval

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "approved": ("pending",),
    "rejected": ("pending",),
    "published": ("approved",),
    # erpsync itself: the ERP no longer says what was proposed or approved (compare-and-set of
    # pricing_sync); kept as status "rejected" with a note "superseded: ..."
    "superseded": ("pending", "approved"),
}
BULK_CHUNK = 500  # rows per statement of add_many (SQLite caps bound parameters)
ALIASES = {"approve": "approved", "reject": "rejected", "publish": "published", "supersede": "superseded"}


class ApprovalRepository:
    """The ``approvals`` table: one pending approval per (flow, entity, external id, kind)."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def add(
        self, flow: str, entity: str, external_id: str, kind: str, proposed: Any, current: Any, reason: str
    ) -> int:
        """Hold a change for a person; the pending approval of the same change is refreshed, not duplicated."""
        ap = t.approvals
        stmt = self.db.insert(ap).values(
            flow=flow,
            entity=entity,
            external_id=str(external_id),
            kind=kind,
            proposed=proposed,
            current=current,
            reason=str(reason),
            status="pending",
            created_at=self.db.now(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[ap.c.flow, ap.c.entity, ap.c.external_id, ap.c.kind],
            index_where=ap.c.status == "pending",
            set_={
                "proposed": stmt.excluded.proposed,
                "current": stmt.excluded.current,
                "reason": stmt.excluded.reason,
            },
        ).returning(ap.c.id)
        with self.db.begin() as conn:
            return int(conn.execute(stmt).scalar_one())

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """``add`` for many changes in one statement per chunk (a 90 % price cut holds 300,000
        prices): same semantics, the pending approval of the same change is refreshed, not
        duplicated. Each row: flow, entity, external_id, kind, proposed, current, reason. Ids in
        the rows' order."""
        if not rows:
            return []
        ap = t.approvals
        now = self.db.now()
        values = [{**r, "status": "pending", "created_at": now} for r in rows]
        ins = self.db.insert(ap)
        stmt = ins.on_conflict_do_update(
            index_elements=[ap.c.flow, ap.c.entity, ap.c.external_id, ap.c.kind],
            index_where=sa.text("status = 'pending'"),
            set_={"proposed": ins.excluded.proposed, "current": ins.excluded.current, "reason": ins.excluded.reason},
        ).returning(ap.c.id, sort_by_parameter_order=True)
        ids: list[int] = []
        with self.db.begin() as conn:
            for chunk in chunks(values, BULK_CHUNK):
                ids += [int(r[0]) for r in conn.execute(stmt, list(chunk))]
        return ids

    def get(self, approval_id: int) -> Approval | None:
        ap = t.approvals
        with self.db.begin(write=False) as conn:
            row = conn.execute(sa.select(ap).where(ap.c.id == approval_id)).mappings().first()
        return Approval.from_row(row) if row else None

    def find(self, status: str | None = "pending", flow: str | None = None) -> list[Approval]:
        """Oldest first; `status=None` lists all."""
        ap = t.approvals
        q = sa.select(ap)
        if status is not None:
            q = q.where(ap.c.status == status)
        if flow is not None:
            q = q.where(ap.c.flow == flow)
        with self.db.begin(write=False) as conn:
            return [Approval.from_row(r) for r in conn.execute(q.order_by(ap.c.id)).mappings()]

    def decide(self, approval_id: int, decision: str, decided_by: str, note: str = "") -> None:
        """pending -> approved | rejected (records who and when); approved -> published.

        Guarded by the current status in the UPDATE itself, so two people deciding at once
        cannot both win.
        """
        decision = ALIASES.get(decision, decision)
        if decision not in TRANSITIONS:
            raise ValueError(f"approval decision {decision!r}: use approved, rejected, published or superseded")
        ap = t.approvals
        values: dict[str, Any] = {"status": "rejected" if decision == "superseded" else decision}
        if decision != "published":
            values.update(decided_by=decided_by, decided_at=self.db.now(), note=note)
        elif note:
            values["note"] = note
        with self.db.begin() as conn:
            res = conn.execute(
                sa.update(ap)
                .where(ap.c.id == approval_id, ap.c.status.in_(TRANSITIONS[decision]))
                .values(**values)
            )
            if res.rowcount:
                return
            found = conn.execute(sa.select(ap.c.status, ap.c.note).where(ap.c.id == approval_id)).first()
        if found is None:
            raise KeyError(f"approval {approval_id} does not exist")
        current, why = found
        if current == "rejected" and (why or "").startswith("superseded:"):
            current = f"superseded ({why[len('superseded:'):].strip()})"
        raise ValueError(f"approval {approval_id} is {current}; it cannot become {decision}")
