"""Event-driven runs (issue 21): a run started by an inbox Asset event syncs the records the inbox
names, read again from the source's API (the event is a hint, never the truth).

One run consumes every open inbox row of its entity (pending or claimed: rows that arrived after
the trigger fired ride along), each named record once however many events named it, through the
flow's one writing path (``orders.sync_batch``: quality gate, ledger, exactly once). The rows are
marked done only after the batch: a run that fails leaves them open for the next run (and the
trigger fires them again after ``ERPSYNC_INBOX_RECLAIM_SECONDS``). The cursor is left alone: it
belongs to the cron sweep, which reads by cursor and catches every event that never came.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from erpsync import inbox
from erpsync.flows import inventory, orders
from erpsync.flows.base import FlowContext, RunSummary

#: inbox rows one run consumes at most (the rest go to the next run)
MAX_ROWS = 5_000


def named_records(rows: list[inbox.InboxRow]) -> list[str]:
    """The record ids the rows name, each once, oldest event first."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.setdefault(row.record_id, None)
    return list(seen)


def orders_from_inbox(ctx: FlowContext) -> RunSummary:
    """Sync the storefront orders named by the open ``order`` rows of the inbox."""
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    rows = inbox.open_rows(ctx.store, "order", limit=MAX_ROWS)
    ids = named_records(rows)
    ctx.log.info("%s: %d inbox event(s) name %d order(s)", ctx.flow, len(rows), len(ids))
    state = orders.run_state(ctx)

    def read() -> Iterator[dict[str, Any]]:
        for oid in ids:
            raw = ctx.storefront.get_order(oid)
            if raw is None:  # an event naming an order the store does not have: counted, logged
                ctx.log.warning("%s: order %s named by a webhook is not in the store", ctx.flow, oid)
                summary.read += 1
                summary.skip("event_names_no_order")
                continue
            yield raw

    orders.sync_batch(ctx, read(), summary, state)
    inbox.mark_done(ctx.store, [r.id for r in rows], ctx.run_id)
    return summary


def stock_from_inbox(ctx: FlowContext) -> RunSummary:
    """The event-driven inventory fast lane: one pass over the hot SKUs fed by the ERP items the
    open ``stock`` rows name (``stock.changed``), their stock read again from the ERP
    (``inventory.run_fast_lane_for``); items feeding no hot SKU are left to inventory_sync."""
    rows = inbox.open_rows(ctx.store, "stock", limit=MAX_ROWS)
    codes = named_records(rows)
    ctx.log.info("%s: %d inbox event(s) name %d ERP item(s)", ctx.flow, len(rows), len(codes))
    summary = inventory.run_fast_lane_for(ctx, codes)
    inbox.mark_done(ctx.store, [r.id for r in rows], ctx.run_id)
    return summary


def since_cursor_for(entity: str, run: Callable[[FlowContext], RunSummary]) -> Callable[[FlowContext], RunSummary]:
    """A flow whose source has no read-by-id here (ERP shipments, store returns, ERP prices) or
    that works an open queue (erasure requests): an event run reads everything changed since the
    flow's cursor, as a manual run does (the named records changed after it; a queue is read
    whole), then marks the entity's rows done that were open when it started."""

    def event_run(ctx: FlowContext) -> RunSummary:
        rows = inbox.open_rows(ctx.store, entity, limit=MAX_ROWS)
        ctx.log.info("%s: %d inbox event(s) name %d %s record(s); reading since the cursor", ctx.flow,
                     len(rows), len(named_records(rows)), entity)
        ctx.interval_start = ctx.interval_end = None  # everything since the cursor
        summary = run(ctx)
        inbox.mark_done(ctx.store, [r.id for r in rows], ctx.run_id)
        return summary

    return event_run
