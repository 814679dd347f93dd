"""The batch gate every flow passes before loading: map, validate with the entity's suite,
quarantine what fails, let the good records go on, and stop a batch that is too bad.

* a record that cannot be mapped or fails an expectation goes to the dead letters with the check
  (GX expectation and column) and the offending value, e.g.
  ``bad_currency: currency='XXX' (expect_column_values_to_be_in_set: currency must be one of ...)``;
* the GX result is kept under ``$ERPSYNC_HOME/quality/<flow>/<run>/`` as JSON (and, when something
  failed, the batch's page of the GX Data Docs site, published by the flow's checkpoint of the GX
  project ``gx/``) and its path is written to the task log;
* when the bad share of a batch (mapping errors + failed expectations) is above the flow's
  threshold (and the batch has at least ``min_batch`` records), nothing of the batch is loaded and
  :class:`QualityGateFailed` stops the run: a problem that size is systemic, not one bad record.
"""

from __future__ import annotations

import json
import operator
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erpsync import limits
from erpsync.config import erpsync_home
from erpsync.errors import ErpsyncError, HostileRecord, MappingError
from erpsync.model import ModelError, Record
from erpsync.quality import settings
from erpsync.quality.suites import key_of, row, suite

if TYPE_CHECKING:
    from erpsync.quality.gx import Failure
    from erpsync.runctx import RunContext as FlowContext
    from erpsync.runctx import RunSummary


#: what a mapping raises on input it cannot read at all (a string, None, a list where an object
#: belongs); the gate quarantines such a record as a mapping error instead of stopping the run
#: longest text handed to GX (a suite's longest limit is 2,000 characters)
_GX_TEXT = 10_000
#: the error kinds of the dead letters the gate files
_GATE_KINDS = frozenset({"limits", "mapping", "quality"})
_UNREADABLE = (AttributeError, TypeError, KeyError, IndexError, ValueError, ArithmeticError)


@dataclass(slots=True)
class GateResult:
    flow: str
    entity: str
    checked: int = 0
    bad: int = 0
    max_bad_share: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)
    report: str | None = None  # path of the HTML page (else the JSON)

    @property
    def share(self) -> float:
        return self.bad / self.checked if self.checked else 0.0

    def line(self, *, report: bool = True) -> str:
        top = ", ".join(f"{r} x{n}" for r, n in self.reasons.most_common(3))
        return (
            f"quality gate {self.flow}/{self.entity}: {self.bad} of {self.checked} bad "
            f"({self.share:.1%}, limit {self.max_bad_share:.0%})" + (f"; {top}" if top else "")
            + (f"; report {self.report}" if report and self.report else "")
        )


class QualityGateFailed(ErpsyncError):
    """Too large a share of a batch failed its checks; the batch was not loaded."""

    def __init__(self, result: GateResult, summary: RunSummary | None = None) -> None:
        super().__init__(
            f"{result.line(report=False)}: above the limit, nothing of this batch was loaded "
            "(fix the source or the suite, then clear the task; the GX report is named in the log)"
        )
        self.result = result
        self.summary = summary


def _external_id(item: Any, key: Callable[[Any], str] | None) -> str:
    try:
        if key is not None:
            ext = str(key(item))
        elif isinstance(item, dict):
            ext = str(item.get("id") or key_of(item))
        else:
            ext = key_of(item)
    except _UNREADABLE:  # a record the flow's key cannot read (null, malformed JSON left as text)
        ext = "?"
    return ext  # "" or "?": flows.base.dead_letter files it by its content


def _payload(item: Any) -> Any:
    return item.to_dict() if isinstance(item, Record) else item


def _reason(failures: list[Failure], data: dict[str, Any]) -> str:
    parts = []
    for f in failures:
        c = f.check
        if c.column == "total_diff":
            value = f"computed {data.get('_computed_total')} != total_price {data.get('_total')}"
        else:
            value = f"{c.column}={limits.quote(f.value) if isinstance(f.value, str) else repr(f.value)}"
        parts.append(f"{c.reason}: {value} ({c.gx_type}({c.column}): {c.describe})")
    return "; ".join(parts)


def _report_dir(ctx: FlowContext) -> Path:
    run = re.sub(r"[^A-Za-z0-9_.+-]", "_", ctx.run_id or "adhoc")
    return erpsync_home() / "quality" / ctx.flow / run


def _prune(flow_dir: Path) -> None:
    cutoff = time.time() - settings.report_retention_days() * 86400
    try:
        for child in flow_dir.iterdir():
            if child.is_dir() and child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
    except OSError:
        pass


def run_gate(
    ctx: FlowContext,
    entity: str,
    records: Iterable[Any],
    summary: RunSummary,
    *,
    mapper: Callable[[Any], Any] | None = None,
    key: Callable[[Any], str] | None = None,
    synced: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """Validate ``records`` (raw records with ``mapper``, else canonical ones); return those that
    passed, in order. Dead-letters the rest; raises QualityGateFailed when the batch is too bad.

    ``synced(record)`` (the flow's already-synced check: ledger done, xref) is asked of each record
    that failed and of each record with an open dead letter: a record the target already has is
    not a new dead letter when a re-read fails (counted as ``already_synced_failed_gate``, logged
    with the reason), and its open dead letter, stale, is resolved."""
    from erpsync.quality import gx
    from erpsync.runctx import dead_letter

    items = list(records)
    result = GateResult(flow=ctx.flow, entity=entity, checked=len(items),
                        max_bad_share=settings.max_bad_share(ctx.flow, ctx.params))
    if not items:
        return []
    bad: dict[int, tuple[str, str]] = {}  # position -> (reason, error kind)
    kept: dict[int, Any] = {}  # position -> the bounded excerpt a dead letter keeps instead of the record
    mapped: list[tuple[int, Any]] = []
    bound = limits.future_bound(ctx.params)
    raw_limits = limits.raw_limits(ctx.params)  # read once per batch, not once per record
    for pos, item in enumerate(items):
        # the adapter boundary: a record nested too deep or too large is never mapped nor kept whole
        over = limits.raw_problem(item, limits=raw_limits)
        if over is not None:
            bad[pos], kept[pos] = (over[0], "limits"), over[1]
            continue
        if mapper is None:
            rec = item
        else:
            try:
                rec = mapper(item)
            except HostileRecord as exc:
                bad[pos] = (exc.reason, "limits")
                continue
            except (MappingError, ModelError) as exc:
                bad[pos] = (f"mapping_error: {exc}", "mapping")
                continue
            except RecursionError:
                bad[pos] = ("mapping_error: not readable as a record (nested too deep to map)", "mapping")
                continue
            except _UNREADABLE as exc:
                # not a record the mapping can read (null, malformed JSON left as text, a list, a
                # field of the wrong type deep inside): quarantined with what broke, never a crash
                bad[pos] = (f"mapping_error: not readable as a record ({type(exc).__name__}: {exc})", "mapping")
                continue
        # a change time beyond now + the clock skew, an absurd amount, a lookalike code
        hostile = limits.record_problem(rec, bound)
        if hostile is not None:
            bad[pos] = (hostile, "limits")
            continue
        mapped.append((pos, rec))
    # the same record read twice (a page boundary, an overlap) is validated once and shares the
    # verdict of its first copy; only different records under one key are duplicates
    rows: list[dict[str, Any]] = []
    first: dict[str, int] = {}  # fingerprint -> index in rows
    row_of: list[int] = []  # mapped position -> index in rows
    for _, rec in mapped:
        fp = _fingerprint(rec)
        if fp not in first:
            first[fp] = len(rows)
            # a long text is cut for GX (still over every length limit of the suites), so the GX
            # report never holds a megabyte of it
            data = row(rec)
            rows.append({k: v[:_GX_TEXT] if isinstance(v, str) and len(v) > _GX_TEXT else v for k, v in data.items()}
                        if any(isinstance(v, str) and len(v) > _GX_TEXT for v in data.values()) else data)
        row_of.append(first[fp])
    if rows:
        validation = gx.validate(f"{ctx.flow}.{entity}", suite(entity), rows, flow=ctx.flow, entity=entity)
        if validation.failures:  # in the records' order (the reasons' counts keep their order)
            for m, (pos, _) in enumerate(mapped):
                failures = validation.failures.get(row_of[m])
                if failures:
                    bad[pos] = (_reason(failures, rows[row_of[m]]), "quality")
        directory = _report_dir(ctx)
        n = len(list(directory.glob(f"{entity}-*.json"))) + 1 if directory.exists() else 1
        if not validation.success and (n == 1 or not any(directory.glob(f"{entity}-*.html"))
                                       or _too_bad(ctx, result.checked, len(bad), result.max_bad_share)):
            # the flow's checkpoint stores the result and adds its page to the Data Docs site: for
            # the run's first failed batch of the entity and for a batch that fails the run (a
            # clean minute needs no page; a trickle of bad records, one page per run)
            gx.publish(validation, ctx.run_id or "adhoc")
        # the JSON always; the batch's Data Docs page when it was published
        json_path, html_path = gx.write_report(validation, directory, f"{entity}-{n}")
        result.report = str(html_path or json_path)
        ctx.quality_reports.append(result.report)
        if n == 1:  # once per run and entity: the flow's directory holds a run directory per run
            _prune(directory.parent)
    result.bad = len(bad)
    for reason, _ in bad.values():
        result.reasons[reason.split(":", 1)[0]] += 1
    too_bad = _too_bad(ctx, result.checked, result.bad, result.max_bad_share)
    open_ids = _open_dead_letters(ctx, entity) if synced is not None else set()
    for pos in sorted(bad):
        reason, kind = bad[pos]
        try:
            ext = _external_id(items[pos], key)
        except RecursionError:
            ext = "?"
        if len(ext) > 200:  # an id of a megabyte is no id: filed by its content
            ext = "?"
        if synced is not None and ext not in ("", "?") and _is_synced(synced, items[pos]):
            # already in the target: a bad re-read (an e-mail edited after the sync) loses nothing
            summary.skip("already_synced_failed_gate")
            ctx.log.warning("%s %s already synced; its re-read fails the gate, not dead-lettered: %s",
                            entity, ext, limits.bounded(reason))
            if ext in open_ids:
                ctx.store.resolve_dead_letters(ctx.flow, entity, ext)
            continue
        payload = kept[pos] if pos in kept else _payload(items[pos])
        dead_letter(ctx, summary, entity, ext, payload, reason, error_kind=kind)
    if open_ids:  # a record whose open dead letter is stale: it passed now and the target has it
        for pos, item in enumerate(items):
            if pos in bad:
                continue
            ext = _external_id(item, key)
            if ext in open_ids and _is_synced(synced, item):  # type: ignore[arg-type]
                ctx.store.resolve_dead_letters(ctx.flow, entity, ext)
                open_ids.discard(ext)
    if too_bad:
        ctx.log.error("%s", result.line())
        raise QualityGateFailed(result, summary)
    (ctx.log.warning if bad else ctx.log.info)("%s", result.line())
    return [item for pos, item in enumerate(items) if pos not in bad] if bad else items


def _too_bad(ctx: FlowContext, checked: int, bad: int, max_bad_share: float) -> bool:
    """A batch whose bad share fails the run (``settings.min_batch``, ``min_bad``)."""
    return (checked >= settings.min_batch(ctx.params) and bad >= settings.min_bad(ctx.params)
            and bad / checked > max_bad_share)


_PLAIN = frozenset({str, int, float, bool, type(None)})
#: the key order of a flat row -> (its keys sorted, what puts its values in that order); a source
#: sends one or a few orders, so this stays small (cleared past _MAX_ORDERS)
_ORDERS: dict[tuple[Any, ...], tuple[tuple[Any, ...], Callable[[tuple[Any, ...]], tuple[Any, ...]]]] = {}
_MAX_ORDERS = 256


def _same(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return values


def _fingerprint(rec: Any) -> Any:
    """What tells two reads of one record from two records: the record's fields (a flat dict of
    plain values, as the stock mapper hands over, without serialising it: its keys sorted, the
    values' types and the values), else its JSON."""
    if type(rec) is dict:
        keys = tuple(rec)
        order = _ORDERS.get(keys)
        if order is None:
            if len(_ORDERS) >= _MAX_ORDERS:
                _ORDERS.clear()
            perm = sorted(range(len(keys)), key=keys.__getitem__)
            # already sorted (every row of 0 or 1 key is): the values as they are; else reordered
            # (two or more positions: itemgetter returns a tuple)
            ordered: Callable[[tuple[Any, ...]], tuple[Any, ...]] = (
                _same if perm == list(range(len(keys))) else operator.itemgetter(*perm))
            order = _ORDERS[keys] = (tuple(keys[i] for i in perm), ordered)
        values = order[1](tuple(rec.values()))
        types = tuple(map(type, values))
        if _PLAIN.issuperset(types):
            return order[0], types, values
    return json.dumps(_payload(rec), sort_keys=True, default=str)


def _open_dead_letters(ctx: FlowContext, entity: str) -> set[str]:
    """The ids of the flow's open dead letters the gate filed for ``entity`` (a letter of the flow's
    own, e.g. ``needs_manual_cancel`` of a synced order, stays open)."""
    return {d.external_id for d in ctx.store.list_dead_letters(flow=ctx.flow, limit=10_000_000)
            if d.entity == entity and d.error_kind in _GATE_KINDS}


def _is_synced(synced: Callable[[Any], bool], item: Any) -> bool:
    try:
        return bool(synced(item))
    except (ErpsyncError, *_UNREADABLE):  # a record the check cannot read is not known as synced: dead-lettered
        return False


def verdict(entity: str, record: Any) -> str | None:
    """What the gate would say of one canonical ``record`` (a dry-run replay's preview): None when
    it passes the suite of ``entity``, else the reason its dead letter would carry. Writes nothing
    (no dead letter, no report)."""
    from erpsync.quality import gx

    data = row(record)
    failures = gx.validate(f"preview.{entity}", suite(entity), [data], entity=entity).failures.get(0)
    return _reason(failures, data) if failures else None
