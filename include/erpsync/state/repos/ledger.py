"""The idempotency ledger: one row per write, keyed, so a retried write is never sent twice."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from erpsync.state import schema as t
from erpsync.state.db import StateDB, chunks
from erpsync.state.records import LedgerEntry

#: what ``LedgerRepository.claim`` found: the key's write is this caller's to send (``new``: no
#: earlier row; ``taken``: an earlier row nobody holds, or whose lease ran out, so the write may
#: already have happened), already ``done``, or ``held`` by another writer's live lease
ClaimOutcome = Literal["new", "taken", "done", "held"]


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer of ``LedgerRepository.claim``: the key's row after it, and what that means."""

    entry: LedgerEntry
    outcome: ClaimOutcome

    @property
    def mine(self) -> bool:
        """The caller holds the lease: it alone may send the write, until ``entry.lease_until``."""
        return self.outcome in ("new", "taken")


def _pid_namespace() -> str:
    """This process's PID namespace (containers on one host with one host name each see their own
    PIDs): a PID is looked up only by a process of the same namespace."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def claim_token() -> str:
    """A new writer's name for ``LedgerRepository.claim``: unique per call (two threads of one
    process are two writers), and saying where it runs (host, PID namespace, process) for whoever
    waits on it: ``host:pidns:pid:random``."""
    return f"{socket.gethostname()[:120]}:{_pid_namespace()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def holder_is_gone(token: str) -> bool:
    """True when ``token`` (a ``claim_token``) names a process on this host, in this PID
    namespace, that no longer runs (a task killed mid-write: its retry here need not wait its
    lease out). False whenever that cannot be known: another host or namespace, a token of
    another form, a process that still exists (or a PID taken again since: the lease ends it)."""
    parts = token.rsplit(":", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return False
    host, pidns, pid_text, _ = parts
    if host != socket.gethostname()[:120] or pidns == "-" or pidns != _pid_namespace():
        return False
    pid = int(pid_text)
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, run by someone else
        return False
    try:  # a zombie (killed, not yet reaped by its parent) writes nothing any more
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class LedgerRepository:
    """The ``idempotency_ledger`` table."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def begin(self, key: str, flow: str, target_system: str, request_hash: str | None = None) -> LedgerEntry:
        """Record the intent to write; if the key is known, return its row untouched so the caller
        can see the write was already done (or is in doubt) instead of writing twice."""
        lg = t.idempotency_ledger
        stmt = self._insert_pending(key, flow, target_system, request_hash, self.db.now())
        with self.db.begin() as conn:
            row = conn.execute(stmt).mappings().first()
            if row is None:
                row = conn.execute(sa.select(lg).where(lg.c.key == key)).mappings().one()
            return LedgerEntry.from_row(row)

    def claim(
        self,
        key: str,
        flow: str,
        target_system: str,
        request_hash: str | None = None,
        *,
        token: str,
        lease_seconds: float,
        is_result: Callable[[str | None], bool] | None = None,
    ) -> Claim:
        """Take the key's write for ``token`` for ``lease_seconds``, in one write transaction, so
        two writers at the same time (threads, processes, hosts) never both get it:

        * no row yet: insert it ``pending`` and claimed (``new``);
        * a ``done`` row whose result ``is_result(result_ref)`` accepts (default: any): untouched
          (``done``: the caller takes its result, writes nothing);
        * a row another token holds with a lease still running: untouched (``held``: wait),
          unless that token names a process of this host that no longer runs (``holder_is_gone``:
          a killed task's retry here takes it at once);
        * otherwise (pending or failed, or done with a false result, and nobody's live lease):
          claimed (``taken``: an earlier writer may have written, look up before writing).

        The row is read FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
        writers), so the decision and the claim are one step. Leases are timed by the store's
        clock, like the outbox's: workers' clocks must agree to well within a lease."""
        lg = t.idempotency_ledger
        now = self.db.now()
        until = now + dt.timedelta(seconds=lease_seconds)
        insert = self._insert_pending(key, flow, target_system, request_hash, now, claimed_by=token,
                                      lease_until=until)
        with self.db.begin() as conn:
            row = conn.execute(insert).mappings().first()
            if row is not None:
                return Claim(LedgerEntry.from_row(row), "new")
            query = sa.select(lg).where(lg.c.key == key)
            if not self.db.is_sqlite:
                query = query.with_for_update()
            entry = LedgerEntry.from_row(conn.execute(query).mappings().one())
            if entry.status == "done" and (is_result is None or is_result(entry.result_ref)):
                return Claim(entry, "done")
            if (
                entry.claimed_by is not None
                and entry.claimed_by != token
                and entry.lease_until is not None
                and entry.lease_until > now
                and not holder_is_gone(entry.claimed_by)
            ):
                return Claim(entry, "held")
            row = (
                conn.execute(
                    sa.update(lg)
                    .where(lg.c.key == key)
                    .values(claimed_by=token, lease_until=until, updated_at=now)
                    .returning(*lg.c)
                )
                .mappings()
                .one()
            )
            return Claim(LedgerEntry.from_row(row), "taken")

    def _insert_pending(self, key: str, flow: str, target_system: str, request_hash: str | None,
                        now: dt.datetime, **claim: Any) -> Any:
        """The key's new ``pending`` row (claimed when ``claim`` names its holder and lease), or
        nothing when the key has a row already; returns the inserted row."""
        lg = t.idempotency_ledger
        return (
            self.db.insert(lg)
            .values(key=key, flow=flow, target_system=target_system, request_hash=request_hash, status="pending",
                    created_at=now, updated_at=now, **claim)
            .on_conflict_do_nothing(index_elements=[lg.c.key])
            .returning(*lg.c)
        )

    def release(self, key: str, token: str) -> bool:
        """Give up ``token``'s claim on the key without completing it (the write failed in a way
        that leaves it for a later try): another writer may take it at once instead of waiting
        for the lease to run out. False when ``token`` no longer held it."""
        lg = t.idempotency_ledger
        with self.db.begin() as conn:
            res = conn.execute(
                sa.update(lg)
                .where(lg.c.key == key, lg.c.claimed_by == token)
                .values(claimed_by=None, lease_until=None, updated_at=self.db.now())
            )
        return bool(res.rowcount)

    def get(self, key: str) -> LedgerEntry | None:
        lg = t.idempotency_ledger
        with self.db.begin(write=False) as conn:
            row = conn.execute(sa.select(lg).where(lg.c.key == key)).mappings().first()
        return LedgerEntry.from_row(row) if row else None

    def complete(self, key: str, result_ref: str | None, response: Any = None) -> None:
        """The write is done (its claim, if any, ends with it)."""
        self._update(
            key,
            status="done",
            result_ref=None if result_ref is None else str(result_ref),
            response=response,
            claimed_by=None,
            lease_until=None,
        )

    def fail(self, key: str, reason: str) -> None:
        """The write was refused (its claim, if any, ends with it)."""
        self._update(key, status="failed", error=str(reason), claimed_by=None, lease_until=None)

    def drop_responses(self, keys: Iterable[str]) -> int:
        """Forget the stored answers of these writes (they name a person who asked to be erased);
        the rows stay, so the writes are still known as done. Returns how many rows had a key."""
        lg = t.idempotency_ledger
        key_list = sorted(set(keys))
        changed = 0
        with self.db.begin() as conn:
            for chunk in chunks(key_list):
                changed += conn.execute(sa.update(lg).where(lg.c.key.in_(chunk)).values(response=None)).rowcount
        return changed

    def _update(self, key: str, **values: Any) -> None:
        lg = t.idempotency_ledger
        with self.db.begin() as conn:
            res = conn.execute(sa.update(lg).where(lg.c.key == key).values(updated_at=self.db.now(), **values))
        if res.rowcount == 0:
            raise KeyError(f"idempotency key {key!r} not in the ledger; call ledger_begin first")
