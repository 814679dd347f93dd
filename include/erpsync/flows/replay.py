"""Replay dead letters: run the kept payload through the same path as the flow that failed.

A replay is an ordinary sync of one record, so it keeps every guarantee of the flow: the ledger
and the lookup by key make it exactly once, a success resolves the dead letter, and a new
failure bumps the same dead letter's attempts with the new reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from erpsync.errors import ConfigError, MappingError
from erpsync.flows import customers, orders
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.mappings.storefront_sandbox import customer_from_storefront, order_from_storefront
from erpsync.rules.guests import guest_policy
from erpsync.state.records import DeadLetter


def _replay_customer(ctx: FlowContext, payload: dict[str, Any], summary: RunSummary) -> None:
    customers.sync_one(ctx, payload, summary)


def _replay_order(ctx: FlowContext, payload: dict[str, Any], summary: RunSummary) -> None:
    orders.sync_one(ctx, payload, summary, orders._RunState(policy=guest_policy(ctx.params)))


#: flow -> (replay one payload, map it without writing for a dry run)
REPLAYERS: dict[str, tuple[Callable[..., None], Callable[[dict[str, Any]], Any]]] = {
    "customers_sync": (_replay_customer, customer_from_storefront),
    "orders_sync": (_replay_order, order_from_storefront),
}


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    dead_letter_id: int
    external_id: str
    result: str  # resolved | failed_again | skipped | would_send | would_fail
    detail: str


def replay(
    ctx: FlowContext, dl: DeadLetter, *, payload: dict[str, Any] | None = None, dry_run: bool = False
) -> ReplayOutcome:
    """Replay one dead letter (optionally with an edited ``payload``); ``dry_run`` only maps it."""
    if dl.flow not in REPLAYERS:
        raise ConfigError(f"dead letter #{dl.id}: flow {dl.flow!r} has no replayer (known: {', '.join(REPLAYERS)})")
    run_one, map_only = REPLAYERS[dl.flow]
    body = payload if payload is not None else dl.payload
    if not isinstance(body, dict):
        raise ConfigError(f"dead letter #{dl.id}: payload is not a JSON object")
    if dry_run:
        try:
            record = map_only(body)
        except MappingError as exc:
            return ReplayOutcome(dl.id, dl.external_id, "would_fail", str(exc))
        return ReplayOutcome(dl.id, dl.external_id, "would_send", str(record.to_dict()))
    if dl.status != "open":
        ctx.store.set_dead_letter_status([dl.id], "open")
    summary = RunSummary(flow=dl.flow, run_id=ctx.run_id)
    run_one(ctx, body, summary)
    after = ctx.store.get_dead_letter(dl.id)
    if summary.done:
        if after is not None and after.status == "open":
            ctx.store.set_dead_letter_status([dl.id], "resolved")
        return ReplayOutcome(dl.id, dl.external_id, "resolved", "written to the target")
    if summary.dead_letters:
        return ReplayOutcome(dl.id, dl.external_id, "failed_again", summary.dead_letters[-1][2])
    reason = ", ".join(summary.reasons) if getattr(summary, "reasons", None) else "nothing to write"
    ctx.store.set_dead_letter_status([dl.id], "replayed")
    return ReplayOutcome(dl.id, dl.external_id, "skipped", reason)
