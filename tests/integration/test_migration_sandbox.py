"""historical_migration against the sandbox over HTTP, run by the `erpsync migration` CLI in a
subprocess that is SIGKILLed halfway and resumed.

* 20,000 historical orders (PostgreSQL state store): killed after ~10,000 with a batch half
  written, resumed -> exactly 20,000 sales orders in the ERP, no external reference twice, the
  report reconciled (counts and money per currency at source == target), every record counted
  once (the resume read on after the last committed batch).
* the same on SQLite at a smaller scale, plus a dry run that writes nothing, the refusal of a
  combination that makes no sense, and the other entities (customers, products, shipments,
  returns) through their live flows' writers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.mappings.storefront_sandbox import order_from_storefront
from erpsync.model import OrderStatus
from erpsync.state import StateStore
from erpsync.state.migration_jobs import MigrationJobs
from tests.fixtures.sandbox import TEST_SEED

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ERPSYNC = str(Path(sys.executable).with_name("erpsync"))


def cli_env(sb: Any, state_url: str, home: Path) -> dict[str, str]:
    """What the CLI needs: the sandbox as Connections (as `make up` sets them) and the state store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update({
        "AIRFLOW_CONN_ERP_DEFAULT": json.dumps({
            "conn_type": "erpsync_erp", "host": sb.erp_url, "login": sb.erp_user, "password": sb.erp_password,
            "extra": {"adapter": "sandbox", "timeout": 30, "page_size": 1000}}),
        "AIRFLOW_CONN_STOREFRONT_DEFAULT": json.dumps({
            "conn_type": "erpsync_storefront", "host": sb.storefront_url, "password": sb.token,
            "extra": {"adapter": "sandbox", "timeout": 30, "page_size": 250}}),
        "ERPSYNC_STATE_URL": state_url,
        "ERPSYNC_HOME": str(home),
    })
    return env


def adapters(sb: Any) -> tuple[SandboxErpAdapter, SandboxStorefrontAdapter]:
    return (SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=30, page_size=1000),
            SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=30, page_size=250))


def window_of_paid(sf: SandboxStorefrontAdapter, count: int) -> tuple[str, str, int]:
    """[from, to) of the seeded history holding exactly ``count`` paid orders (what orders_sync
    writes; unpaid, refunded and cancelled ones are read and skipped), and all orders in it."""
    seen = 0
    first: str | None = None
    paid = 0
    for raw in sf.list_orders():
        first = first or raw["updated_at"]
        if order_from_storefront(raw).status is OrderStatus.PAID:
            if paid == count:
                return first, raw["updated_at"], seen
            paid += 1
        seen += 1
    raise AssertionError(f"the sandbox holds only {paid} paid orders")


def start_cli(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([ERPSYNC, "migration", *args], env=env, stdout=out, stderr=subprocess.STDOUT)


def run_cli(env: dict[str, str], *args: str, log: Path, timeout: float = 900) -> int:
    proc = start_cli(env, *args, log=log)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def kill_halfway(proc: subprocess.Popen[bytes], store: StateStore, job_id: str, sb: Any, halfway: int,
                 log: Path) -> tuple[int, int, int]:
    """SIGKILL the migration once ``halfway`` records are committed and a batch is half written
    (the ERP holds more orders than the committed count): (processed, written, ERP orders) then."""
    jobs = MigrationJobs(store)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the migration ended before it was killed:\n{log.read_text()[-3000:]}"
        job = jobs.get(job_id)
        if job is not None and job.processed >= halfway:
            in_erp = sb.stats("erp")["sales_orders"]
            if in_erp > job.written:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return job.processed, job.written, in_erp
        time.sleep(0.05)
    raise AssertionError("the migration never got halfway")


def assert_migrated_once(sb: Any, erp: SandboxErpAdapter, count: int) -> None:
    refs = Counter(str(so["external_ref"]) for so in erp.list_sales_orders())
    assert len(refs) == count, f"{len(refs)} distinct storefront orders in the ERP, expected {count}"
    assert sum(refs.values()) == count and max(refs.values()) == 1, refs.most_common(3)
    stats = sb.stats("erp")
    assert stats["sales_orders"] == count and stats["duplicate_external_refs"] == 0


def assert_reconciled(job: Any, count: int) -> None:
    report = job.report
    assert job.status == "succeeded" and report["reconciled"] is True, json.dumps(report, default=str)[:3000]
    assert report["differences"] == 0 and report["items"] == []
    assert report["source"]["expected"] == count and report["target"]["records"] == count
    for currency, t in report["per_currency"].items():
        assert (t["store_orders"], t["store_total"], t["store_tax"]) == (t["erp_orders"], t["erp_total"], t["erp_tax"]), \
            currency
    assert sum(t["store_orders"] for t in report["per_currency"].values()) == count


def migrate_killed_and_resumed(sb: Any, state_url: str, tmp_path: Path, *, paid: int, batch: int,
                               halfway: int | None = None) -> Any:
    """The scenario of both tests: start in a subprocess, SIGKILL halfway, resume, check."""
    erp, sf = adapters(sb)
    date_from, date_to, in_window = window_of_paid(sf, paid)
    env, log = cli_env(sb, state_url, tmp_path / "home"), tmp_path / "migration.log"
    store = StateStore.from_url(state_url)
    store.migrate()
    job_id = "orders-history"
    proc = start_cli(env, "start", "--entity", "orders", "--from", date_from, "--to", date_to,
                     "--batch-size", str(batch), "--job-id", job_id, "--no-progress",
                     "--param", "write_concurrency=8", log=log)
    processed, written, in_erp = kill_halfway(proc, store, job_id, sb, halfway or in_window // 2, log)
    killed = MigrationJobs(store).get(job_id)
    assert killed is not None and killed.status == "running" and killed.owner  # left as the kill left it
    assert written < in_erp < paid  # a batch was half written past the checkpoint
    follow = subprocess.run([ERPSYNC, "migration", "follow", job_id, "--timeout", "30"], env=env,
                            capture_output=True, text=True)
    assert follow.returncode == 1 and "nobody runs it any more" in follow.stderr  # the killed owner is seen gone

    rc = run_cli(env, "resume", job_id, "--no-progress", log=log)
    assert rc == 0, log.read_text()[-4000:]
    job = MigrationJobs(store).get(job_id)
    assert job is not None
    print(f"killed at {processed:,} processed ({written:,} written, {in_erp:,} in the ERP); "
          f"resumed to {job.processed:,} in {job.batches} batches")
    assert job.processed == job.total == in_window  # every record counted once: the resume read on
    # the half-written batch was read again on resume; every order of it that the ERP already had
    # was recognised, not written twice: skipped by the ledger (its write had completed) or found
    # by its key (killed between the ERP's commit and the ledger update)
    again = job.counts.get("already_synced", 0) + job.counts.get("found_by_key", 0)
    assert again >= in_erp - written > 0, job.counts
    assert job.written + job.counts.get("already_synced", 0) == paid
    assert_migrated_once(sb, erp, paid)
    assert_reconciled(job, paid)
    text = log.read_text()
    assert "ETA" in text and "/s" in text and f"/{in_window:,}" in text  # progress lines: done/total, rate, ETA
    store.close()
    return job


@pytest.mark.postgres
def test_20000_historical_orders_killed_halfway_and_resumed(
    seeded: Callable[..., Any], pg_database: Callable[[], str], tmp_path: Path
) -> None:
    sb = seeded(seed=8, skus=60, customers=150, orders=24_500)
    started = time.monotonic()
    # large batches: the quality gate (GX) runs once per batch
    migrate_killed_and_resumed(sb, pg_database(), tmp_path, paid=20_000, batch=5000, halfway=10_000)
    print(f"20,000 orders: {time.monotonic() - started:.1f} s")


def test_killed_migration_resumes_on_sqlite_and_dry_run_writes_nothing(
    seeded: Callable[..., Any], tmp_path: Path
) -> None:
    sb = seeded(seed=9, skus=40, customers=60, orders=1_200)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    env, log = cli_env(sb, url, tmp_path / "home"), tmp_path / "cli.log"
    # a dry run first: counts and samples, nothing written anywhere (not even dead letters)
    assert run_cli(env, "start", "--entity", "orders", "--from", "2025-01-01", "--batch-size", "250",
                   "--dry-run", "--job-id", "dry", "--no-progress", log=log) == 0, log.read_text()[-3000:]
    assert sb.stats("erp")["sales_orders"] == 0 and sb.stats("erp")["writes_committed"] == 0
    with StateStore.from_url(url) as store:
        dry = MigrationJobs(store).get("dry")
        assert dry is not None and dry.status == "succeeded" and dry.written == 0
        assert dry.counts["would_write"] > 900 and dry.counts["would_skip"] > 100 and dry.processed == 1_200
        assert dry.report["samples"] and "create sales order" in dry.report["samples"][0]["detail"]
        assert store.list_dead_letters() == []
    assert "DRY RUN, nothing written" in log.read_text()

    job = migrate_killed_and_resumed(sb, url, tmp_path, paid=800, batch=100)
    assert job.batches >= 8
    # a finished job started again only shows its report
    assert run_cli(env, "resume", "orders-history", "--no-progress", log=log) == 0
    out = subprocess.run([ERPSYNC, "migration", "status"], env=env, capture_output=True, text=True, check=True).stdout
    assert "orders-history" in out and "succeeded" in out and "dry" in out
    report = subprocess.run([ERPSYNC, "migration", "report", "orders-history"], env=env, capture_output=True,
                            text=True, check=True).stdout
    assert "RECONCILED" in report
    follow = subprocess.run([ERPSYNC, "migration", "follow", "orders-history"], env=env, capture_output=True,
                            text=True)
    assert follow.returncode == 0 and "RECONCILED" in follow.stdout


def test_a_combination_that_makes_no_sense_is_refused_with_the_valid_ones(
    seeded: Callable[..., Any], tmp_path: Path
) -> None:
    sb = seeded(**TEST_SEED)
    env = cli_env(sb, f"sqlite:///{tmp_path / 'state.db'}", tmp_path / "home")
    done = subprocess.run([ERPSYNC, "migration", "start", "--entity", "products", "--direction", "store_to_erp",
                           "--from", "2025-01-01"], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "products cannot be migrated store_to_erp" in done.stderr
    assert "valid: customers store_to_erp, products erp_to_store, orders store_to_erp" in done.stderr
