"""Historical migration jobs in the state store (table ``migration_jobs``, migration ``0008_migration``).

A job row is the whole memory of a migration between processes: its spec, the checkpoint of the
last committed batch with that batch's counts (one UPDATE, so a killed process never leaves a
checkpoint ahead of its counts or behind them), a lease naming the one process that runs it, and
the final report. Every update after the claim is guarded by the owner: a process that lost its
lease (it stalled past it and another took over) can no longer move the job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from erpsync.errors import ErpsyncError
from erpsync.state import schema as t

if TYPE_CHECKING:
    from erpsync.state.store import StateStore

#: how long a claim holds without a committed batch; every batch renews it
DEFAULT_LEASE_SECONDS = 300
COUNTERS = ("processed", "written", "skipped", "failed")


class JobBusy(ErpsyncError):
    """Another process holds the job's lease (it is running, or died less than a lease ago)."""


class LostLease(ErpsyncError):
    """This process no longer owns the job: it must stop without touching it."""


@dataclass(frozen=True, slots=True)
class MigrationJob:
    id: str
    entity: str
    direction: str
    date_from: dt.datetime
    date_to: dt.datetime
    batch_size: int
    dry_run: bool
    params: dict[str, Any]
    status: str
    checkpoint: dict[str, Any]
    total: int | None
    batches: int
    processed: int
    written: int
    skipped: int
    failed: int
    counts: dict[str, int]
    owner: str | None
    lease_until: dt.datetime | None
    report: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    updated_at: dt.datetime
    finished_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> MigrationJob:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["params"] = dict(values["params"] or {})
        values["checkpoint"] = dict(values["checkpoint"] or {})
        values["counts"] = {k: int(v) for k, v in (values["counts"] or {}).items()}
        return cls(**values)

    @property
    def finished(self) -> bool:
        return self.status == "succeeded"


class MigrationJobs:
    """The migration jobs of one state store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def create(self, job_id: str, *, entity: str, direction: str, date_from: dt.datetime, date_to: dt.datetime,
               batch_size: int, dry_run: bool, params: Mapping[str, Any] | None = None) -> tuple[MigrationJob, bool]:
        """The job ``job_id``: created now (True) or as it already was (False: a resume)."""
        j = t.migration_jobs
        now = self.store.db.now()
        stmt = (
            self.store.db.insert(j)
            .values(id=job_id, entity=entity, direction=direction, date_from=date_from, date_to=date_to,
                    batch_size=batch_size, dry_run=dry_run, params=dict(params or {}), status="pending",
                    checkpoint={"token": None, "exhausted": False}, batches=0, processed=0, written=0,
                    skipped=0, failed=0, counts={}, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[j.c.id])
            .returning(j.c.id)
        )
        with self.store.db.begin() as conn:
            created = conn.execute(stmt).first() is not None
        job = self.get(job_id)
        assert job is not None
        return job, created

    def get(self, job_id: str) -> MigrationJob | None:
        j = t.migration_jobs
        with self.store.db.begin(write=False) as conn:
            row = conn.execute(sa.select(j).where(j.c.id == job_id)).mappings().first()
        return MigrationJob.from_row(row) if row is not None else None

    def list(self, limit: int = 50, status: str | None = None) -> list[MigrationJob]:
        """Newest first."""
        j = t.migration_jobs
        q = sa.select(j).order_by(j.c.created_at.desc(), j.c.id).limit(limit)
        if status is not None:
            q = q.where(j.c.status == status)
        with self.store.db.begin(write=False) as conn:
            return [MigrationJob.from_row(r) for r in conn.execute(q).mappings()]

    def claim(self, job_id: str, owner: str, *, lease_seconds: int = DEFAULT_LEASE_SECONDS,
              force: bool = False) -> MigrationJob:
        """Take the job for ``owner`` (compare-and-set): free, expired, already ours, or ``force``.

        Raises ``JobBusy`` naming the holder otherwise; a finished job is returned untouched.
        """
        j = t.migration_jobs
        now = self.store.db.now()
        free = sa.or_(j.c.owner.is_(None), j.c.owner == owner, j.c.lease_until < now, sa.true() if force else sa.false())
        with self.store.db.begin() as conn:
            n = conn.execute(
                sa.update(j).where(j.c.id == job_id, j.c.status != "succeeded", free)
                .values(owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds), status="running",
                        error=None, updated_at=now, started_at=sa.func.coalesce(j.c.started_at, now))
            ).rowcount
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"no migration job {job_id!r}")
        if not n and not job.finished:
            raise JobBusy(f"migration job {job_id} is held by {job.owner} until {job.lease_until:%Y-%m-%d %H:%M:%S}Z "
                          "(still running, or died less than a lease ago): wait, or resume with force")
        return job

    def commit_batch(self, job_id: str, owner: str, *, checkpoint: Mapping[str, Any], counts: Mapping[str, int],
                     reasons: Mapping[str, int], total: int | None = None,
                     lease_seconds: int = DEFAULT_LEASE_SECONDS) -> MigrationJob:
        """One batch is done: its checkpoint and counts in one UPDATE, and the lease renewed."""
        j = t.migration_jobs
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"no migration job {job_id!r}")
        merged = dict(job.counts)
        for k, v in reasons.items():
            merged[k] = merged.get(k, 0) + int(v)
        now = self.store.db.now()
        values: dict[str, Any] = {c: getattr(j.c, c) + int(counts.get(c, 0)) for c in COUNTERS}
        values.update(checkpoint=dict(checkpoint), counts=merged, batches=j.c.batches + 1, updated_at=now,
                      lease_until=now + dt.timedelta(seconds=lease_seconds))
        if total is not None:
            values["total"] = total
        with self.store.db.begin() as conn:
            # guarded by the owner and the batch count read above: a stale writer changes nothing
            n = conn.execute(sa.update(j).where(j.c.id == job_id, j.c.owner == owner, j.c.batches == job.batches)
                             .values(**values)).rowcount
        if not n:
            raise LostLease(f"migration job {job_id}: this process ({owner}) no longer owns it")
        updated = self.get(job_id)
        assert updated is not None
        return updated

    def finish(self, job_id: str, owner: str, status: str, *, report: Mapping[str, Any] | None = None,
               error: str | None = None) -> MigrationJob:
        """End this process's run: ``succeeded`` (with the report), ``stopped`` or ``failed``; the
        lease is given back so a resume can start at once."""
        if status not in t.MIGRATION_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        j = t.migration_jobs
        now = self.store.db.now()
        values: dict[str, Any] = {"status": status, "owner": None, "lease_until": None, "updated_at": now,
                                  "error": error[:2000] if error else None}
        if report is not None:
            values["report"] = dict(report)
        if status == "succeeded":
            values["finished_at"] = now
        with self.store.db.begin() as conn:
            n = conn.execute(sa.update(j).where(j.c.id == job_id, j.c.owner == owner).values(**values)).rowcount
        if not n:
            raise LostLease(f"migration job {job_id}: this process ({owner}) no longer owns it")
        job = self.get(job_id)
        assert job is not None
        return job
