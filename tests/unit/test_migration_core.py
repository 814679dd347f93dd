"""The pure parts of the historical migration: params, progress and ETA, batching by pages and
checkpoints, the job id of a run, the resume of a job, and a run over in-memory doubles."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from flow_doubles import FakeErp, FakeStorefront, make_ctx
from test_flows_customers import sf_customer
from test_flows_orders import sf_order, store  # noqa: F401  (store: a fixture)

from erpsync.connectors.base import Page
from erpsync.errors import ConfigError
from erpsync.flows import migration
from erpsync.flows.migration import MigrationSpec, Progress, batches, format_seconds, job_id_for
from erpsync.state import StateStore
from erpsync.state.migration_jobs import JobBusy, MigrationJobs

NOW = dt.datetime(2026, 12, 1, 12, 0, 30, 123, tzinfo=dt.UTC)


def spec(**over: Any) -> MigrationSpec:
    params = {"entity": "orders", "direction": "store_to_erp", "date_from": "2025-11-01", **over}
    return MigrationSpec.from_params(params, now=NOW)


def test_params_are_validated_and_dates_are_utc_half_open() -> None:
    s = spec(date_to="2026-11-01T12:00:00Z", batch_size="500", dry_run="true", flow_params={"guest_policy": "create"})
    assert (s.date_from, s.date_to) == (dt.datetime(2025, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))
    assert (s.batch_size, s.dry_run, s.params) == (500, True, {"guest_policy": "create"})
    assert spec().date_to == NOW.replace(microsecond=0)  # no end: now
    assert spec(direction="store-to-erp").direction == "store_to_erp"


@pytest.mark.parametrize(("over", "message"), [
    ({"entity": "invoices"}, "entity='invoices' is unknown; valid: customers store_to_erp, products erp_to_store"),
    ({"direction": "erp_to_store"}, "orders cannot be migrated erp_to_store (their source is the store); valid:"),
    ({"entity": "products"}, "products cannot be migrated store_to_erp (their source is the ERP)"),
    ({"direction": "sideways"}, "direction='sideways' is unknown"),
    ({"date_from": ""}, "date_from is required"),
    ({"date_from": "yesterday"}, "date_from='yesterday' is not YYYY-MM-DD"),
    ({"date_to": "2025-10-01"}, "must be before date_to"),
    ({"batch_size": 50_001}, "batch_size=50001 must be between 1 and 50000"),
    ({"batch_size": "many"}, "batch_size='many' is not a number"),
    ({"flow_params": "guest_policy=create"}, "flow_params must be an object"),
])
def test_bad_params_are_one_clear_line(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        spec(**over)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_progress_rate_and_eta_count_only_this_run() -> None:
    p = Progress(total=20_000, done=10_000, started_done=8_000, started_at=100.0)
    assert p.rate(110.0) == 200.0  # 2,000 in 10 s; the 8,000 of the killed run do not count
    assert p.eta(110.0) == 50.0 and p.fraction() == 0.5
    assert p.render(110.0) == "10,000/20,000 (50.0%) | 200.0/s | ETA 0:00:50"
    assert Progress(None, 5, 0, 0.0).render(1.0) == "5/? | 5.0/s | ETA ?"
    assert Progress(0, 0, 0, 0.0).fraction() == 1.0 and Progress(10, 0, 0, 5.0).eta(5.0) is None
    assert format_seconds(3725.4) == "1:02:05"


def test_batches_are_whole_pages_with_the_token_after_the_last() -> None:
    pages = iter([Page([{"id": i} for i in range(0, 3)], "t1", total=8), Page([{"id": 3}, {"id": 4}], "t2"),
                  Page([{"id": 5}, {"id": 6}], "t3"), Page([{"id": 7}], None)])
    got = [(len(rs), token, total) for rs, token, total in batches(pages, 4)]
    assert got == [(5, "t2", 8), (3, None, 8)]
    assert list(batches(iter([Page([], None, total=0)]), 10)) == [([], None, 0)]


def test_the_job_of_a_run_is_the_same_on_every_try() -> None:
    a = job_id_for("manual__2026-12-01T10:00:00+00:00", "orders")
    assert a == job_id_for("manual__2026-12-01T10:00:00+00:00", "orders") and a.startswith("orders-")
    assert a != job_id_for("manual__2026-12-01T10:00:01+00:00", "orders")


def test_owner_gone_only_for_a_dead_process_of_this_host() -> None:
    import os
    import socket

    host = socket.gethostname()
    assert migration.owner_is_gone(f"{host}:999999999")
    assert not migration.owner_is_gone(f"{host}:{os.getpid()}")
    assert not migration.owner_is_gone("other-host:1") and not migration.owner_is_gone("airflow:dag:run")


def _world() -> tuple[FakeErp, FakeStorefront]:
    erp = FakeErp()
    erp.add_item("SKU-000001", "ITEM-000001")
    erp.add_item("SKU-000002", "ITEM-000002")
    cust = sf_customer(1)
    sf = FakeStorefront([cust], [sf_order(n, customer=cust, updated=f"2026-06-{n:02d}T10:00:00Z") for n in range(1, 11)])
    return erp, sf


def test_a_run_over_doubles_stops_and_resumes_without_writing_twice(store: StateStore) -> None:  # noqa: F811
    """FakeStorefront has no resumable reads: the plain listing with an offset checkpoint."""
    erp, sf = _world()
    base = make_ctx(store, migration.FLOW, erp, sf)
    s = spec(date_from="2026-06-02", date_to="2026-06-10", batch_size=3, flow_params={"write_concurrency": 1})
    stops = iter([False, True])
    job = migration.run_job(base, "j", s, should_stop=lambda: next(stops))
    assert (job.status, job.batches, job.processed, job.checkpoint["token"]) == ("stopped", 2, 6, "6")
    assert len(erp.orders) == 6 and job.owner is None
    job = migration.run_job(base, "j")  # resume: reads on after the checkpoint
    assert job.status == "succeeded" and job.processed == 8 and len(erp.orders) == 8  # June 2..9, [from, to)
    assert sorted(o["external_ref"] for o in erp.orders.values()) == [f"O{100000 + n}" for n in range(2, 10)]
    assert job.report["source"] == {"records": 8, "expected": 8} and job.report["target"]["records"] == 8
    # a finished job is not run again, and a resume cannot change what a job migrates
    assert migration.run_job(base, "j").batches == job.batches
    with pytest.raises(ConfigError, match="already exists as orders store_to_erp"):
        migration.run_job(base, "j", spec(date_from="2026-06-01"))


def test_a_job_held_by_a_live_process_is_refused(store: StateStore) -> None:  # noqa: F811
    erp, sf = _world()
    MigrationJobs(store).create("busy", entity="orders", direction="store_to_erp", date_from=spec().date_from,
                                date_to=spec().date_to, batch_size=10, dry_run=False)
    MigrationJobs(store).claim("busy", "elsewhere:1")
    with pytest.raises(JobBusy, match="held by elsewhere:1"):
        migration.run_job(make_ctx(store, migration.FLOW, erp, sf), "busy")


def test_progress_bar_draws_in_place_on_a_terminal() -> None:
    from erpsync_airflow.cli.migration import ProgressBar

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    class Job:  # the fields of a job the line shows
        id, batches, written, skipped, failed, dry_run, counts = "j", 2, 5, 1, 0, False, {}

    out = Tty()
    bar = ProgressBar(out, width=10)
    bar.show(Job(), Progress(10, 6, 0, 0.0), now=3.0)
    bar.show(Job(), Progress(10, 8, 0, 0.0), now=4.0)
    bar.close()
    text = out.getvalue()
    assert "historical_migration j: 6/10 (60.0%) | 2.0/s | ETA 0:00:02" in text
    assert "historical_migration j: 8/10 (80.0%) | 2.0/s | ETA 0:00:01" in text
    assert "\x1b[" in text and "\r" in text  # redrawn in place with terminal codes (rich's live display)
    assert text.removesuffix("\x1b[?25h").endswith("\n")  # close() ends the line (and shows the cursor again)


def test_progress_bar_writes_a_line_per_update_off_a_terminal() -> None:
    from erpsync_airflow.cli.migration import ProgressBar

    class Job:
        id, batches, written, skipped, failed, dry_run, counts = "j", 1, 3, 0, 0, False, {}

    out = io.StringIO()
    bar = ProgressBar(out)
    bar.show(Job(), Progress(None, 3, 0, 0.0), now=1.0)
    bar.close()
    assert out.getvalue() == "historical_migration j: 3/? | 3.0/s | ETA ? | written 3 skipped 0 failed 0 | batch 1\n"
