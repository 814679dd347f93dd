"""historical_migration: years of history in checkpointed, resumable batches, ending reconciled.

A job (``erpsync.state.migration_jobs``) migrates one entity in one direction over a half-open
range ``[date_from, date_to)`` of the source's change time:

1. Read the source a page at a time (``read_page``: the system's own stable tokens, so a resume
   reads on where the last committed batch ended; an adapter without it is re-read and skipped).
2. Hand each batch to the live flow's own writer (``orders.sync_batch``, ``customers.sync_batch``,
   ``catalog.sync_batch``, ``shipments.sync_batch``, ``returns.open_returns``) under the live flow's
   name: the same quality gate, ledger keys, look-ups by key, outbox and dead letters. A batch
   half-written before a kill is written again on resume and the ledger skips what is there.
3. Commit the batch's checkpoint and counts together, log a progress line (done / total, rate,
   ETA) and renew the lease.
4. At the end re-read the source range and the target and store the reconciliation report:
   counts (and, for orders, money totals per currency) at source and target, and every record
   that did not make it with its reason from the dead letters.

A dry run maps and checks every record, counts what would be written, skipped or refused and
keeps samples; it writes nothing to either system (nor dead letters). Calls are throttled by the
rate budget of each system (params ``erp_rps`` / ``storefront_rps``, ``erpsync.reliability.budget``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erpsync.connectors.base import ErpAdapter, Page, PagedReads, StorefrontAdapter
from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import ConfigError, MappingError, TransientError
from erpsync.flows import catalog, customers, orders, reconciliation, replay, returns, shipments
from erpsync.flows.base import FlowContext, RunSummary, parse_cursor, sync_hash
from erpsync.flows.specs import SPECS
from erpsync.mappings.erp_shipments import shipped_packages
from erpsync.mappings.returns import return_from_storefront
from erpsync.model import ModelError
from erpsync.reliability import budget
from erpsync.rules.orders import Disposition, check_totals, disposition
from erpsync.state.migration_jobs import LostLease, MigrationJob, MigrationJobs

FLOW = "historical_migration"
DIRECTIONS = ("store_to_erp", "erp_to_store")
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 50_000
#: params every migration runs with unless the job says otherwise
DEFAULT_PARAMS: dict[str, Any] = {"write_concurrency": 8}
SAMPLES = 20  # dry run: payloads kept as examples
PROBLEMS = 500  # dry run: records that would fail, kept with their reason
REPORT_ITEMS = 1000  # differences kept in the job row (all of them go to the drift report)

Raw = dict[str, Any]
Verdict = tuple[str, str]  # ("would_write" | "would_skip" | "would_fail", detail)


# --------------------------------------------------------------------------- what can be migrated


@dataclass(frozen=True, slots=True)
class Entity:
    """One migratable entity: where it is read, which live flow writes it, how to check it."""

    name: str
    direction: str
    flow: str  # the live flow whose writer, ledger keys, outbox and dead letters are used
    system: str  # "storefront" or "erp": where it is read
    resource: str  # for ``read_page``
    list_method: str  # the adapter's plain listing (adapters without ``read_page``)
    time_field: str  # the change time the range applies to
    id_field: str
    process: Callable[[FlowContext, list[Raw], RunSummary, Any], None]
    preview: Callable[[FlowContext, Raw], Verdict]
    #: where the record is in the target (None: not there), for the report of entities other than orders
    target: Callable[[FlowContext, Raw], str | None]
    begin: Callable[[FlowContext], Any] = lambda ctx: None  # per-run memo handed to ``process``
    #: whether the live flow's rules write the record at all (a retired item the store never had,
    #: a return the store did not ask for: not expected in the target, not a difference)
    expected: Callable[[Raw], bool] = lambda raw: True

    @property
    def key(self) -> str:
        return f"{self.name} {self.direction}"

    def id_of(self, raw: Raw) -> str:
        return str(raw.get(self.id_field) or "?")


def _orders_process(ctx: FlowContext, records: list[Raw], summary: RunSummary, state: Any) -> None:
    orders.sync_batch(ctx, records, summary, state)


def _orders_preview(ctx: FlowContext, raw: Raw) -> Verdict:
    order = storefront_mapping(ctx.storefront).order_from_storefront(raw)
    ledger = ctx.store.ledger_get(orders.order_key(order.external_id))
    synced = ctx.store.get_xref("erp", "sales_order", order.external_id) is not None or (
        ledger is not None and ledger.status == "done")
    what = disposition(order, synced=synced)
    if what is Disposition.NEEDS_MANUAL_CANCEL:
        return "would_fail", "needs_manual_cancel: cancelled after sync"
    if what is not Disposition.SYNC:
        return "would_skip", what.value
    totals = check_totals(order)
    if not totals.ok:
        return "would_fail", totals.reason
    return "would_write", replay.preview(ctx, orders.FLOW, order)


def _customers_process(ctx: FlowContext, records: list[Raw], summary: RunSummary, state: Any) -> None:
    customers.sync_batch(ctx, records, summary)


def _customers_preview(ctx: FlowContext, raw: Raw) -> Verdict:
    customer = storefront_mapping(ctx.storefront).customer_from_storefront(raw)
    xref = ctx.store.get_xref("erp", "customer", customer.external_id)
    if xref is not None and xref.content_hash == sync_hash(customer):
        return "would_skip", "unchanged"
    return "would_write", replay.preview(ctx, customers.FLOW, customer)


def _xref_target(system: str, entity: str, key: Callable[[Raw], str]) -> Callable[[FlowContext, Raw], str | None]:
    def target(ctx: FlowContext, raw: Raw) -> str | None:
        try:
            x = ctx.store.get_xref(system, entity, key(raw))
        except (MappingError, ModelError):
            return None
        return x.internal_id if x is not None else None

    return target


def _products_process(ctx: FlowContext, records: list[Raw], summary: RunSummary, state: Any) -> None:
    catalog.sync_batch(ctx, records, summary, state=state)


def _product(ctx: FlowContext, raw: Raw) -> Any:
    def sku_of(code: str) -> str | None:
        x = ctx.store.get_xref_by_internal("erp", "item", code)
        return x.external_id if x is not None else None

    return erp_mapping(ctx.erp).product_from_erp([raw], sku_of)


def _products_target(ctx: FlowContext, raw: Raw) -> str | None:
    return _xref_target("storefront", "product", lambda r: _product(ctx, r).code)(ctx, raw)


def _products_preview(ctx: FlowContext, raw: Raw) -> Verdict:
    product = _product(ctx, raw)
    xref = ctx.store.get_xref("storefront", "product", product.code)
    if xref is not None and xref.content_hash == sync_hash(product):
        return "would_skip", "unchanged"
    verb = "update product" if xref is not None else "create product"
    payload = storefront_mapping(ctx.storefront).product_to_storefront(product)
    return "would_write", f"{verb} " + json.dumps(payload, default=str, sort_keys=True)


def _shipments_process(ctx: FlowContext, records: list[Raw], summary: RunSummary, state: Any) -> None:
    shipments.sync_batch(ctx, records, summary)  # the live flow's quality gate, then sync_one


def _shipments_preview(ctx: FlowContext, raw: Raw) -> Verdict:
    shipment, keys = shipments.package_keys(ctx, raw)
    todo = [k for k in keys if (e := ctx.store.ledger_get(k)) is None or e.status != "done"]
    if not todo:
        return "would_skip", "nothing_new"
    return "would_write", f"{len(todo)} fulfillment(s) on order {shipment.order_external_id}: {', '.join(todo)}"


def _shipments_target(ctx: FlowContext, raw: Raw) -> str | None:
    try:
        _shipment, keys = shipments.package_keys(ctx, raw)
    except (MappingError, ModelError):
        return None
    refs = [e.result_ref for k in keys if (e := ctx.store.ledger_get(k)) is not None and e.status == "done"]
    return ",".join(str(r) for r in refs) if keys and len(refs) == len(keys) else None


def _returns_process(ctx: FlowContext, records: list[Raw], summary: RunSummary, state: Any) -> None:
    returns.open_returns(ctx, records, summary)


def _returns_preview(ctx: FlowContext, raw: Raw) -> Verdict:
    ret = return_from_storefront(raw)
    if ctx.store.get_xref("erp", "return", ret.rma) is not None:
        return "would_skip", "unchanged"
    if ret.status != "requested":
        return "would_skip", f"status_{ret.status}"
    if ctx.store.get_xref("erp", "sales_order", ret.order_external_id) is None:
        return "would_fail", f"order_not_synced: {ret.order_external_id} is not in the ERP yet"
    return "would_write", f"open an RMA for return {ret.rma} on order {ret.order_external_id}"


def _declared(flow: str) -> tuple[str, str, str]:
    """(entity, direction, flow) of the live flow ``flow`` as its spec declares them
    (``FlowSpec.migration_entity``, ``FlowSpec.direction``)."""
    declared = SPECS[flow]
    if not declared.migration_entity:
        raise ConfigError(f"{flow}: its spec has no migration_entity (erpsync.flows.specs)")
    return declared.migration_entity, declared.direction, flow


#: entity -> how it is migrated: one per ``FlowSpec.migration_entity`` (name and direction from the spec)
ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(*_declared(customers.FLOW), "storefront", "customers", "list_customers",
               "updated_at", "id", _customers_process, _customers_preview,
               _xref_target("erp", "customer", lambda raw: str(raw.get("id")))),
        Entity(*_declared(catalog.FLOW), "erp", "items", "list_items", "modified_at", "item_code",
               _products_process, _products_preview, _products_target, begin=catalog.run_state,
               expected=lambda raw: raw.get("active", True) is not False),
        Entity(*_declared(orders.FLOW), "storefront", "orders", "list_orders", "updated_at", "id",
               _orders_process, _orders_preview, _xref_target("erp", "sales_order", lambda raw: str(raw.get("id"))),
               begin=orders.run_state),
        Entity(*_declared(shipments.FLOW), "erp", "shipments", "list_shipments", "modified_at",
               "shipment_no", _shipments_process, _shipments_preview, _shipments_target,
               expected=lambda raw: bool(shipped_packages(raw))),
        Entity(*_declared(returns.FLOW), "storefront", "returns", "list_returns", "updated_at", "id",
               _returns_process, _returns_preview,
               _xref_target("erp", "return", lambda raw: return_from_storefront(raw).rma),
               expected=lambda raw: raw.get("status") == "requested"),
    )
}
if set(ENTITIES) != {s.migration_entity for s in SPECS.values() if s.migration_entity}:
    raise ConfigError("erpsync.flows.specs declares migration entities that flows.migration.ENTITIES lacks, or the "
                      f"other way round: {sorted(ENTITIES)}")


def valid_combinations() -> str:
    return ", ".join(e.key for e in ENTITIES.values())


# --------------------------------------------------------------------------- the spec of a job


def parse_time(value: Any, name: str) -> dt.datetime:
    """``2025-11-01`` (midnight UTC) or an ISO 8601 time; naive times are UTC."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    text = str(value or "").strip()
    if not text:
        raise ConfigError(f"{name} is required (YYYY-MM-DD or an ISO 8601 time, UTC)")
    try:
        return parse_cursor(text) if "T" in text or " " in text else parse_time(dt.date.fromisoformat(text), name)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not YYYY-MM-DD or an ISO 8601 time") from None


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class MigrationSpec:
    """What a job migrates; validated on construction (``from_params``)."""

    entity: str
    direction: str
    date_from: dt.datetime
    date_to: dt.datetime
    batch_size: int = DEFAULT_BATCH_SIZE
    dry_run: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, now: dt.datetime | None = None) -> MigrationSpec:
        """From DAG Params or CLI options: ``entity``, ``direction``, ``date_from``, ``date_to``
        (default: now), ``batch_size``, ``dry_run``, ``flow_params`` (the live flow's params)."""
        entity = str(params.get("entity") or "").strip().lower()
        direction = str(params.get("direction") or "").strip().lower().replace("-", "_")
        if entity not in ENTITIES:
            raise ConfigError(f"entity={entity!r} is unknown; valid: {valid_combinations()}")
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction={direction!r} is unknown; use {' or '.join(DIRECTIONS)}")
        if ENTITIES[entity].direction != direction:
            source = "store" if ENTITIES[entity].direction == "store_to_erp" else "ERP"
            raise ConfigError(f"{entity} cannot be migrated {direction} (their source is the {source}); "
                              f"valid: {valid_combinations()}")
        date_from = parse_time(params.get("date_from"), "date_from")
        to = params.get("date_to")
        date_to = parse_time(to, "date_to") if to not in (None, "") else (now or dt.datetime.now(dt.UTC)).replace(
            microsecond=0)
        if date_from >= date_to:
            raise ConfigError(f"date_from {date_from:%Y-%m-%d %H:%M:%S} must be before date_to {date_to:%Y-%m-%d %H:%M:%S}")
        try:
            size = int(params.get("batch_size") or DEFAULT_BATCH_SIZE)
        except (TypeError, ValueError):
            raise ConfigError(f"batch_size={params.get('batch_size')!r} is not a number") from None
        if not 1 <= size <= MAX_BATCH_SIZE:
            raise ConfigError(f"batch_size={size} must be between 1 and {MAX_BATCH_SIZE}")
        flow_params = params.get("flow_params") or {}
        if not isinstance(flow_params, Mapping):
            raise ConfigError("flow_params must be an object, e.g. {\"guest_policy\": \"create\"}")
        return cls(entity, direction, date_from, date_to, size, _flag(params.get("dry_run")), dict(flow_params))

    @classmethod
    def of(cls, job: MigrationJob) -> MigrationSpec:
        return cls(job.entity, job.direction, job.date_from, job.date_to, job.batch_size, job.dry_run, job.params)

    def describe(self) -> str:
        return (f"{self.entity} {self.direction} [{self.date_from:%Y-%m-%d %H:%M:%S}, {self.date_to:%Y-%m-%d %H:%M:%S})"
                f" batch {self.batch_size}{' DRY RUN' if self.dry_run else ''}")


def job_id_for(run_id: str, entity: str) -> str:
    """The job of an Airflow run: the same on every try and rerun of the run, so they resume it."""
    return f"{entity}-{hashlib.sha256(run_id.encode()).hexdigest()[:12]}"


def new_job_id(entity: str, now: dt.datetime | None = None) -> str:
    return f"{entity}-{(now or dt.datetime.now(dt.UTC)):%Y%m%dT%H%M%S}"


def local_owner() -> str:
    """``host:pid``: a resume on the same host takes over at once when that process is gone."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_gone(owner: str | None) -> bool:
    """True when ``owner`` is a process of this host that no longer runs (killed, crashed)."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --------------------------------------------------------------------------- progress


@dataclass(slots=True)
class Progress:
    """done / total, the rate of this run and the time left, from the job's committed counts."""

    total: int | None
    done: int
    started_done: int  # done when this run started (a resume does not count earlier runs' work)
    started_at: float  # monotonic seconds

    def rate(self, now: float) -> float:
        elapsed = now - self.started_at
        return (self.done - self.started_done) / elapsed if elapsed > 0 else 0.0

    def eta(self, now: float) -> float | None:
        rate = self.rate(now)
        if self.total is None or rate <= 0:
            return None
        return max(0.0, self.total - self.done) / rate

    def fraction(self) -> float | None:
        if not self.total:
            return None if self.total is None else 1.0
        return min(1.0, self.done / self.total)

    def render(self, now: float) -> str:
        total = f"{self.total:,}" if self.total is not None else "?"
        share = self.fraction()
        pct = f" ({share:.1%})" if share is not None else ""
        eta = self.eta(now)
        return f"{self.done:,}/{total}{pct} | {self.rate(now):,.1f}/s | ETA {format_seconds(eta)}"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_line(job: MigrationJob, progress: Progress, now: float) -> str:
    """The line each batch logs: where the job stands and how fast it goes."""
    counts = f"written {job.written:,} skipped {job.skipped:,} failed {job.failed:,}"
    if job.dry_run:
        c = job.counts
        counts = (f"would write {c.get('would_write', 0):,} would skip {c.get('would_skip', 0):,} "
                  f"would fail {c.get('would_fail', 0):,}")
    return f"{FLOW} {job.id}: {progress.render(now)} | {counts} | batch {job.batches}"


# --------------------------------------------------------------------------- reading the source


class Source:
    """The source range of a job, a page at a time, resumable from a token."""

    def __init__(self, ctx: FlowContext, entity: Entity, job: MigrationJob) -> None:
        self.ctx, self.entity, self.job = ctx, entity, job
        self.adapter: ErpAdapter | StorefrontAdapter = ctx.erp if entity.system == "erp" else ctx.storefront
        self.native = type(self.adapter).read_page is not PagedReads.read_page

    def pages(self, token: str | None) -> Iterator[Page]:
        limit = self.job.batch_size
        if self.native:
            while True:
                page = self.adapter.read_page(self.entity.resource, updated_since=self.job.date_from,
                                              updated_before=self.job.date_to, token=token, limit=limit)
                yield page
                if page.next_token is None:
                    return
                token = page.next_token
        # no resumable reads: the plain listing, filtered to the range; the token is an offset
        offset = start = int(token or 0)
        page_items: list[Raw] = []
        for n, raw in enumerate(self.records()):
            if n < start:  # read before the checkpoint: re-read and skipped
                continue
            page_items.append(raw)
            if len(page_items) >= limit:
                offset += len(page_items)
                yield Page(page_items, str(offset))
                page_items = []
        yield Page(page_items, None)

    def records(self) -> Iterator[Raw]:
        """Every record of the range (the plain listing where there are no pages; the report)."""
        if self.native:
            for page in self.pages(None):
                yield from page.items
            return
        listing = getattr(self.adapter, self.entity.list_method)
        for raw in listing(updated_since=self.job.date_from):
            at = raw.get(self.entity.time_field) if isinstance(raw, dict) else None
            try:
                when = parse_cursor(str(at)) if at else None
            except ValueError:
                when = None
            if when is None or self.job.date_from <= when < self.job.date_to:
                yield raw  # a record without a readable time is kept: the writer dead-letters it


def batches(pages: Iterator[Page], size: int) -> Iterator[tuple[list[Raw], str | None, int | None]]:
    """Whole pages gathered to at least ``size`` records, with the token after the last page (the
    checkpoint: a resume reads on from there) and the window's size from the first page."""
    buf: list[Raw] = []
    total: int | None = None
    first = True
    for page in pages:
        if first:
            total, first = page.total, False
        buf.extend(page.items)
        if len(buf) >= size or page.next_token is None:
            yield buf, page.next_token, total
            buf = []
            if page.next_token is None:
                return


# --------------------------------------------------------------------------- the job


def open_job(jobs: MigrationJobs, job_id: str, spec: MigrationSpec | None) -> MigrationJob:
    """Create the job, or load it to resume; a resume never changes what a job migrates."""
    if spec is None:
        job = jobs.get(job_id)
        if job is None:
            raise ConfigError(f"no migration job {job_id!r} to resume (erpsync migration status lists them)")
        return job
    job, created = jobs.create(job_id, entity=spec.entity, direction=spec.direction, date_from=spec.date_from,
                               date_to=spec.date_to, batch_size=spec.batch_size, dry_run=spec.dry_run,
                               params=spec.params)
    if not created and MigrationSpec.of(job) != spec:
        raise ConfigError(f"migration job {job_id} already exists as {MigrationSpec.of(job).describe()}; "
                          f"it cannot become {spec.describe()}: resume it as it is, or use another job id")
    return job


def run_job(
    base: FlowContext,
    job_id: str,
    spec: MigrationSpec | None = None,
    *,
    owner: str | None = None,
    force: bool = False,
    on_progress: Callable[[MigrationJob, Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MigrationJob:
    """Run (or resume) migration job ``job_id`` to its end; ``spec`` creates it the first time.

    Raises ``JobBusy`` when another live process holds the job, ``TransientError`` when the target
    stopped answering (the job keeps its checkpoint: resume later), ``QualityGateFailed`` like the
    live flow. A stop request (``should_stop``) or an interrupt ends the run as ``stopped``.
    """
    owner = owner or local_owner()
    jobs = MigrationJobs(base.store)
    job = open_job(jobs, job_id, spec)
    if job.finished:
        base.log.info("%s %s: already finished; its report:\n%s", FLOW, job.id, render_report(job.report or {}))
        return job
    job = jobs.claim(job.id, owner, force=force or owner_is_gone(job.owner))
    entity = ENTITIES[job.entity]
    ctx = base.derive(flow=entity.flow, run_id=f"migration:{job.id}",
                      params={**DEFAULT_PARAMS, **base.params, **job.params})
    apply_budget(ctx)
    started = clock()
    progress = Progress(job.total, job.processed, job.processed, started)
    resumed = f"; resuming after batch {job.batches} ({job.processed:,} done)" if job.batches else ""
    ctx.log.info("%s %s: %s through %s%s", FLOW, job.id, MigrationSpec.of(job).describe(), entity.flow, resumed)
    try:
        state = entity.begin(ctx)
        if not job.checkpoint.get("exhausted"):
            for records, token, total in batches(Source(ctx, entity, job).pages(job.checkpoint.get("token")),
                                                 job.batch_size):
                job = _one_batch(ctx, jobs, job, owner, entity, state, records, token, total)
                progress.done, progress.total = job.processed, job.total
                ctx.log.info("%s", progress_line(job, progress, clock()))
                if on_progress is not None:
                    on_progress(job, progress)
                if should_stop is not None and should_stop() and token is not None:
                    ctx.log.warning("%s %s: stopped on request after batch %d; resume it to go on", FLOW, job.id,
                                    job.batches)
                    return jobs.finish(job.id, owner, "stopped")
        report = build_report(ctx, entity, job)
        job = jobs.finish(job.id, owner, "succeeded", report=_bounded(report))
        ctx.store.add_drift_report(FLOW, job.id, _bounded(report, items=0), report["items"])
        ctx.log.info("%s", render_report(report))
        return job
    except LostLease:
        raise  # another process runs the job now: leave it alone
    except Exception as exc:
        jobs.finish(job.id, owner, "failed", error=f"{type(exc).__name__}: {exc}")
        ctx.log.error("%s %s: failed after batch %d (%s); the checkpoint is kept: resume it", FLOW, job.id,
                      job.batches, exc)
        raise
    except BaseException as exc:  # Ctrl-C, SystemExit, the task being terminated: give the job back
        jobs.finish(job.id, owner, "stopped", error=f"interrupted ({type(exc).__name__})")
        raise


def _one_batch(ctx: FlowContext, jobs: MigrationJobs, job: MigrationJob, owner: str, entity: Entity, state: Any,
               records: list[Raw], token: str | None, total: int | None) -> MigrationJob:
    """Write (or preview) one batch, then commit its checkpoint and counts in one update."""
    checkpoint: dict[str, Any] = {**job.checkpoint, "token": token, "exhausted": token is None}
    if job.dry_run:
        verdicts = Counter[str]()
        reasons = Counter[str]()
        samples = list(job.checkpoint.get("samples") or [])
        problems = list(job.checkpoint.get("problems") or [])
        for raw in records:
            verdict, detail = preview(ctx, entity, raw)
            verdicts[verdict] += 1
            if verdict == "would_write":
                if len(samples) < SAMPLES:
                    samples.append({"id": entity.id_of(raw), "detail": detail[:2000]})
            elif verdict == "would_fail":
                reasons[f"would_fail:{detail.split(':', 1)[0]}"] += 1
                if len(problems) < PROBLEMS:
                    problems.append({"id": entity.id_of(raw), "reason": detail[:500]})
            else:
                reasons[f"would_skip:{detail}"] += 1
        checkpoint.update(samples=samples, problems=problems)
        counts = {"processed": len(records), "skipped": verdicts["would_skip"], "failed": verdicts["would_fail"]}
        reasons.update(verdicts)
        return jobs.commit_batch(job.id, owner, checkpoint=checkpoint, counts=counts, reasons=reasons, total=total)
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    ctx.summary = summary
    entity.process(ctx, records, summary, state)
    counts = {"processed": len(records), "written": summary.done, "skipped": summary.skipped,
              "failed": summary.quarantined}
    job = jobs.commit_batch(job.id, owner, checkpoint=checkpoint, counts=counts, reasons=summary.reasons, total=total)
    if summary.queued:  # the target's circuit is open: the records wait in the outbox, the job waits too
        raise TransientError(f"{summary.queued} record(s) of batch {job.batches} wait in the {entity.flow} outbox "
                             f"(the {'ERP' if entity.direction == 'store_to_erp' else 'store'} is unavailable); "
                             "resume the job when it is back")
    return job


def preview(ctx: FlowContext, entity: Entity, raw: Raw) -> Verdict:
    """A dry run of one record: what the live writer would do, from reads only."""
    try:
        return entity.preview(ctx, raw)
    except (MappingError, ModelError) as exc:
        return "would_fail", f"mapping_error: {exc}"


def apply_budget(ctx: FlowContext) -> None:
    """Throttle each adapter to its system's rate budget (the Connection's ``rps``, shared) and the
    job's own cap (params ``<system>_rps``, ``_pool_slots``), also when the context was built
    before the job's params were known (a resume)."""
    for system, adapter in (("erp", ctx.erp), ("storefront", ctx.storefront)):
        budget.install(adapter, system, ctx.params, ctx.store)


# --------------------------------------------------------------------------- the report


def build_report(ctx: FlowContext, entity: Entity, job: MigrationJob) -> dict[str, Any]:
    """Source against target over the job's range; every record that did not make it, with why."""
    head: dict[str, Any] = {
        "job": job.id, "entity": job.entity, "direction": job.direction, "dry_run": job.dry_run,
        "date_from": job.date_from.isoformat(), "date_to": job.date_to.isoformat(), "batches": job.batches,
        "processed": job.processed, "written": job.written, "skipped": job.skipped, "failed": job.failed,
        "counts": dict(job.counts),
    }
    if job.dry_run:
        problems = list(job.checkpoint.get("problems") or [])
        would_fail = [{"entity": job.entity, "external_id": p["id"], "kind": "would_fail", "reason": p["reason"]}
                      for p in problems]
        return {**head, "reconciled": None, "samples": job.checkpoint.get("samples") or [],
                "differences": len(would_fail), "items": would_fail}
    source = Source(ctx, entity, job)
    dead = {d.external_id: d.reason for d in ctx.store.list_dead_letters(flow=entity.flow, limit=10_000_000)}
    if job.entity == "orders":
        return {**head, **_orders_report(ctx, source, dead)}
    items: list[dict[str, Any]] = []
    n = present = 0
    for raw in source.records():
        n += 1
        if entity.target(ctx, raw) is not None:
            present += 1
            continue
        rid = entity.id_of(raw)
        if rid in dead or entity.expected(raw):
            items.append({"entity": job.entity, "external_id": rid, "kind": "missing_in_target",
                          "reason": dead.get(rid, "not written and no dead letter (see the job's counts)")})
    return {**head, "source": {"records": n, "expected": present + len(items)}, "target": {"records": present},
            "reconciled": not items, "differences": len(items), "items": items}


def _orders_report(ctx: FlowContext, source: Source, dead: Mapping[str, str]) -> dict[str, Any]:
    """Orders: the daily reconciliation's comparison over the range, money totals per currency."""
    store_orders: dict[str, Any] = {}
    items: list[dict[str, Any]] = []
    n = 0
    earliest: dt.datetime | None = None
    mapper = storefront_mapping(ctx.storefront).order_from_storefront
    for raw in source.records():
        n += 1
        try:
            order = mapper(raw)
        except (MappingError, ModelError) as exc:
            oid = str(raw.get("id"))
            items.append({"kind": "unmappable", "order": oid, "detail": dead.get(oid, str(exc))})
            continue
        store_orders[order.external_id] = order
        if earliest is None or order.placed_at < earliest:
            earliest = order.placed_at
    erp_by_ref: dict[str, list[dict[str, Any]]] = defaultdict(list)
    view = reconciliation.erp_view(ctx)  # each ERP sales order through the ERP's mapping
    if store_orders and type(ctx.erp).list_sales_orders is ErpAdapter.list_sales_orders:
        for ref in store_orders:  # an ERP that cannot list: one look-up by reference each
            so = ctx.erp.find_sales_order(ref)
            if so is not None:
                erp_by_ref[ref].append(view(so))
    elif store_orders:
        # a sales order is written after its store order exists: nothing older can belong here
        since = earliest - dt.timedelta(days=1) if earliest is not None else None
        for so in ctx.erp.list_sales_orders(updated_since=since):
            v = view(so)
            if v["ref"] in store_orders:
                erp_by_ref[v["ref"]].append(v)
    tolerance = Decimal(str(ctx.params.get("amount_tolerance", "0")))
    found, totals, matched = reconciliation.compare_orders(store_orders, erp_by_ref, dead, tolerance)
    items += found
    per_currency = reconciliation.money_table(totals)
    expected = sum(t["store_orders"] for t in per_currency.values())
    in_erp = sum(t["erp_orders"] for t in per_currency.values())
    rows = [{"entity": "order", "external_id": str(it["order"]), "reason": str(it.get("detail") or it["kind"]), **it}
            for it in items]
    return {"source": {"records": n, "expected": expected}, "target": {"records": in_erp, "matched": matched},
            "per_currency": per_currency, "reconciled": not items and expected == in_erp,
            "differences": len(items), "by_kind": dict(Counter(it["kind"] for it in items)), "items": rows}


def _bounded(report: Mapping[str, Any], items: int = REPORT_ITEMS) -> dict[str, Any]:
    """The report with at most ``items`` differences (the drift report keeps them all)."""
    out = dict(report)
    all_items = list(report.get("items") or [])
    out["items"] = all_items[:items]
    if len(all_items) > items:
        out["items_truncated"] = len(all_items) - items
    return out


def render_report(report: Mapping[str, Any], *, max_items: int = 20) -> str:
    """The text that ends the task log and the CLI run."""
    if not report:
        return "(no report)"
    lines = [f"{FLOW} {report.get('job')}: {report.get('entity')} {report.get('direction')} "
             f"[{report.get('date_from')}, {report.get('date_to')}) in {report.get('batches')} batch(es)"]
    if report.get("dry_run"):
        c = report.get("counts") or {}
        lines.append(f"DRY RUN, nothing written: would write {c.get('would_write', 0):,}, would skip "
                     f"{c.get('would_skip', 0):,}, would fail {c.get('would_fail', 0):,} of {report.get('processed', 0):,}")
        for s in (report.get("samples") or [])[:5]:
            lines.append(f"  e.g. {s['id']}: {s['detail'][:300]}")
    else:
        lines.append(f"processed {report.get('processed', 0):,}: written {report.get('written', 0):,}, skipped "
                     f"{report.get('skipped', 0):,}, dead-lettered {report.get('failed', 0):,}")
        src, tgt = report.get("source") or {}, report.get("target") or {}
        lines.append(f"source: {src.get('records', 0):,} record(s)"
                     + (f", {src['expected']:,} to migrate" if "expected" in src else "")
                     + f" | target: {tgt.get('records', 0):,}"
                     + (" | RECONCILED" if report.get("reconciled") else f" | {report.get('differences', 0)} difference(s)"))
        for cur, t in (report.get("per_currency") or {}).items():
            lines.append(f"  {cur}: store {t['store_orders']:,} orders {t['store_total']} (tax {t['store_tax']}) | "
                         f"ERP {t['erp_orders']:,} orders {t['erp_total']} (tax {t['erp_tax']})")
    items = list(report.get("items") or [])
    if items:
        lines.append("did not make it:" if not report.get("dry_run") else "would fail:")
        for it in items[:max_items]:
            lines.append(f"  {it.get('external_id')}: {it.get('kind')}: {it.get('reason')}")
        more = len(items) - max_items + int(report.get("items_truncated") or 0)
        if more > 0:
            lines.append(f"  ... and {more} more (erpsync migration report {report.get('job')} --all)")
    return "\n".join(lines)
