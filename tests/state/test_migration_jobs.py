"""Migration jobs in the store, on SQLite and PostgreSQL: created once, claimed by one process at a
time, batches committed with their checkpoint and counts together, a stale owner locked out."""

from __future__ import annotations

import datetime as dt

import pytest

from erpsync.state import StateStore
from erpsync.state.migration_jobs import JobBusy, LostLease, MigrationJobs
from tests.state._support import FakeClock

SPEC = {"entity": "orders", "direction": "store_to_erp", "date_from": dt.datetime(2025, 11, 1, tzinfo=dt.UTC),
        "date_to": dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "batch_size": 500, "dry_run": False}


def test_create_is_idempotent_and_keeps_the_spec(store_url: str) -> None:
    with StateStore.from_url(store_url) as store:
        jobs = MigrationJobs(store)
        job, created = jobs.create("orders-1", **SPEC, params={"guest_policy": "create"})
        assert created and job.status == "pending" and job.checkpoint == {"token": None, "exhausted": False}
        again, created = jobs.create("orders-1", **{**SPEC, "batch_size": 9})
        assert not created and again.batch_size == 500 and again.params == {"guest_policy": "create"}
        assert [j.id for j in jobs.list()] == ["orders-1"]


def test_one_owner_at_a_time_and_a_lapsed_lease_can_be_taken(store_url: str, clock: FakeClock) -> None:
    with StateStore.from_url(store_url, clock=clock) as store:
        jobs = MigrationJobs(store)
        jobs.create("j", **SPEC)
        assert jobs.claim("j", "host:1", lease_seconds=60).owner == "host:1"
        assert jobs.claim("j", "host:1").status == "running"  # the same owner again (an Airflow retry)
        with pytest.raises(JobBusy, match="held by host:1"):
            jobs.claim("j", "host:2")
        clock.advance(seconds=301)
        assert jobs.claim("j", "host:2").owner == "host:2"
        assert jobs.claim("j", "host:3", force=True).owner == "host:3"


def test_batches_commit_checkpoint_and_counts_together_and_a_stale_owner_is_locked_out(
    store_url: str, clock: FakeClock
) -> None:
    with StateStore.from_url(store_url, clock=clock) as store:
        jobs = MigrationJobs(store)
        jobs.create("j", **SPEC)
        jobs.claim("j", "a")
        job = jobs.commit_batch("j", "a", checkpoint={"token": "p2", "exhausted": False},
                                counts={"processed": 500, "written": 450, "skipped": 40, "failed": 10},
                                reasons={"unpaid": 40, "unknown_sku": 10}, total=1000)
        assert (job.batches, job.processed, job.written, job.total, job.checkpoint["token"]) == (1, 500, 450, 1000, "p2")
        clock.advance(seconds=301)
        jobs.claim("j", "b")  # a lapsed lease taken over
        with pytest.raises(LostLease):
            jobs.commit_batch("j", "a", checkpoint={"token": "p3"}, counts={"processed": 500}, reasons={})
        job = jobs.commit_batch("j", "b", checkpoint={"token": None, "exhausted": True},
                                counts={"processed": 500, "written": 500}, reasons={"unpaid": 2})
        assert (job.processed, job.written, job.counts["unpaid"], job.checkpoint["exhausted"]) == (1000, 950, 42, True)
        done = jobs.finish("j", "b", "succeeded", report={"ok": True})
        assert done.finished and done.owner is None and done.report == {"ok": True} and done.finished_at
        assert jobs.claim("j", "c").finished  # a finished job is never taken again
        with pytest.raises(LostLease):
            jobs.finish("j", "a", "failed", error="late")
