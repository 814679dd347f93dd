"""Two writers of one idempotency key at the same time: one writes, the other takes its result.

``idempotent_write`` keeps "the same record twice never makes two ERP records" for writers one
after the other by the ledger row and a look-up. Writers AT THE SAME TIME (two orders_sync
partitions creating the shared guest account, an overlapping manual run, a replay during a run,
two Celery workers) are kept apart by the key's claim (``LedgerRepository.claim``): the repository
rules on both backends, then idempotent_write with two threads (SQLite) and two processes
(PostgreSQL, a database of its own), and a crashed writer's lease taken over.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from erpsync.errors import TransientError
from erpsync.flows.base import WriteResult, idempotent_write
from erpsync.state import StateStore
from tests.state._support import FakeClock

KEY = "customer:guest-account:WEB-GUEST"


# -- the repository (both backends) -------------------------------------------------------------


def test_claim_new_held_done_and_taken(store_url: str, clock: FakeClock) -> None:
    with StateStore.from_url(store_url, clock=clock, redact_keys=()) as store:
        first = store.ledger.claim(KEY, "orders_sync", "erp", "h", token="A", lease_seconds=60)
        assert (first.outcome, first.mine, first.entry.status) == ("new", True, "pending")
        assert (first.entry.claimed_by, first.entry.lease_until) == ("A", clock.now.replace(minute=1))

        other = store.ledger.claim(KEY, "orders_sync", "erp", "h", token="B", lease_seconds=60)
        assert (other.outcome, other.mine, other.entry.claimed_by) == ("held", False, "A")

        clock.advance(seconds=61)  # A crashed: its lease ran out
        taken = store.ledger.claim(KEY, "orders_sync", "erp", "h", token="B", lease_seconds=60)
        assert (taken.outcome, taken.mine, taken.entry.claimed_by) == ("taken", True, "B")
        assert store.ledger.release(KEY, "A") is False  # A no longer holds it: nothing changes
        assert store.ledger_get(KEY).claimed_by == "B"  # type: ignore[union-attr]

        store.ledger_complete(KEY, "C-1")
        done_row = store.ledger_get(KEY)
        assert done_row is not None and (done_row.claimed_by, done_row.lease_until) == (None, None)
        done = store.ledger.claim(KEY, "orders_sync", "erp", "h", token="C", lease_seconds=60)
        assert (done.outcome, done.mine, done.entry.result_ref) == ("done", False, "C-1")
        assert store.ledger_get(KEY).claimed_by is None  # type: ignore[union-attr]


def test_release_and_fail_end_the_claim_at_once(store_url: str, clock: FakeClock) -> None:
    with StateStore.from_url(store_url, clock=clock, redact_keys=()) as store:
        store.ledger.claim("k1", "orders_sync", "erp", token="A", lease_seconds=600)
        assert store.ledger.release("k1", "A") is True
        again = store.ledger.claim("k1", "orders_sync", "erp", token="B", lease_seconds=600)
        assert again.outcome == "taken"  # at once, not after the lease: an earlier try may have written

        store.ledger.claim("k2", "orders_sync", "erp", token="A", lease_seconds=600)
        store.ledger_fail("k2", "422 invalid")
        failed = store.ledger.claim("k2", "orders_sync", "erp", token="B", lease_seconds=600)
        assert (failed.outcome, failed.entry.status) == ("taken", "failed")


def test_a_done_row_with_a_false_result_is_claimed_again(store_url: str) -> None:
    """A "done" row holding "None" is an old false success: it is written (looked up) again."""
    with StateStore.from_url(store_url, redact_keys=()) as store:
        store.ledger_begin("k", "orders_sync", "erp")
        store.ledger_complete("k", "None")
        real = lambda ref: ref not in (None, "None")  # noqa: E731
        claim = store.ledger.claim("k", "orders_sync", "erp", token="A", lease_seconds=60, is_result=real)
        assert (claim.outcome, claim.entry.status) == ("taken", "done")


# -- idempotent_write with writers at the same time -----------------------------------------------


class SlowErp:
    """A target that takes ``seconds`` per create and, like an ERP without idempotency keys,
    makes a new record for every create. Thread-safe; counts every create."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.records: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.lookups = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def create(self, external_ref: str, fail: Exception | None = None) -> dict[str, Any]:
        time.sleep(self.seconds)
        if fail is not None:
            raise fail
        with self._lock:
            self.creates += 1
            record = {"customer_no": f"C-{next(self._ids)}", "external_ref": external_ref}
            self.records[record["customer_no"]] = record
            return record

    def find(self, external_ref: str) -> dict[str, Any] | None:
        with self._lock:
            self.lookups += 1
            return next((r for r in self.records.values() if r["external_ref"] == external_ref), None)


def _ctx(store: StateStore, run_id: str) -> Any:
    from tests.unit.flow_doubles import FakeErp, FakeStorefront, make_ctx

    return make_ctx(store, "orders_sync", FakeErp(), FakeStorefront(), run_id=run_id)


def _write(ctx: Any, erp: SlowErp, key: str = KEY, fail: Exception | None = None) -> WriteResult:
    ref = key.removeprefix("customer:")
    return idempotent_write(
        ctx, key=key, entity="customer", external_id=ref, operation="create_customer",
        payload={"external_ref": ref}, write=lambda: erp.create(ref, fail), ref_of=lambda r: r["customer_no"],
        lookup=lambda: erp.find(ref),
    )


def _in_threads(*calls: Callable[[], WriteResult]) -> list[WriteResult | BaseException]:
    results: list[WriteResult | BaseException] = [RuntimeError("did not run")] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    return results


def test_two_threads_same_key_write_once_and_both_get_its_ref(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with StateStore.from_url(url) as store:
        store.migrate()
    erp = SlowErp(seconds=0.5)
    # two stores on one file: two workers (their own connections, no shared in-process lock)
    with StateStore.from_url(url) as one, StateStore.from_url(url) as two:
        results = _in_threads(lambda: _write(_ctx(one, "run-1"), erp), lambda: _write(_ctx(two, "run-2"), erp))
        assert all(isinstance(r, WriteResult) for r in results), results
        assert erp.creates == 1 and len(erp.records) == 1
        refs = {r.ref for r in results if isinstance(r, WriteResult)}
        assert refs == set(erp.records)
        assert sorted(r.created for r in results if isinstance(r, WriteResult)) == [False, True]
        row = one.ledger_get(KEY)
        assert row is not None and (row.status, row.result_ref, row.claimed_by) == ("done", refs.pop(), None)


def test_threads_of_one_store_are_writers_of_their_own(tmp_path: Path) -> None:
    """One process, one store, many threads (write_concurrency): each call is its own writer."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with StateStore.from_url(url) as store:
        store.migrate()
        erp = SlowErp(seconds=0.3)
        results = _in_threads(*[lambda n=n: _write(_ctx(store, f"run-{n}"), erp) for n in range(4)])
        assert all(isinstance(r, WriteResult) for r in results), results
        assert erp.creates == 1
        assert {r.ref for r in results if isinstance(r, WriteResult)} == set(erp.records)


def test_a_crashed_writers_expired_lease_is_taken_over_and_the_lookup_finds_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("ERPSYNC_LEDGER_WAIT_SECONDS", "10")
    with StateStore.from_url(url) as store:
        store.migrate()
        erp = SlowErp()
        # the crashed writer: claimed the key (a short lease), wrote, died before completing
        store.ledger.claim(KEY, "orders_sync", "erp", token="worker-1:4242:dead", lease_seconds=0.5)
        written = erp.create("guest-account:WEB-GUEST")
        started = time.monotonic()
        result = _write(_ctx(store, "run-2"), erp)
        waited = time.monotonic() - started
        assert result == WriteResult(written["customer_no"], created=False)
        assert erp.creates == 1 and erp.lookups >= 1  # looked up, not written again
        assert 0.3 <= waited < 5  # it waited for the lease, not for the whole wait
        row = store.ledger_get(KEY)
        assert row is not None and (row.status, row.result_ref, row.claimed_by) == ("done", written["customer_no"],
                                                                                    None)
        found = [a for a in store.list_audit(limit=10) if a.operation == "create_customer.lookup"]
        assert [a.result for a in found] == ["found"]


def test_a_live_claim_past_the_wait_is_a_transient_error_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("ERPSYNC_LEDGER_WAIT_SECONDS", "0")
    with StateStore.from_url(url) as store:
        store.migrate()
        erp = SlowErp()
        store.ledger.claim(KEY, "orders_sync", "erp", token="worker-1:4242:busy", lease_seconds=600)
        with pytest.raises(TransientError) as info:
            _write(_ctx(store, "run-2"), erp)
        message = str(info.value)
        assert KEY in message and "worker-1:4242:busy" in message and "ERPSYNC_LEDGER_WAIT_SECONDS" in message
        assert "kept for the next try" in message
        assert erp.creates == 0 and erp.lookups == 0
        row = store.ledger_get(KEY)
        assert row is not None and (row.status, row.claimed_by) == ("pending", "worker-1:4242:busy")


def test_a_holder_that_fails_gives_the_claim_up_and_the_waiter_writes_after_a_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.setenv("ERPSYNC_LEDGER_LEASE_SECONDS", "600")  # the waiter must not need the lease to end
    monkeypatch.setenv("ERPSYNC_LEDGER_WAIT_SECONDS", "20")
    with StateStore.from_url(url) as one, StateStore.from_url(url) as two:
        one.migrate()
        erp = SlowErp(seconds=0.5)
        down = TransientError("503 from the ERP after the adapter's retries", system="erp")
        results = _in_threads(lambda: _write(_ctx(one, "run-1"), erp, fail=down),
                              lambda: _write(_ctx(two, "run-2"), erp))
        failed = [r for r in results if isinstance(r, TransientError)]
        written = [r for r in results if isinstance(r, WriteResult)]
        # whoever got the claim first: either the failing writer went first (the other took over
        # after a look-up and wrote) or the good one did (the failing one then found it done)
        assert len(written) >= 1 and erp.creates == 1
        assert {r.ref for r in written} == set(erp.records)
        assert len(failed) + len(written) == 2
        row = one.ledger_get(KEY)
        assert row is not None and (row.status, row.claimed_by) == ("done", None)


# -- PostgreSQL: two processes ---------------------------------------------------------------------


@pytest.fixture
def h4_pg_url() -> Iterator[str]:
    """A database of its own (erpsync_h4_*) on the test server, migrated; dropped afterwards."""
    from psycopg import sql

    from tests.fixtures.postgres import _admin_connect, _database_url

    admin = _admin_connect()
    name = f"erpsync_h4_{uuid.uuid4().hex[:10]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = _database_url(name)
        with StateStore.from_url(url) as store:
            store.migrate()
            with store.engine.begin() as conn:  # the "ERP" both processes write to: no unique ref
                conn.exec_driver_sql("CREATE TABLE h4_fake_erp (customer_no serial PRIMARY KEY, "
                                     "external_ref text NOT NULL, pid int NOT NULL)")
        yield url
    finally:
        with admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _pg_writer(url: str, start: Any, out: Any) -> None:
    """One process: waits for the other, then writes the guest account through idempotent_write,
    the create taking 0.7 s in the shared fake ERP table."""
    import os

    import sqlalchemy as sa

    with StateStore.from_url(url) as store:
        ctx = _ctx(store, f"run-{os.getpid()}")
        ref = "guest-account:WEB-GUEST"

        def create() -> dict[str, Any]:
            time.sleep(0.7)
            with store.engine.begin() as conn:
                no = conn.execute(sa.text("INSERT INTO h4_fake_erp (external_ref, pid) VALUES (:r, :p) "
                                          "RETURNING customer_no"), {"r": ref, "p": os.getpid()}).scalar_one()
            return {"customer_no": f"C-{no}"}

        def find() -> dict[str, Any] | None:
            with store.engine.begin() as conn:
                no = conn.execute(sa.text("SELECT min(customer_no) FROM h4_fake_erp WHERE external_ref = :r"),
                                  {"r": ref}).scalar()
            return None if no is None else {"customer_no": f"C-{no}"}

        start.wait(30)
        try:
            result = idempotent_write(
                ctx, key=KEY, entity="customer", external_id=ref, operation="create_customer",
                payload={"external_ref": ref}, write=create, ref_of=lambda r: r["customer_no"], lookup=find,
            )
            out.put(("ok", result.ref, result.created))
        except Exception as exc:  # the parent reports it
            out.put(("error", f"{type(exc).__name__}: {exc}", None))


@pytest.mark.postgres
def test_two_processes_on_postgresql_write_once_and_both_get_its_ref(h4_pg_url: str) -> None:
    import sqlalchemy as sa

    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(2), spawn.Queue()
    procs = [spawn.Process(target=_pg_writer, args=(h4_pg_url, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    answers = [out.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(kind == "ok" for kind, _, _ in answers), answers
    assert sorted(created for _, _, created in answers) == [False, True]
    refs = {ref for _, ref, _ in answers}
    with StateStore.from_url(h4_pg_url) as store:
        with store.engine.begin() as conn:
            rows = conn.execute(sa.text("SELECT customer_no FROM h4_fake_erp")).scalars().all()
        assert len(rows) == 1, f"{len(rows)} ERP records for one key: {rows}"
        assert refs == {f"C-{rows[0]}"}
        row = store.ledger_get(KEY)
        assert row is not None and (row.status, row.result_ref, row.claimed_by) == ("done", f"C-{rows[0]}", None)


# -- a holder on this machine that is gone (killed task, crashed worker) -------------------------


def test_a_claim_of_a_process_gone_on_this_host_is_taken_at_once(store_url: str, clock: FakeClock) -> None:
    """A task killed mid-write (OOM, SIGKILL, a worker lost) leaves its claims with a lease still
    running; its own retry on the same machine must not wait the lease out. A claim whose token
    names this host and PID namespace and a process that no longer exists is taken at once, as
    an expired one is (``taken``: look up before writing)."""
    from erpsync.state.repos.ledger import claim_token, holder_is_gone

    child = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    child.start()
    child.join()
    dead = claim_token().split(":")
    dead[-2] = str(child.pid)  # this host and namespace, a process that has exited (and was reaped)
    dead_token = ":".join(dead)
    assert holder_is_gone(dead_token)
    assert not holder_is_gone(claim_token())  # this very process
    alive = claim_token().split(":")
    alive[0] = "another-host"  # another machine: its process cannot be seen from here
    dead_elsewhere = alive[:]
    dead_elsewhere[-2] = str(child.pid)
    assert not holder_is_gone(":".join(dead_elsewhere))
    assert not holder_is_gone("A")  # a token that names no process: only its lease ends it

    with StateStore.from_url(store_url, clock=clock, redact_keys=()) as store:
        store.ledger.claim(KEY, "orders_sync", "erp", "h", token=dead_token, lease_seconds=1800)
        taken = store.ledger.claim(KEY, "orders_sync", "erp", "h", token="B", lease_seconds=1800)
        assert (taken.outcome, taken.mine, taken.entry.claimed_by) == ("taken", True, "B")

        store.ledger.claim("k-live", "orders_sync", "erp", "h", token=claim_token(), lease_seconds=1800)
        held = store.ledger.claim("k-live", "orders_sync", "erp", "h", token="C", lease_seconds=1800)
        assert held.outcome == "held"  # a live holder keeps its claim
