"""Replay dead letters: run the kept payload through the same path as the flow that failed.

A replay is an ordinary sync of one record, so it keeps every guarantee of the flow: the ledger
and the lookup by key make it exactly once, a success resolves the dead letter, and a new
failure bumps the same dead letter's attempts with the new reason.

Each flow that dead-letters records has a :class:`Replayer` in ``REPLAYERS`` (its own path for one
record, through its quality gate where its runs have one, and a dry-run preview of what would be
sent, from reads only), or says in ``base.NOT_REPLAYED`` why not and what to do instead
(pricing and inventory recompute from the source on the next run).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import ConfigError, MappingError, TransientError
from erpsync.flows import catalog, customers, erasure, orders, returns, shipments
from erpsync.flows.base import NOT_REPLAYED, FlowContext, RunSummary, sync_hash
from erpsync.flows.specs import SPECS
from erpsync.model import ModelError
from erpsync.rules.guests import guest_policy
from erpsync.state.records import DeadLetter


class WouldFail(Exception):
    """A dry run found that the replay would be dead-lettered again (with this reason)."""


@dataclass(frozen=True, slots=True)
class Replayer:
    """How one flow replays a dead letter: ``run(ctx, payload, summary, dl)`` syncs it through the
    flow's own path; ``preview(ctx, payload, dl)`` says what would be sent (raises MappingError,
    ModelError or WouldFail when it would fail); ``payload`` is the JSON type it takes; a flow whose
    payload is not the record (erasure keeps no personal data) is not ``editable``."""

    run: Callable[[FlowContext, Any, RunSummary, DeadLetter], None]
    preview: Callable[[FlowContext, Any, DeadLetter], str]
    payload: type = dict
    editable: bool = True


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


# --------------------------------------------------------------------------- customers, orders


def _replay_customer(ctx: FlowContext, payload: dict[str, Any], summary: RunSummary, dl: DeadLetter) -> None:
    """Through the customer quality gate, as in a run, then ``sync_one``."""
    mapper = storefront_mapping(ctx.storefront).customer_from_storefront
    for raw in ctx.gate(customers.ENTITY, [payload], summary, mapper=mapper):
        customers.sync_one(ctx, raw, summary)


def _preview_customer(ctx: FlowContext, payload: dict[str, Any], dl: DeadLetter) -> str:
    customer = storefront_mapping(ctx.storefront).customer_from_storefront(payload)
    _would_pass(customers.ENTITY, customer)
    return preview(ctx, customers.FLOW, customer)


def _replay_order(ctx: FlowContext, payload: dict[str, Any], summary: RunSummary, dl: DeadLetter) -> None:
    """Through the order quality gate, as in a run, then ``sync_one``."""
    mapper = storefront_mapping(ctx.storefront).order_from_storefront
    state = orders._RunState(policy=guest_policy(ctx.params))
    for raw in ctx.gate(orders.ENTITY, [payload], summary, mapper=mapper):
        orders.sync_one(ctx, raw, summary, state)


def _preview_order(ctx: FlowContext, payload: dict[str, Any], dl: DeadLetter) -> str:
    """Honest: the gate, the order's disposition, its totals, the guest policy and every line's
    item (cross-reference, else the ERP looked up by SKU, read only) are checked as a replay would."""
    from erpsync.rules.guests import GuestPolicy
    from erpsync.rules.orders import Disposition, check_totals, disposition

    order = storefront_mapping(ctx.storefront).order_from_storefront(payload)
    _would_pass(orders.ENTITY, order)
    store = ctx.store
    done = store.ledger_get(orders.order_key(order.external_id))
    xref = store.get_xref(orders.SYSTEM, "sales_order", order.external_id)
    synced = xref is not None or (done is not None and done.status == "done")
    what = disposition(order, synced=synced)
    if what is Disposition.NEEDS_MANUAL_CANCEL:
        raise WouldFail(f"needs_manual_cancel: cancelled {payload.get('cancelled_at')} after sync")
    if what is not Disposition.SYNC:
        return f"{what.value}: a replay writes nothing"
    totals = check_totals(order)
    if not totals.ok:
        raise WouldFail(totals.reason)
    if (order.is_guest or not order.customer_external_id) and guest_policy(ctx.params) is GuestPolicy.HOLD:
        raise WouldFail("guest_held: guest checkout waits for a decision (guest_policy=hold)")
    codes = {sku: x.internal_id for sku, x in store.xref_map(orders.SYSTEM, "item", [ln.sku for ln in order.lines]).items()}
    unknown: list[str] = []
    for sku in dict.fromkeys(ln.sku for ln in order.lines):
        if sku in codes:
            continue
        item = ctx.erp.find_item_by_sku(sku)  # a read: the replay binds it, the preview does not
        code = erp_mapping(ctx.erp).item_code(item) if item is not None else None
        if code:
            codes[sku] = str(code)
        else:
            unknown.append(sku)
    if unknown:
        raise WouldFail(f"unknown_sku: {', '.join(unknown)} (bind each SKU to its ERP item, then replay)")
    for ln in order.lines:
        ln.item_code = codes[ln.sku]
    return preview(ctx, orders.FLOW, order)


def _would_pass(entity: str, record: Any) -> None:
    """Raise WouldFail with the gate's reason when ``record`` fails its entity's suite."""
    from erpsync.quality.gate import verdict

    reason = verdict(entity, record)
    if reason is not None:
        raise WouldFail(f"quality gate: {reason}")


# --------------------------------------------------------------------------- catalog


def _replay_product(ctx: FlowContext, items: list[Any], summary: RunSummary, dl: DeadLetter) -> None:
    """The product's ERP items (its variants) through the quality gate and ``sync_product``."""
    catalog.sync_batch(ctx, items, summary, state=catalog.run_state(ctx))


def _preview_product(ctx: FlowContext, items: list[Any], dl: DeadLetter) -> str:
    state = catalog.run_state(ctx)
    for raw in items:
        ref = state.erp_map.catalog_item(raw)
        if ref.code and ref.sku:
            state.skus[ref.code] = ref.sku
    product = state.erp_map.product_from_erp(items, state.sku_of)
    xref = ctx.store.get_xref(catalog.SYSTEM, catalog.ENTITY, product.code)
    if xref is not None and xref.content_hash == sync_hash(product):
        return f"unchanged since it was written as product {xref.internal_id}: a replay writes nothing"
    verb = f"update product {xref.internal_id}" if xref is not None else "create product (its first price checked " \
        "by the price guard at replay)"
    return f"{verb} " + _dumps(state.sf_map.product_to_storefront(product))


# --------------------------------------------------------------------------- shipments


def _replay_shipment(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary, dl: DeadLetter) -> None:
    shipments.sync_batch(ctx, [raw], summary)


def _preview_shipment(ctx: FlowContext, raw: dict[str, Any], dl: DeadLetter) -> str:
    shipment, keys = shipments.package_keys(ctx, raw)
    sf_map = storefront_mapping(ctx.storefront)
    notify = bool(ctx.params.get("notify_customer", True))
    todo = []
    for package, key in zip(shipment.packages, keys, strict=True):
        done = ctx.store.ledger_get(key)
        if done is None or done.status != "done":
            todo.append(sf_map.fulfillment_to_storefront(package, notify=notify))
    if not todo:
        return "every shipped package is in the store already: a replay writes nothing"
    return f"add {len(todo)} fulfillment(s) to store order {shipment.order_external_id}: " + _dumps(todo)


# --------------------------------------------------------------------------- returns


def _rma_no(ctx: FlowContext, raw: dict[str, Any]) -> str | None:
    """The ERP RMA number when ``raw`` is the ERP's RMA (the ERP -> store half), else None."""
    try:
        no = erp_mapping(ctx.erp).rma_no(raw)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not no or no == "?":
        return None
    return no if ctx.store.get_xref_by_internal("erp", "return", no) is not None else None


def _replay_return(ctx: FlowContext, raw: dict[str, Any], summary: RunSummary, dl: DeadLetter) -> None:
    """A store return opens its RMA (``open_returns``); an ERP RMA brings its status, credit memo
    and refund back (``credit_back``); both through the quality gate, as in a run."""
    if _rma_no(ctx, raw) is None:
        returns.open_returns(ctx, [raw], summary)
        return
    checks: list[dict[str, Any]] = []
    returns.credit_back(ctx, [raw], summary, returns.refund_source(ctx), checks)
    bad = [c for c in checks if not c["ok"]]
    if checks:
        ctx.store.add_drift_report(ctx.flow, ctx.run_id or "replay",
                                   {"checked": len(checks), "mismatches": len(bad), "replay": dl.id}, checks)


def _preview_return(ctx: FlowContext, raw: dict[str, Any], dl: DeadLetter) -> str:
    erp_map, sf_map = erp_mapping(ctx.erp), storefront_mapping(ctx.storefront)
    store = ctx.store
    rma_no = _rma_no(ctx, raw)
    if rma_no is None:
        ret = sf_map.return_from_storefront(raw)
        if ret.status != "requested":
            return f"store return {ret.rma} is {ret.status}: a replay opens nothing"
        known = store.get_xref("erp", "return", ret.rma)
        if known is not None:
            return f"already in the ERP as {known.internal_id}: a replay writes nothing"
        so = store.get_xref("erp", "sales_order", ret.order_external_id)
        if so is None:
            raise WouldFail(f"order_not_synced: {ret.order_external_id} is not in the ERP yet")
        items = store.xref_map("erp", "item", [ln.sku for ln in ret.lines])
        payload = erp_map.return_to_erp(
            ret, so.internal_id, lambda sku: items[sku].internal_id if sku in items else f"<item of {sku}>")
        return "create ERP return " + _dumps(payload)

    def sku_of(code: str) -> str | None:
        x = store.get_xref_by_internal("erp", "item", code)
        return x.external_id if x is not None else None

    credited = erp_map.return_from_erp(raw, sku_of)
    bound = store.get_xref_by_internal("erp", "return", rma_no)
    if bound is None:  # unbound since the dead letter was read (``_rma_no`` found it bound)
        raise WouldFail(f"not_from_store: RMA {rma_no} is bound to no store return")
    rid = bound.external_id
    if credited.status == "rejected":
        return f"reject store return {rid}: " + _dumps(sf_map.return_update_to_storefront("rejected"))
    if credited.status != "credited" or not credited.credit_memo_id:
        return f"RMA {rma_no} is {credited.status}: nothing goes back to the store yet"
    done = store.ledger_get(f"refund:{rid}:{credited.credit_memo_id}")
    if done is not None and done.status == "done":
        return f"store return {rid} is refunded for credit memo {credited.credit_memo_id}: a replay writes nothing"
    amount = credited.credit_memo_amount if returns.refund_source(ctx) == "credit_memo" else None
    return (f"credit store return {rid} and refund it: "
            + _dumps(sf_map.refund_to_storefront(credited, amount)))


# --------------------------------------------------------------------------- erasure


def _pending_request(ctx: FlowContext, rid: str) -> dict[str, Any] | None:
    """The request as the store has it now: its dead letter keeps no personal data (no e-mail)."""
    as_request = storefront_mapping(ctx.storefront).erasure_request
    for raw in map(as_request, ctx.storefront.list_erasure_requests(status="pending")):
        if str(raw.get("id")) == rid:
            return raw
    return None


def _replay_erasure(ctx: FlowContext, payload: dict[str, Any], summary: RunSummary, dl: DeadLetter) -> None:
    raw = _pending_request(ctx, dl.external_id)
    if raw is None:
        summary.skip("no_longer_pending")
        return
    erasure.erase_request(ctx, raw, summary)


def _preview_erasure(ctx: FlowContext, payload: dict[str, Any], dl: DeadLetter) -> str:
    raw = _pending_request(ctx, dl.external_id)
    if raw is None:
        return f"request {dl.external_id} is no longer pending in the store: a replay does nothing"
    try:
        _bound, numbers = erasure.bound_customers(ctx, raw)
    except erasure.NeedsReview as exc:
        raise WouldFail(f"erasure_needs_review: {exc}") from None
    who = f"anonymise ERP customer(s) {', '.join(numbers)}" if numbers else "no ERP customer is bound"
    return f"{who}, forget erpsync's copies of the person, close request {dl.external_id} in the store"


#: entity -> how one of its dead letters is replayed
_BY_ENTITY: dict[str, Replayer] = {
    "customer": Replayer(_replay_customer, _preview_customer),
    "order": Replayer(_replay_order, _preview_order),
    "product": Replayer(_replay_product, _preview_product, payload=list),
    "shipment": Replayer(_replay_shipment, _preview_shipment),
    "return": Replayer(_replay_return, _preview_return),
    "erasure_request": Replayer(_replay_erasure, _preview_erasure, editable=False),
}


def _replayers() -> dict[str, Replayer]:
    out: dict[str, Replayer] = {}
    for name, spec in SPECS.items():
        if spec.replay != "records":
            continue
        if spec.entity not in _BY_ENTITY:
            raise ConfigError(f"{name}: its spec says replay='records' but no replayer handles {spec.entity!r} "
                              "(add one to erpsync.flows.replay._BY_ENTITY)")
        out[name] = _BY_ENTITY[spec.entity]
    return out


#: flow -> its replayer: the flows whose ``FlowSpec.replay`` is ``records`` (``erpsync.flows.specs``;
#: flows in ``base.NOT_REPLAYED`` say what to do instead)
REPLAYERS: dict[str, Replayer] = _replayers()


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    dead_letter_id: int
    external_id: str
    result: str  # resolved | failed_again | skipped | would_send | would_fail
    detail: str


def replay(
    ctx: FlowContext, dl: DeadLetter, *, payload: Any = None, dry_run: bool = False
) -> ReplayOutcome:
    """Replay one dead letter (optionally with an edited ``payload``); ``dry_run`` only previews it."""
    replayer = REPLAYERS.get(dl.flow)
    if dl.entity == "capability":  # erpsync.connectors.capabilities.say_unsupported: no record to resend
        raise ConfigError(f"dead letter #{dl.id}: {dl.flow}'s connector lacks {dl.external_id.partition(':')[2]} "
                          "(capability matrix, `erpsync connectors list`): nothing to replay; use a connector "
                          "that has it, switch the flow off, or ignore the dead letter")
    if replayer is None:
        if dl.flow in NOT_REPLAYED:
            raise ConfigError(f"dead letter #{dl.id}: {dl.flow} records are not replayed one by one: "
                              f"{NOT_REPLAYED[dl.flow]}")
        raise ConfigError(f"dead letter #{dl.id}: flow {dl.flow!r} has no replayer (known: {', '.join(REPLAYERS)})")
    if payload is not None and not replayer.editable:
        raise ConfigError(f"dead letter #{dl.id}: {dl.flow} re-reads the record from its source (the dead letter "
                          "keeps no personal data), so its payload cannot be edited: change it at the source")
    body = payload if payload is not None else dl.payload
    if not isinstance(body, replayer.payload):
        kind = "array" if replayer.payload is list else "object"
        raise ConfigError(f"dead letter #{dl.id}: payload is not a JSON {kind}")
    if dry_run:
        try:
            return ReplayOutcome(dl.id, dl.external_id, "would_send", replayer.preview(ctx, body, dl))
        except (MappingError, ModelError, WouldFail) as exc:
            return ReplayOutcome(dl.id, dl.external_id, "would_fail", str(exc))
    if dl.status != "open":
        ctx.store.set_dead_letter_status([dl.id], "open")
    summary = RunSummary(flow=dl.flow, run_id=ctx.run_id)
    replayer.run(ctx, body, summary, dl)
    after = ctx.store.get_dead_letter(dl.id)
    if summary.done:
        if after is not None and after.status == "open":
            ctx.store.set_dead_letter_status([dl.id], "resolved")
        how = ", ".join(r for r in summary.reasons if summary.reasons[r]) if summary.reasons else ""
        return ReplayOutcome(dl.id, dl.external_id, "resolved", "written to the target" + (f" ({how})" if how else ""))
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
                ln.item_code = (codes[ln.sku].internal_id if ln.sku in codes
                                else getattr(ln, "item_code", None) or f"<item of {ln.sku}>")
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
        try:
            id_list = tuple(int(i) for i in ids)
        except (TypeError, ValueError):
            raise ConfigError(f"ids={ids!r}: dead letter ids are whole numbers, e.g. [12, 13]") from None
        if id_list:  # the ids say it all: the filter fields are not read (nor parsed)
            return cls(ids=id_list, status=str(opt("status") or "open"))
        return cls(
            flow=opt("flow"),
            reason=opt("reason"),
            since=_time(opt("since"), "since"),
            until=_time(opt("until"), "until"),
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


def _time(value: Any, name: str = "time") -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an ISO 8601 time, e.g. 2026-12-07T13:00:00Z (UTC)") from None
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

    def failures(self) -> list[ReplayOutcome]:
        """The dead letters a (real) replay did not resolve: failed again or refused."""
        return [o for o in self.outcomes if o.result in ("failed_again", "error")]

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
