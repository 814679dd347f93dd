"""What every flow gets (FlowContext) and gives back (RunSummary), plus the write discipline.

The write discipline (``idempotent_write``) is the one place where "the same record twice never
makes two ERP records" is enforced: a ledger row per write key, a look-up by the key before any
write that may already have happened, and an audit row per attempt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeGuard

from erpsync.errors import ConfigError, ErpsyncError, PermanentError, TransientError, UnknownOutcomeError
from erpsync.model import Record
from erpsync.reliability import protect
from erpsync.runctx import NOT_REPLAYED as NOT_REPLAYED  # re-exported: callers keep importing them from here
from erpsync.runctx import NOT_REPLAYED_CLOSE as NOT_REPLAYED_CLOSE
from erpsync.runctx import REPLAY_HINT as REPLAY_HINT
from erpsync.runctx import REPLAY_MANY_HINT as REPLAY_MANY_HINT
from erpsync.runctx import RunContext, RunSummary
from erpsync.runctx import dead_letter as dead_letter
from erpsync.runctx import payload_hash as payload_hash
from erpsync.runctx import reason_key as reason_key
from erpsync.state.redact import mask_personal_data_in
from erpsync.state.repos.cursors import HighWater, format_time, parse_time
from erpsync.state.repos.ledger import Claim, claim_token

if TYPE_CHECKING:
    from erpsync.connectors.base import ErpAdapter, StorefrontAdapter
    from erpsync.state import StateStore

DEFAULT_LOOKBACK_MINUTES = 5
DEFAULT_WRITE_ATTEMPTS = 3
#: a writer waiting for another's claim on the same key polls after this, doubling up to the max
CLAIM_POLL_FIRST_SECONDS = 0.05
CLAIM_POLL_MAX_SECONDS = 1.0
#: records validated together by the quality gate (each chunk is a batch for the failure share)
QUALITY_CHUNK = 5000


@dataclass(slots=True)
class FlowContext(RunContext):
    """Everything a flow needs (``erpsync.runctx.RunContext``) plus the quality gate of its batches.

    A plain dataclass: constructing one attaches nothing. A run's context comes from
    :meth:`for_run` (a context derived from it, from :meth:`derive`), which also gives its
    adapters their breakers and throttles and masks its log. Only a test of logic that has no HTTP
    adapter and no log to mask constructs one directly: it then runs without breaker, throttle or
    masking."""

    @classmethod
    def for_run(
        cls,
        flow: str,
        run_id: str,
        store: StateStore,
        erp: ErpAdapter,
        storefront: StorefrontAdapter,
        **options: Any,
    ) -> FlowContext:
        """The context of one run of ``flow``: the one place a run is built (the Airflow task, the
        CLI, the console, replay, migration, the worker threads of ``flows.concurrent``, and the
        tests and benchmarks that run a flow the way production does). Explicitly, in this order:

        1. construct the plain context (``options``: its other fields, ``params``, ``log``,
           ``interval_start``/``interval_end``, ``run_type``, ``notifier``...);
        2. attach the reliability layer (``erpsync.reliability.protect``): every HTTP-backed
           adapter gets its system's circuit breaker, whose state every process shares through
           ``store``, and its rate budget's throttle. It comes after step 1 because it reads the
           breaker settings and rate caps from ``params`` and sends breaker e-mails to
           ``notifier`` (else ``log``). An adapter already protected on this store keeps its
           breaker: building a second context over the same adapters changes nothing;
        3. mask personal data in ``log`` (``erpsync.state.redact``): no e-mail address or phone
           number in a task log, whatever code writes the line (a second call adds nothing).
        """
        ctx = cls(flow=flow, run_id=run_id, store=store, erp=erp, storefront=storefront, **options)
        protect(ctx)
        mask_personal_data_in(ctx.log)
        return ctx

    def derive(self, **changes: Any) -> FlowContext:
        """This context with ``changes`` (another flow or run id, more params, forked adapters),
        built again through :meth:`for_run`: new adapters get their breakers and throttles, which
        ``dataclasses.replace`` would not give them. Every other field is the same object (the
        list of quality reports included)."""
        current = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return type(self).for_run(**{**current, **changes})

    def gate(
        self,
        entity: str,
        records: Iterable[Any],
        summary: RunSummary,
        *,
        mapper: Callable[[Any], Any] | None = None,
        key: Callable[[Any], str] | None = None,
        on_record: Callable[[Any], None] | None = None,
        chunk: int = QUALITY_CHUNK,
        synced: Callable[[Any], bool] | None = None,
    ) -> Iterator[Any]:
        """Every flow's batch passes here before loading (``erpsync.quality``): the entity's
        expectation suite runs over each chunk of ``records`` (raw ones mapped by ``mapper``, else
        canonical ones); failing records go to the dead letters with the check and the offending
        value, the good ones are yielded in order. A chunk whose bad share is above the flow's
        limit raises ``QualityGateFailed`` before any of it is loaded. ``on_record`` sees every
        record read, passed or not (a cursor tracker). ``synced`` tells a record the target already
        has (ledger done, xref): one that fails on a re-read is not a new dead letter, and its
        open dead letter, stale once it synced, is resolved (``run_gate``)."""
        from erpsync.quality import run_gate

        self.summary = summary
        batch: list[Any] = []
        for record in records:
            if on_record is not None:
                on_record(record)
            summary.read += 1
            batch.append(record)
            if len(batch) >= chunk:
                yield from run_gate(self, entity, batch, summary, mapper=mapper, key=key, synced=synced)
                batch = []
        if batch:
            yield from run_gate(self, entity, batch, summary, mapper=mapper, key=key, synced=synced)


#: a run that read at least MIN_COMPARED_BATCH records and compared fewer than this share of them
#: fails (``ERPSYNC_MIN_COMPARED_SHARE``, DAG param ``min_compared_share``); a run that read
#: records and compared none fails whatever their number. Flows that do not count ``compared``
#: themselves fail only when every record they read was dead-lettered and nothing was done
DEFAULT_MIN_COMPARED_SHARE = 0.5
DEFAULT_MIN_COMPARED_BATCH = 10


class NothingUseful(ErpsyncError):
    """A run whose counts show it did nothing useful where work existed (it read records and
    compared none, or too small a share of them). Raised so that Airflow marks the run failed and
    the failure mail goes out; ``summary`` has the counts."""

    def __init__(self, message: str, summary: RunSummary) -> None:
        super().__init__(message)
        self.summary = summary


def compared_limits(params: dict[str, Any] | None = None) -> tuple[float, int]:
    """(min share, min batch): DAG params ``min_compared_share``/``min_compared_batch``, else
    ``ERPSYNC_MIN_COMPARED_SHARE``/``ERPSYNC_MIN_COMPARED_BATCH``, else 0.5 and 10."""
    import os

    from erpsync.errors import ConfigError

    params = params or {}
    out: list[float] = []
    for name, env, default in (("min_compared_share", "ERPSYNC_MIN_COMPARED_SHARE", DEFAULT_MIN_COMPARED_SHARE),
                               ("min_compared_batch", "ERPSYNC_MIN_COMPARED_BATCH", DEFAULT_MIN_COMPARED_BATCH)):
        raw = params.get(name)
        if raw in (None, ""):
            raw = os.environ.get(env, "").strip() or default
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} ({env}) = {raw!r} is not a number") from None
        if value < 0 or (name == "min_compared_share" and value > 1):
            raise ConfigError(f"{name} ({env}) = {raw!r} must be between 0 and 1" if name == "min_compared_share"
                              else f"{name} ({env}) = {raw!r} must not be negative")
        out.append(value)
    return out[0], int(out[1])


def useless_reason(summary: RunSummary, min_share: float, min_batch: int, *, read: int | None = None) -> str | None:
    """Why the counts show a run did nothing useful where work existed, or None: it read records
    and compared none, or (from ``min_batch`` records read) compared fewer than ``min_share`` of
    them. ``read`` overrides ``summary.read`` (what could have been compared)."""
    n = summary.read if read is None else read
    compared = summary.compared_count
    if n <= 0:
        return None
    if summary.compared is None and read is None:
        # a flow that counts its outcomes in its own units (prices published per SKU, levels per
        # SKU-location): only "every record read was dead-lettered, nothing done or skipped" is
        # unit-free; its other bad shares are the quality gate's (ERPSYNC_QUALITY_THRESHOLDS)
        if summary.done or summary.skipped or summary.quarantined < n:
            return None
    unit = summary.compared_unit
    detail = (f"read {n}, compared {compared} {unit}, wrote {summary.done}, skipped by rule {summary.skipped}, "
              f"dead-lettered {summary.quarantined}")
    top = ", ".join(f"{r} x{c}" for r, c in summary.reasons.most_common(3))
    if top:
        detail += f"; top reasons: {top}"
    if compared <= 0:
        return f"{summary.flow or 'flow'}: compared nothing of what it read ({detail})"
    if n >= min_batch and compared < min_share * n:
        return (f"{summary.flow or 'flow'}: compared {compared / n:.0%} of what it read, below the "
                f"{min_share:.0%} required (min_compared_share) ({detail})")
    return None


def check_useful(ctx: FlowContext, summary: RunSummary, *, read: int | None = None) -> None:
    """Raise :class:`NothingUseful` when :func:`useless_reason` says so (the limits from
    :func:`compared_limits`); the run's counts are logged first."""
    share, batch = compared_limits(ctx.params)
    summary.useful_checked = True
    reason = useless_reason(summary, share, batch, read=read)
    if reason is not None:
        ctx.log.error("%s\n%s", reason, summary.render())
        raise NothingUseful(reason, summary)


def side_problems(sides: dict[str, tuple[int, int]], min_share: float, min_batch: int) -> list[str]:
    """Per side of a comparison (``name -> (read, compared)``): a side that read records and
    compared none, or (from ``min_batch``) less than ``min_share`` of them. A comparison that can
    read one side only is no comparison, however well the other side reads."""
    out: list[str] = []
    for name, (n, compared) in sides.items():
        if n > 0 and compared == 0:
            out.append(f"compared none of the {n} {name} it read")
        elif n >= min_batch and compared < min_share * n:
            out.append(f"compared {compared} of the {n} {name} it read (below {min_share:.0%}, min_compared_share)")
    return out


def check_sides(ctx: FlowContext, summary: RunSummary, sides: dict[str, tuple[int, int]], detail: str = "") -> None:
    """Raise :class:`NothingUseful` when :func:`side_problems` finds any (the limits from
    :func:`compared_limits`); marks the summary checked either way."""
    share, batch = compared_limits(ctx.params)
    summary.useful_checked = True
    problems = side_problems(sides, share, batch)
    if problems:
        reason = f"{summary.flow or ctx.flow}: {'; '.join(problems)}" + (f" ({detail})" if detail else "")
        ctx.log.error("%s\n%s", reason, summary.render())
        raise NothingUseful(reason, summary)


#: run Params that once pinned a flow's clock (pricing_sync) or its sleep between polls
#: (inventory_fast_lane) for tests; tests replace ``pricing.clock`` / ``inventory.poll_sleep``
TEST_SEAM_PARAMS = ("now", "_sleep")


def refuse_test_seams(ctx: FlowContext) -> None:
    """A run's Params (a person's trigger conf) never pin a flow's clock or sleep: refuse them clearly."""
    found = [name for name in TEST_SEAM_PARAMS if name in (ctx.params or {})]
    if found:
        raise ConfigError(f"{ctx.flow}: param(s) {', '.join(found)} are not settings (they pinned the flow's clock "
                          "or sleep in tests and are no longer read): remove them from the run's conf")


def sync_hash(record: Record, *, exclude: tuple[str, ...] = ("updated_at",)) -> str:
    """Hash of what we write; the source's ``updated_at`` alone moving is not a change."""
    data = {k: v for k, v in record.to_dict().items() if k not in exclude}
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def lookback(ctx: FlowContext, default_minutes: float = DEFAULT_LOOKBACK_MINUTES) -> dt.timedelta:
    """The re-read overlap: param ``lookback_minutes``, else the flow's ``default_minutes``."""
    return dt.timedelta(minutes=float(ctx.params.get("lookback_minutes", default_minutes)))


def cursor_since(
    ctx: FlowContext, name: str = "default", flow: str | None = None, *,
    default_lookback_minutes: float = DEFAULT_LOOKBACK_MINUTES,
) -> dt.datetime | None:
    """Read-from time: the stored cursor minus the lookback, so records at the edge are not skipped
    (``flow``: another flow's cursor, e.g. the inventory flows' shared ones). None: no cursor yet."""
    since = ctx.store.cursors.get_time(flow or ctx.flow, name)
    return None if since is None else since - lookback(ctx, default_lookback_minutes)


def read_window(
    ctx: FlowContext, name: str = "default", *, from_start: bool = False
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The half-open slice ``[since, before)`` of source change times one run reads.

    - backfill: exactly its data interval (``since`` minus the lookback overlap), so a backfill
      refills a gap and a rerun re-reads the same slice; the cursor is neither read nor moved.
    - scheduled: its interval, but starting at the cursor ``name`` when that is older, so runs
      that never happened (scheduler down, catchup off) leave no gap; with no cursor yet,
      ``from_start`` reads from the beginning instead of from the interval.
    - manual (no interval): everything since the cursor.
    A record changed exactly at ``before`` belongs to the next interval. The ledger makes the
    overlap harmless: what was already written is skipped.
    """
    if ctx.interval_start is None:
        return cursor_since(ctx, name), None
    since: dt.datetime | None = ctx.interval_start - lookback(ctx)
    if ctx.run_type != "backfill":
        cursor = cursor_since(ctx, name)
        if cursor is None and from_start:
            since = None
        elif cursor is not None and since is not None and cursor < since:
            since = cursor
    return since, ctx.interval_end


def window_kwargs(since: dt.datetime | None, before: dt.datetime | None) -> dict[str, dt.datetime | None]:
    """``updated_since`` (and ``updated_before`` when there is one) for an adapter's list call."""
    return {"updated_since": since, **({"updated_before": before} if before is not None else {})}


def parse_cursor(value: str) -> dt.datetime:
    """A change time (ISO 8601, ``Z`` accepted, no zone read as UTC): ``erpsync.state.repos.cursors``."""
    return parse_time(value)


def format_cursor(value: dt.datetime) -> str:
    """ISO 8601 in UTC with ``Z``: ``erpsync.state.repos.cursors``."""
    return format_time(value)


class CursorTracker:
    """Highest ``updated_at`` seen in a batch; stored only after the whole batch was handled.

    A time beyond now + the allowed clock skew (``erpsync.limits.future_bound``) is not taken: the
    quality gate dead-letters its record (``timestamp_in_future``), and the cursor stays where the
    next run reads every later change (``StateStore.set_cursor`` refuses such a time as well).
    Naive times (no zone) are read as UTC; times are compared as times (``HighWater``)."""

    def __init__(self, bound: dt.datetime | None = None) -> None:
        from erpsync.limits import future_bound

        self._water = HighWater(bound or future_bound())
        self.bound = self._water.bound

    @property
    def high(self) -> dt.datetime | None:
        return self._water.high

    @high.setter
    def high(self, value: dt.datetime | None) -> None:
        self._water.high = value

    def see(self, raw: dict[str, Any]) -> None:
        value = raw.get("updated_at") if isinstance(raw, dict) else None  # bad records are not dicts
        if isinstance(value, str):
            self._water.see(value)

    def save(self, ctx: FlowContext, name: str = "default") -> None:
        """Move the cursor ``name`` forward (never back). A backfill leaves it alone: it re-reads
        an old slice, and the live runs own the cursor."""
        if self.high is None or ctx.run_type == "backfill":
            return
        ctx.store.cursors.advance(ctx.flow, self.high, name)


def sync_records(
    ctx: FlowContext,
    summary: RunSummary,
    records: Any,
    handle: Callable[[Any], None],
    *,
    entity: str,
    system: str = "erp",
    on_record: Callable[[Any], None] | None = None,
    key: Callable[[Any], str] | None = None,
) -> None:
    """The batch loop of every flow: drain the outbox, then ``handle`` each record; what cannot
    reach ``system`` now is kept in the outbox (see ``erpsync.reliability.process``). ``key``: a
    record's id (default its ``id``)."""
    from erpsync.reliability.process import sync_records as _sync_records

    _sync_records(ctx, summary, records, handle, entity=entity, system=system, on_record=on_record, key=key)


@dataclass(frozen=True, slots=True)
class WriteResult:
    ref: str  # the id in the target system (customer_no, order_no)
    created: bool  # False: found by its key (an earlier try had committed), nothing written now


def idempotent_write(
    ctx: FlowContext,
    *,
    key: str,
    entity: str,
    external_id: str,
    operation: str,
    payload: dict[str, Any],
    write: Callable[[], dict[str, Any]],
    ref_of: Callable[[dict[str, Any]], str],
    lookup: Callable[[], dict[str, Any] | None] | None = None,
    system: str = "erp",
    bind: Callable[[str], None] | None = None,
) -> WriteResult:
    """Write once per ``key``: claim the key's ledger row -> (look up if an earlier try may have
    written) -> write -> ledger_complete, with an audit row per attempt.

    * a ``done`` ledger row: nothing is written, its result is returned;
    * a ``pending`` or ``failed`` row left by an earlier try, or an ``UnknownOutcomeError`` now:
      ``lookup`` by the key first; only if the target has nothing is the write sent (again);
    * another writer sending the same key right now (another partition, an overlapping or replay
      run, another worker, another thread): only one holds the key's claim (``claimed_by``, for
      ``ERPSYNC_LEDGER_LEASE_SECONDS``, taken in one state-store transaction:
      ``LedgerRepository.claim``). The other waits, polling with a short backoff, up to
      ``ERPSYNC_LEDGER_WAIT_SECONDS``: once the row is done, its result is returned (nothing
      written); a claim given up (the holder failed) or whose lease ran out (the holder crashed)
      is taken over as "maybe written" (look up first). Still held after the wait:
      ``TransientError``, the record is kept for the next try (never skipped);
    * ``PermanentError``: the ledger row is marked failed and the error propagates (dead letter);
    * ``TransientError`` after the adapter's own retries: propagates, the row stays pending (its
      claim given up), so the next try looks up before writing.

    ``bind(ref)``, when given, records the result (the cross-reference, typically) in the same
    state-store transaction as the ledger's completion and its audit row: one commit, and never
    a completed write without its cross-reference.
    """
    claim = _claim_key(ctx, key, system, payload)
    if not claim.mine:  # done, by an earlier try or by the writer this one waited for
        ref = claim.entry.result_ref
        if not _names_a_record(ref):  # pragma: no cover - claim() returns "done" only for a real id
            raise AssertionError(f"ledger {key!r}: done without a result")
        if bind is not None:
            bind(ref)
        return WriteResult(ref, created=False)
    token = claim.entry.claimed_by or ""
    try:
        return _write_claimed(
            ctx, key=key, entity=entity, external_id=external_id, operation=operation, payload=payload,
            write=write, ref_of=ref_of, lookup=lookup, system=system, bind=bind,
            maybe_written=claim.outcome == "taken",
        )
    except BaseException:
        _release_claim(ctx, key, token)
        raise


def _claim_key(ctx: FlowContext, key: str, system: str, payload: dict[str, Any]) -> Claim:
    """The key's claim for a new writer, or its ``done`` row; waits (bounded) while another
    writer holds a live claim on it (``idempotent_write``)."""
    from erpsync import config as settings

    lease, wait = settings.ledger_lease_seconds(), settings.ledger_wait_seconds()
    token = claim_token()
    deadline = time.monotonic() + wait
    pause = CLAIM_POLL_FIRST_SECONDS
    waited = False
    while True:
        claim = ctx.store.ledger.claim(
            key, ctx.flow, system, request_hash=payload_hash(payload), token=token, lease_seconds=lease,
            is_result=_names_a_record,
        )
        if claim.outcome != "held":
            if waited:
                ctx.log.info("%s: the other writer's claim ended (%s)", key, claim.outcome)
            return claim
        left = deadline - time.monotonic()
        holder, until = claim.entry.claimed_by, claim.entry.lease_until
        if left <= 0:
            raise TransientError(
                f"{key}: another writer ({holder}) is writing it, its claim runs until "
                f"{until.isoformat() if until else '?'}; waited {wait} s (ERPSYNC_LEDGER_WAIT_SECONDS) "
                "for it to finish. Nothing was written; the record is kept for the next try, which "
                "takes the write over (looking the record up first) if that writer crashed and its "
                "lease (ERPSYNC_LEDGER_LEASE_SECONDS) ran out",
                system=system,
            )
        if not waited:
            ctx.log.info("%s: another writer (%s) is writing it; waiting up to %d s", key, holder, wait)
            waited = True
        time.sleep(min(pause, left))
        pause = min(pause * 2, CLAIM_POLL_MAX_SECONDS)


def _release_claim(ctx: FlowContext, key: str, token: str) -> None:
    """Give up the key's claim after a failed write, so a waiting writer goes on at once; a
    failure here is logged, not raised (the write's own error is what the caller must see; the
    lease still runs out)."""
    try:
        ctx.store.ledger.release(key, token)
    except Exception:
        ctx.log.warning("%s: could not give up the claim (it ends with its lease)", key, exc_info=True)


def _write_claimed(
    ctx: FlowContext,
    *,
    key: str,
    entity: str,
    external_id: str,
    operation: str,
    payload: dict[str, Any],
    write: Callable[[], dict[str, Any]],
    ref_of: Callable[[dict[str, Any]], str],
    lookup: Callable[[], dict[str, Any] | None] | None,
    system: str,
    bind: Callable[[str], None] | None,
    maybe_written: bool,
) -> WriteResult:
    """``idempotent_write`` once the key's claim is held: look up (if maybe written), write,
    complete (which ends the claim)."""
    store = ctx.store
    attempts = int(ctx.params.get("write_attempts", DEFAULT_WRITE_ATTEMPTS))
    for attempt in range(1, attempts + 1):
        if maybe_written and lookup is not None:
            found = lookup()
            if found is not None:
                ref = ref_of(found)
                with store.transaction():
                    store.ledger_complete(key, ref, response=found)
                    audit(ctx, system, f"{operation}.lookup", entity, external_id, payload, found, 0, "found")
                    if bind is not None:
                        bind(ref)
                return WriteResult(ref, created=False)
        started = time.monotonic()
        try:
            response = write()
        except UnknownOutcomeError as exc:
            audit(ctx, system, operation, entity, external_id, payload, _err(exc), _ms(started), "unknown")
            maybe_written = True
            if attempt == attempts:
                raise
            ctx.log.info(
                "%s %s: no answer to %s (try %d), looking it up", entity, external_id, operation, attempt
            )
            continue
        except PermanentError as exc:
            audit(ctx, system, operation, entity, external_id, payload, _err(exc), _ms(started), "error")
            store.ledger_fail(key, str(exc))
            raise
        except Exception as exc:
            audit(ctx, system, operation, entity, external_id, payload, _err(exc), _ms(started), "error")
            raise
        ref = ref_of(response)
        took = _ms(started)
        with store.transaction():
            store.ledger_complete(key, ref, response=response)
            audit(ctx, system, operation, entity, external_id, payload, response, took, "ok")
            if bind is not None:
                bind(ref)
        return WriteResult(ref, created=True)
    raise AssertionError("unreachable")  # pragma: no cover


def _names_a_record(ref: str | None) -> TypeGuard[str]:
    """A ledger result that is a real id (a \"done\" row holding \"None\" is an old false success:
    the record is looked up again, never bound to it)."""
    from erpsync.state.store import check_ref

    try:
        check_ref(ref, "ledger result")
    except ValueError:
        return False
    return True


def audit(
    ctx: FlowContext,
    system: str,
    operation: str,
    entity: str,
    external_id: str,
    request: Any,
    response: Any,
    duration_ms: int,
    result: str,
) -> None:
    """One audit row per transfer; the store masks personal data."""
    ctx.store.audit(
        flow=ctx.flow,
        system=system,
        operation=operation,
        entity=entity,
        external_id=external_id,
        request=request,
        response=response,
        duration_ms=duration_ms,
        result=result,
        run_id=ctx.run_id or None,
        correlation_id=external_id,
    )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _err(exc: Exception) -> dict[str, Any]:
    return {"error": type(exc).__name__, "message": str(exc), "status": getattr(exc, "status", None)}
