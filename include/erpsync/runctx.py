"""The run's context and counts, at the bottom of the core's layers (issue 19).

``RunContext`` (what a flow runs with), ``RunSummary`` (what it gives back), ``dead_letter`` and
``payload_hash``: the quality gate, the reliability layer and the connectors use them without
importing ``erpsync.flows`` (no cycle hidden in function bodies). ``erpsync.flows.base`` re-exports
them, and its ``FlowContext`` is a ``RunContext`` plus the quality gate (``FlowContext.for_run`` attaches the breakers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from erpsync.flows.specs import SPECS
from erpsync.limits import bounded, bounded_payload
from erpsync.state.redact import mask_text

if TYPE_CHECKING:
    from erpsync.connectors.base import ErpAdapter, StorefrontAdapter
    from erpsync.state import StateStore

REPLAY_HINT = "erpsync dead-letters replay --id {id}"
REPLAY_MANY_HINT = "erpsync dead-letters replay --ids {ids} --dry-run"
#: flows whose dead letters are not replayed one record at a time (the next run recomputes from
#: the source), with what to do instead: the task log and ``replay`` say it instead of a command
#: that could only fail. Every other flow that dead-letters has a replayer (``replay.REPLAYERS``).
#: Derived from the specs (``FlowSpec.replay == "rerun"`` and its ``not_replayed``).
NOT_REPLAYED: dict[str, str] = {name: spec.not_replayed for name, spec in SPECS.items() if spec.not_replayed}
NOT_REPLAYED_CLOSE = "once handled: erpsync dead-letters ignore {ids}"


@dataclass(slots=True)
class RunContext:
    """What a flow runs with: its name and run, the state store, the two adapters, its Params and
    log. ``erpsync.flows.base.FlowContext`` adds the quality gate (its builder ``for_run``, the
    breakers and the masked log); the layers
    below the flows (quality, reliability, connectors) see only this."""

    flow: str
    run_id: str
    store: StateStore
    erp: ErpAdapter
    storefront: StorefrontAdapter
    interval_start: dt.datetime | None = None
    interval_end: dt.datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("erpsync.flows"))
    #: "scheduled", "manual" or "backfill": a backfill reads exactly its interval and leaves the
    #: cursor alone; a scheduled run also reads back to the cursor so a gap is never skipped
    run_type: str = "scheduled"
    #: where breaker e-mails go (``send(subject, body)``); None -> the log
    notifier: Any = None
    #: paths of the quality reports (GX results) this run wrote; the task log and run metrics name them
    quality_reports: list[str] = field(default_factory=list)
    #: the summary of the running batch, set by ``gate``: a failed run's e-mail still has its counts
    summary: RunSummary | None = None


@dataclass(slots=True)
class RunSummary:
    """Counts of one run. ``read`` records read from the source, ``compared`` records checked
    against the other side (None: every record decided, ``done + skipped``), ``done`` written or
    matched, ``failed`` transient failures (the run is failed), ``quarantined`` sent to dead
    letters, ``skipped`` left alone on purpose (unchanged, unpaid, ...). ``reasons`` counts why
    records were skipped or quarantined, and ``found_by_key`` for done records that an earlier,
    interrupted try had already written. :func:`check_useful` fails a run whose counts show it
    did nothing useful where work existed."""

    flow: str = ""
    run_id: str = ""
    done: int = 0
    failed: int = 0
    quarantined: int = 0
    skipped: int = 0
    dead_letters: list[tuple[int, str, str]] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    queued: int = 0  # kept in the outbox: the target was unavailable (erpsync.reliability)
    drained: int = 0  # taken from the outbox this run (also counted as done/skipped/quarantined)
    read: int = 0  # records read from the source (the quality gate counts them; other readers set it)
    compared: int | None = None  # records checked against the other side; None: done + skipped
    #: what ``compared`` counts when it is not records (the drift check: SKU-locations), for the log
    compared_unit: str = "records"
    #: the flow applied :func:`check_useful` itself (the runtime does not apply it again)
    useful_checked: bool = False
    #: seconds from the source event to the write, per record this run wrote (orders: placed -> in
    #: the ERP); ``run_metrics.extra.latency`` keeps their histogram (``erpsync.dashboard``)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def compared_count(self) -> int:
        return self.done + self.skipped if self.compared is None else self.compared

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.reasons[reason] += 1

    def quarantine(self, dead_letter_id: int, external_id: str, reason: str) -> None:
        self.quarantined += 1
        self.dead_letters.append((dead_letter_id, external_id, reason))
        self.reasons[reason_key(reason)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow,
            "run_id": self.run_id,
            "done": self.done,
            "failed": self.failed,
            "quarantined": self.quarantined,
            "skipped": self.skipped,
            "queued": self.queued,
            "drained": self.drained,
            "dead_letters": [list(d) for d in self.dead_letters],
            "reasons": dict(self.reasons),
            "read": self.read,
            "compared": self.compared_count,
        }

    def render(self, *, top: int = 5, max_dead_letters: int = 20) -> str:
        """The short text that ends a task log: counts, top reasons, and how to replay each dead letter."""
        head = f"{self.flow or 'flow'}"
        if self.run_id:
            head += f" [{self.run_id}]"
        lines = [
            f"{head}: done={self.done} failed={self.failed} "
            f"quarantined={self.quarantined} skipped={self.skipped}"
            + (f" queued={self.queued}" if self.queued else "")
            + (f" drained={self.drained}" if self.drained else ""),
            f"read {self.read}, compared {self.compared_count}"
            + (f" {self.compared_unit}" if self.compared_unit != "records" else ""),
        ]
        if self.reasons:
            lines.append("top reasons: " + ", ".join(f"{r} x{n}" for r, n in self.reasons.most_common(top)))
        if self.dead_letters:
            lines.append("dead letters:")
            instead = NOT_REPLAYED.get(self.flow)
            for dl_id, ext_id, reason in self.dead_letters[:max_dead_letters]:
                hint = "" if instead else f"  -> {REPLAY_HINT.format(id=dl_id)}"
                lines.append(f"  #{dl_id} {ext_id}: {reason}{hint}")
            more = len(self.dead_letters) - max_dead_letters
            if more > 0:
                lines.append(f"  ... and {more} more (erpsync dead-letters list --flow {self.flow})")
            ids = [d[0] for d in self.dead_letters]
            if instead:
                lines.append(f"  not replayed one by one: {instead}")
                lines.append(f"  {NOT_REPLAYED_CLOSE.format(ids=' '.join(map(str, ids)))}")
            else:
                lines.append(f"  all of them: {REPLAY_MANY_HINT.format(ids=' '.join(map(str, ids)))}")
                lines.append(f"  or trigger DAG dead_letter_replay with Params "
                             f"{json.dumps({'ids': ids, 'dry_run': True})} (then again with dry_run false)")
        if self.queued:
            lines.append(f"outbox: {self.queued} record(s) queued until the target is back (erpsync outbox status)")
        return "\n".join(lines)


def reason_key(reason: str) -> str:
    """``unknown_sku: SKU-1`` -> ``unknown_sku``: the part that groups dead letters."""
    return reason.split(":", 1)[0].strip()


def payload_hash(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def dead_letter(
    ctx: RunContext,
    summary: RunSummary,
    entity: str,
    external_id: str,
    payload: Any,
    reason: str,
    *,
    error_kind: str = "permanent",
) -> int:
    """Keep the record and why it failed, count it, and go on with the batch. The payload keeps
    the personal data it needs for a replay; the reason, which reaches task logs and mails, does
    not (``mask_text``)."""
    reason = mask_text(bounded(reason))  # a 10 MB value quoted in a reason is cut, not copied
    payload = bounded_payload(payload)  # a record over the limits is kept as a bounded excerpt
    if external_id in ("", "?"):
        # no id: told apart by their content, so that two such records are two dead letters (one
        # open dead letter per id: under one "?" the last would replace the others' payloads)
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        external_id = f"?#{digest[:12]}"
    dl_id = ctx.store.add_dead_letter(
        ctx.flow,
        entity,
        external_id,
        payload,
        reason,
        correlation_id=ctx.run_id or None,
        error_kind=error_kind,
    )
    summary.quarantine(dl_id, external_id, reason)
    ctx.log.warning("%s %s -> dead letter #%s: %s", entity, external_id, dl_id, reason)
    return dl_id
