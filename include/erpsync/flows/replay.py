"""Replay dead letters: run the kept payload through the same path as the flow that failed.

A replay is an ordinary sync of one record, so it keeps every guarantee of the flow: the ledger
and the lookup by key make it exactly once, a success resolves the dead letter, and a new
failure bumps the same dead letter's attempts with the new reason.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from erpsync.errors import ConfigError, MappingError, TransientError
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
        return ReplayOutcome(dl.id, dl.external_id, "would_send", preview(ctx, dl.flow, record))
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


def preview(ctx: FlowContext, flow: str, record: Any) -> str:
    """What a replay would send, from what the store already knows (no remote call): the ERP
    payload with the customer and item codes bound so far, or that the record is already there."""
    from erpsync.connectors.registry import erp_mapping

    store = ctx.store
    try:
        if flow == "orders_sync":
            done = store.ledger_get(orders.order_key(record.external_id))
            if done is not None and done.status == "done":
                return f"already in the ERP as {done.result_ref}: a replay writes nothing"
            cid = record.customer_external_id
            xref = store.get_xref("erp", "customer", cid) if cid else None
            customer_no = xref.internal_id if xref else f"<customer of {cid or 'guest'}: resolved at replay>"
            codes = store.xref_map("erp", "item", [ln.sku for ln in record.lines])
            for ln in record.lines:
                ln.item_code = codes[ln.sku].internal_id if ln.sku in codes else f"<item of {ln.sku}>"
            payload = erp_mapping(ctx.erp).order_to_erp(record, customer_no)
            return "create sales order " + json.dumps(payload, default=str, sort_keys=True)
        if flow == "customers_sync":
            xref = store.get_xref("erp", "customer", record.external_id)
            verb = f"update customer {xref.internal_id}" if xref else "create customer"
            payload = erp_mapping(ctx.erp).customer_to_erp(record)
            return f"{verb} " + json.dumps(payload, default=str, sort_keys=True)
    except Exception as exc:  # a preview never fails the dry run; say what could not be shown
        return f"mapped; preview incomplete ({type(exc).__name__}: {exc}): {record.to_dict()}"
    return json.dumps(record.to_dict(), default=str)


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters to replay: explicit ``ids``, or a filter (flow, reason substring, last
    seen in [since, until), the run that dead-lettered them). An empty filter is refused."""

    ids: tuple[int, ...] = ()
    flow: str | None = None
    reason: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    run_id: str | None = None
    status: str = "open"
    limit: int = 500

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ReplayFilter:
        """From DAG Params or CLI options (empty strings and None mean "any")."""

        def opt(key: str) -> Any:
            value = params.get(key)
            return None if value in (None, "", []) else value

        ids = opt("ids") or ()
        if isinstance(ids, str):
            ids = [x for x in ids.replace(",", " ").split() if x]
        return cls(
            ids=tuple(int(i) for i in ids),
            flow=opt("flow"),
            reason=opt("reason"),
            since=_time(opt("since")),
            until=_time(opt("until")),
            run_id=opt("run_id"),
            status=str(opt("status") or "open"),
            limit=int(opt("limit") or 500),
        )

    def describe(self) -> str:
        if self.ids:
            return "ids " + ", ".join(map(str, self.ids))
        parts = [f"{k}={v}" for k, v in (("flow", self.flow), ("reason", self.reason), ("since", self.since),
                                         ("until", self.until), ("run_id", self.run_id)) if v]
        return f"{self.status} dead letters with " + " ".join(parts) + f" (at most {self.limit})"


def _time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def select(store: Any, flt: ReplayFilter) -> list[DeadLetter]:
    """The dead letters ``flt`` names, oldest first."""
    if flt.ids:
        found = [store.get_dead_letter(i) for i in flt.ids]
        missing = [i for i, d in zip(flt.ids, found, strict=True) if d is None]
        if missing:
            raise ConfigError(f"no dead letter {', '.join(f'#{i}' for i in missing)}")
        return sorted((d for d in found if d is not None), key=lambda d: d.id)
    if not (flt.flow or flt.reason or flt.since or flt.until or flt.run_id):
        raise ConfigError("say which dead letters to replay: ids, or at least one of flow, reason, since, "
                          "until, run_id (replaying everything at once is refused)")
    rows = store.list_dead_letters(flow=flt.flow, status=None if flt.status == "all" else flt.status,
                                   reason_like=flt.reason, since=flt.since, until=flt.until,
                                   limit=flt.limit if not flt.run_id else 100_000)
    if flt.run_id:
        rows = [d for d in rows if d.correlation_id == flt.run_id][: flt.limit]
    return rows


@dataclass(slots=True)
class ReplayReport:
    dry_run: bool
    outcomes: list[ReplayOutcome] = field(default_factory=list)
    stopped: str | None = None  # a transient error stopped the replay; the rest were not touched

    def counts(self) -> Counter[str]:
        return Counter(o.result for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.stopped is None and not any(o.result in ("failed_again", "would_fail", "error")
                                                for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "counts": dict(self.counts()), "stopped": self.stopped,
                "outcomes": [[o.dead_letter_id, o.external_id, o.result, o.detail[:500]] for o in self.outcomes]}

    def render(self, *, width: int = 160) -> str:
        head = "dry run (nothing sent)" if self.dry_run else "replay"
        lines = [f"{head}: {len(self.outcomes)} dead letter(s): "
                 + (", ".join(f"{k} x{n}" for k, n in self.counts().most_common()) or "none matched")]
        for o in self.outcomes:
            text = f"  #{o.dead_letter_id} {o.external_id}: {o.result}: {o.detail}"
            lines.append(text if len(text) <= width else text[: width - 1] + "…")
        if self.stopped:
            lines.append(f"stopped: {self.stopped} (the rest were left as they are; run it again later)")
        return "\n".join(lines)


def replay_many(
    ctx_for: Callable[[str], FlowContext],
    store: Any,
    flt: ReplayFilter,
    *,
    dry_run: bool = False,
    payloads: Mapping[int, dict[str, Any]] | None = None,
) -> ReplayReport:
    """Replay (or preview, ``dry_run``) every dead letter ``flt`` selects, oldest first.

    ``ctx_for(flow)`` gives the context of each dead letter's flow; ``payloads`` maps dead letter
    ids to edited payloads. A transient error (the target is down, its circuit open) stops the
    replay: what was replayed stays replayed, the rest stay open.
    """
    report = ReplayReport(dry_run=dry_run)
    for dl in select(store, flt):
        try:
            outcome = replay(ctx_for(dl.flow), dl, payload=(payloads or {}).get(dl.id), dry_run=dry_run)
        except ConfigError as exc:
            outcome = ReplayOutcome(dl.id, dl.external_id, "error", str(exc))
        except TransientError as exc:
            report.stopped = f"#{dl.id}: {exc}"
            break
        report.outcomes.append(outcome)
    return report
