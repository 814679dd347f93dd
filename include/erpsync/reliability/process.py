"""The batch loop every flow shares: drain the outbox first, then sync new records one by one,
keeping in the outbox whatever cannot reach its system now.

* A record whose call fails transiently (after the HTTP client's retries) or meets an open
  circuit goes to the outbox, and the batch goes on; once the circuit is open, the rest of the
  batch is queued without calling the system at all.
* Records are drained oldest first, before anything new is read, and a record whose earlier
  version is still queued queues behind it: the order of versions of one record is kept.
* Anything unexpected while syncing one record (a bug, a value no rule foresaw) dead-letters that
  record with the error as its reason; the batch never dies on one bad record.
* At the end, if records were queued but the circuit is closed (a blip, a 429 storm), the run
  raises ``TransientError`` so the scheduler retries soon; with the circuit open the run ends
  normally (the outbox holds the work, the breaker e-mail has gone out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from erpsync.errors import AuthError, TransientError
from erpsync.reliability import budget
from erpsync.reliability.breaker import BreakerConfig, BreakerGuard, CircuitBreaker, CircuitOpenError
from erpsync.reliability.notify import LogNotifier, Notifier, render_breaker_email
from erpsync.reliability.outbox import Outbox, outbox_counts
from erpsync.reliability.versions import Versions, version_of

if TYPE_CHECKING:
    from erpsync.runctx import RunContext as FlowContext
    from erpsync.runctx import RunSummary

log = logging.getLogger(__name__)

DRAIN_BATCH = 200
#: longest string a record may carry (param ``max_field_length``); longer ones are dead-lettered
MAX_FIELD_LENGTH = 10_000


def _oversized(value: Any, limit: int, path: str = "") -> str | None:
    """The first string longer than ``limit`` (a garbage or hostile record), as ``path (n chars)``."""
    if isinstance(value, str):
        return f"{path or 'value'} ({len(value)} chars, limit {limit})" if len(value) > limit else None
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        found = _oversized(v, limit, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def _clip(value: Any, keep: int = 1000) -> Any:
    """The record with over-long strings cut (the dead letter keeps the shape, not the megabytes)."""
    if isinstance(value, str):
        return value if len(value) <= keep else value[:keep] + f"...[{len(value) - keep} more chars]"
    if isinstance(value, dict):
        return {k: _clip(v, keep) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v, keep) for v in value]
    return value


def record_id(raw: Any) -> str:
    if isinstance(raw, dict):
        return str(raw.get("id") or raw.get("external_id") or "?")
    return "?"


def version_key(raw: Any) -> str:
    """One outbox row per (record, content): the same version read twice is queued once."""
    from erpsync.runctx import payload_hash

    return f"{record_id(raw)}@{payload_hash(raw)[:24]}"


def breaker_for(ctx: FlowContext, system: str) -> CircuitBreaker | None:
    adapter = ctx.erp if system == "erp" else ctx.storefront if system == "storefront" else None
    guard = getattr(getattr(adapter, "http", None), "guard", None)
    return guard.breaker if isinstance(guard, BreakerGuard) else None


def protect(ctx: FlowContext) -> None:
    """Give every HTTP-backed adapter of ``ctx`` the shared breaker of its system (idempotent).

    Settings: DAG params or connection extras ``breaker_threshold`` (5),
    ``breaker_cooldown_seconds`` (60), ``breaker_probe_lease_seconds`` (120); param
    ``breaker_cache_seconds`` (1.0: how long a worker trusts a clean closed state it read); rate
    budget: the Connection's ``rps`` (shared by every process through the store), capped further
    by params ``<system>_rps`` and ``<system>_pool_slots`` (``erpsync.reliability.budget``).
    """
    for system, adapter in (("erp", ctx.erp), ("storefront", ctx.storefront)):
        http = getattr(adapter, "http", None)
        if http is None or not hasattr(http, "guard"):
            continue
        current = http.guard
        if isinstance(current, BreakerGuard) and current.breaker.store is ctx.store:
            continue
        config = BreakerConfig.from_settings(ctx.params, getattr(adapter, "limits", None) or {})
        notifier: Notifier = getattr(ctx, "notifier", None) or LogNotifier(ctx.log)
        breaker = CircuitBreaker(ctx.store, system, config, on_event=_emailer(ctx, notifier))
        http.guard = BreakerGuard(breaker, cache_seconds=float(ctx.params.get("breaker_cache_seconds", 1.0)))
        budget.install(adapter, system, ctx.params, ctx.store)


def _emailer(ctx: FlowContext, notifier: Notifier) -> Callable[[str, Any], None]:
    def send(event: str, state: Any) -> None:
        try:
            queued: int | None = sum(n for (_f, s), n in outbox_counts(ctx.store).items() if s != "done")
        except Exception:
            queued = None
        notifier.send(*render_breaker_email(event, state, queued=queued))

    return send


def sync_records(
    ctx: FlowContext,
    summary: RunSummary,
    records: Iterable[Any],
    handle: Callable[[Any], None],
    *,
    entity: str,
    system: str = "erp",
    on_record: Callable[[Any], None] | None = None,
    key: Callable[[Any], str] | None = None,
    owns: Callable[[Any], bool] | None = None,
) -> None:
    """Drain ``ctx.flow``'s outbox, then ``handle`` each of ``records`` (see the module docstring).
    ``key`` gives a record's id (default ``record_id``: its ``id``), the one its outbox row, version
    and dead letters are filed under (orders: the store's order code, as its ledger and binding).
    ``owns``: for one partition of a partitioned run (``flows.orders.Partition``), whether a queued
    record is this partition's; the others' rows are left in the outbox for their own partition."""
    run = _Run(ctx, summary, handle, entity, system)
    if key is not None:
        run.record_id = key
    run.owns = owns
    run.drain()
    for raw in records:
        if on_record is not None:
            on_record(raw)
        rid = run.record_id(raw)
        if run.blocked or rid in run.waiting:
            run.queue(raw, None)
            continue
        try:
            run.handle_one(entity, raw)
        except TransientError as exc:
            run.queue(raw, exc)
            run.blocked = isinstance(exc, CircuitOpenError)
            run.last_error = exc
    if summary.queued or run.waiting:
        breaker = breaker_for(ctx, system)
        state = breaker.state().state if breaker is not None else "closed"
        note = f"{len(run.waiting)} record(s) wait in the outbox for the {system}"
        if state == "closed":
            ctx.log.warning("%s: %s after transient errors; failing the run so a retry drains them first",
                            ctx.flow, note)
            raise run.last_error or TransientError(f"{ctx.flow}: {note}; a retry drains them first", system=system)
        ctx.log.warning("%s: %s (circuit %s); they go first once it recovers", ctx.flow, note, state)


class _Run:
    """State of one batch: the outbox, which records wait in it, whether the circuit is open."""

    def __init__(self, ctx: FlowContext, summary: RunSummary, handle: Callable[[Any], None], entity: str,
                 system: str) -> None:
        self.ctx, self.summary, self.handle, self.entity, self.system = ctx, summary, handle, entity, system
        self.outbox = Outbox(ctx.store, ctx.flow)
        self.versions = Versions(ctx.store, ctx.flow)
        self.worker = f"{ctx.flow}:{ctx.run_id or 'adhoc'}"
        self.waiting: set[str] = set()  # record ids with a version in the outbox: later versions queue behind
        self.blocked = False  # the circuit is open: queue everything without calling
        self.last_error: TransientError | None = None
        self.record_id: Callable[[Any], str] = record_id
        self.owns: Callable[[Any], bool] | None = None  # None: every queued record is this run's

    def drain(self) -> None:
        """Sync queued records oldest first. A record that fails transiently stays queued (and so do
        its later versions); an open circuit stops the drain and blocks the batch."""
        if not self.outbox.pending():
            return
        drained, after = 0, 0
        while not self.blocked:
            items = self.outbox.claim(self.worker, limit=DRAIN_BATCH, after_id=after)
            if not items:
                break
            after = items[-1].id
            for n, item in enumerate(items):
                if item.external_id in self.waiting or not self._owned(item):
                    self.outbox.release([item.id])
                    continue
                try:
                    self.handle_one(item.entity or self.entity, item.payload)
                except CircuitOpenError as exc:
                    self.outbox.release([i.id for i in items[n:]], error=str(exc))
                    self.blocked, self.last_error = True, exc
                    break
                except TransientError as exc:
                    self.outbox.release([item.id], error=str(exc))
                    self.waiting.add(item.external_id)
                    self.last_error = exc
                    continue
                self.outbox.done(item.id)
                drained += 1
        # rows claimed by another worker right now also hold their records back
        for status in ("queued", "claimed"):
            self.waiting |= {i.external_id for i in self.outbox.items(status=status, limit=100_000) if self._owned(i)}
        if drained:
            self.ctx.log.info("%s: drained %d record(s) from the outbox, oldest first", self.ctx.flow, drained)
            self.summary.drained += drained

    def _owned(self, item: Any) -> bool:
        return self.owns is None or self.owns(item.payload)

    def handle_one(self, entity: str, raw: Any) -> None:
        """One record: skip a version older than one already handled; dead-letter the unexpected."""
        from erpsync.runctx import dead_letter

        rid = self.record_id(raw)
        too_long = _oversized(raw, int(self.ctx.params.get("max_field_length", MAX_FIELD_LENGTH)))
        if too_long:
            dead_letter(self.ctx, self.summary, entity, rid, _clip(raw), f"field_too_long: {too_long}",
                        error_kind="validation")
            return
        version = version_of(raw)
        if self.versions.is_stale(rid, version):
            self.summary.skip("stale_version")
            return
        try:
            self.handle(raw)
        except (TransientError, AuthError):  # not this record's fault: the run stops or retries
            raise
        except Exception as exc:  # one bad record must not stop the batch: keep it with the error
            self.ctx.log.exception("%s: unexpected error on %s %s", self.ctx.flow, entity, rid)
            dead_letter(self.ctx, self.summary, entity, rid, raw, f"unexpected_error: {type(exc).__name__}: {exc}",
                        error_kind="unexpected")
        self.versions.seen(rid, version)

    def queue(self, raw: Any, exc: Exception | None) -> None:
        rid = self.record_id(raw)
        self.outbox.put(self.system, self.entity, rid, raw, version_key(raw))
        self.waiting.add(rid)
        self.summary.queued += 1
        if exc is not None:
            self.ctx.log.warning("%s %s kept in the outbox: %s", self.entity, rid, exc)


def is_stale(ctx: FlowContext, raw: Any) -> bool:
    """True when a newer version of ``raw`` was already handled by ``ctx.flow``: for code that
    starts a record's work ahead of the batch loop (``flows/concurrent.py``), which must not write
    a version the loop would skip."""
    return Versions(ctx.store, ctx.flow).is_stale(record_id(raw), version_of(raw))
