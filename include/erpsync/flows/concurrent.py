"""Concurrent writes that keep the sequential semantics of a flow's batch loop.

A flow's batch loop (``sync_records``: outbox first, one ``handle(raw)`` per record, a transient
failure queues *that* record) stays exactly as it is. ``LookAhead`` runs the work of the next
``window`` records on a bounded thread pool while the loop is still at an earlier one, and the
loop's ``handle(raw)`` only waits for that record's result: its outcome (done, skipped,
quarantined, or the transient error that the loop turns into an outbox entry) is merged into the
run summary in the loop's thread, in the order of the records.

Two records that share a *lane* (the same customer, hence also the same order) never run at the
same time: each waits for the one before it in its lane, so "customers before orders" and "one
order never written twice" hold as in a sequential run. Records of different lanes may reach the
target out of order; the ledger and the look-up by key make a speculative write that the loop
later queues (an open circuit) harmless: the drain finds it done.

Each worker thread gets its own copy of the context with its own adapter session (``fork()`` of
the adapter when it has one).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from erpsync.flows.base import FlowContext, RunSummary


def fork_adapter(adapter: Any) -> Any:
    fork = getattr(adapter, "fork", None)
    return fork() if callable(fork) else adapter


def merge(into: RunSummary, part: RunSummary) -> None:
    into.done += part.done
    into.failed += part.failed
    into.quarantined += part.quarantined
    into.skipped += part.skipped
    into.dead_letters.extend(part.dead_letters)
    into.reasons.update(part.reasons)
    into.latencies_s.extend(part.latencies_s)


class LookAhead:
    """``records`` in, the same records out, each one's work already started on the pool.

    Use as::

        with LookAhead(ctx, work, lane_of, workers=8) as la:
            sync_records(ctx, summary, la.feed(records), la.handle(summary), ...)

    ``work(worker_ctx, raw, part_summary)`` does one record (it may raise TransientError);
    ``lane_of(raw)`` names the lane that serialises dependent records.
    """

    def __init__(
        self,
        ctx: FlowContext,
        work: Callable[[FlowContext, Any, RunSummary], None],
        lane_of: Callable[[Any], str],
        *,
        workers: int,
        window: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.work = work
        self.lane_of = lane_of
        self.workers = max(1, workers)
        self.window = window or self.workers * 4
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"{ctx.flow}-w")
        self._local = threading.local()
        self._contexts: list[FlowContext] = []
        self._lock = threading.Lock()
        self._lanes: dict[str, Future[RunSummary]] = {}
        self._pending: deque[tuple[int, Future[RunSummary]]] = deque()

    # ------------------------------------------------------------------ worker side
    def _worker_ctx(self) -> FlowContext:
        wctx = getattr(self._local, "ctx", None)
        if wctx is None:
            ctx = self.ctx
            # built again (not dataclasses.replace): the forked adapters get their breakers and throttles
            wctx = ctx.derive(erp=fork_adapter(ctx.erp), storefront=fork_adapter(ctx.storefront))
            self._local.ctx = wctx
            with self._lock:
                self._contexts.append(wctx)
        return wctx

    def _run(self, raw: Any, before: Future[RunSummary] | None) -> RunSummary:
        if before is not None:
            try:
                before.result()
            except Exception:  # the earlier record's failure is its own; this one still runs
                pass
        part = RunSummary(flow=self.ctx.flow, run_id=self.ctx.run_id)
        self.work(self._worker_ctx(), raw, part)
        return part

    # ------------------------------------------------------------------ loop side
    def feed(self, records: Iterable[Any]) -> Iterator[Any]:
        """Yield ``records`` in order, keeping up to ``window`` of them started ahead."""
        ahead: deque[Any] = deque()
        it = iter(records)
        exhausted = False
        while True:
            while not exhausted and len(ahead) < self.window:
                try:
                    raw = next(it)
                except StopIteration:
                    exhausted = True
                    break
                self._submit(raw)
                ahead.append(raw)
            if not ahead:
                return
            yield ahead.popleft()

    def _submit(self, raw: Any) -> None:
        lane = self.lane_of(raw)
        before = self._lanes.get(lane)
        fut = self._pool.submit(self._run, raw, before)
        self._lanes[lane] = fut
        self._pending.append((id(raw), fut))

    def handle(self, summary: RunSummary) -> Callable[[Any], None]:
        """The loop's per-record call: wait for this record's result and merge it."""

        def one(raw: Any) -> None:
            fut = self._take(raw)
            if fut is None:  # not fed through us (the outbox drain): run it here, in order
                part = RunSummary(flow=self.ctx.flow, run_id=self.ctx.run_id)
                self.work(self.ctx, raw, part)
                merge(summary, part)
                return
            merge(summary, fut.result())  # re-raises the record's TransientError for the loop

        return one

    def _take(self, raw: Any) -> Future[RunSummary] | None:
        # the loop handles records in feed order; older ones it skipped were queued, not handled
        key = id(raw)
        if not any(k == key for k, _ in self._pending):
            return None
        while self._pending:
            k, fut = self._pending.popleft()
            if k == key:
                return fut
        return None

    def __enter__(self) -> LookAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        # records the loop queued without handling still finish (their writes are keyed)
        self._pool.shutdown(wait=True)
        for wctx in self._contexts:
            for adapter in (wctx.erp, wctx.storefront):
                if adapter is not self.ctx.erp and adapter is not self.ctx.storefront:
                    close = getattr(getattr(adapter, "http", None), "close", None)
                    if callable(close):
                        close()
