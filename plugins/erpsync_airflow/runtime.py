"""The bridge between an Airflow task and a core flow.

A task body is one call::

    return run_flow("orders_sync", orders.run, context)

``flow_context`` builds the core's :class:`~erpsync.flows.base.FlowContext` from the Airflow task
context (connections through the hooks, the data interval, params, a logger that writes to the
task log) and turns configuration mistakes into one clear line instead of a stack trace.
``run_flow`` runs the flow inside it, ends the task log with ``summary.render()`` and records the
run metrics in the state store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from erpsync.display import safe_logger  # task logs: values quoted in a line are neutralised (ANSI, RTL)
from erpsync_airflow.hooks import ErpHook, MissingConnectionError, StateStoreHook, StorefrontHook

if TYPE_CHECKING:
    from erpsync.flows.base import FlowContext, RunSummary


def _fail(log: logging.Logger, line: str) -> AirflowFailException:
    """Log the one line that says what is wrong and how to fix it; fail without retries."""
    log.error(line)
    return AirflowFailException(line)


def _run_type(context: Mapping[str, Any]) -> str:
    """Airflow's run type as the core knows it: "manual", "backfill" or "scheduled".

    A run triggered by an operator counts as manual (its interval means nothing to the flow).
    """
    dag_run = context.get("dag_run")
    run_type = str(getattr(dag_run, "run_type", "") or "").lower()
    if "backfill" in run_type:
        return "backfill"
    if "manual" in run_type or "operator_triggered" in run_type:
        return "manual"
    return "scheduled"


def _interval(context: Mapping[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The data interval of a scheduled or backfill run; (None, None) for a manual run.

    Airflow 3 gives manual runs an interval too (the one before the trigger time); the flows read
    "everything since the cursor" when there is none, which is what a manual run is for.
    """
    if _run_type(context) == "manual":
        return None, None
    return context.get("data_interval_start"), context.get("data_interval_end")


def _alert_sender(log: logging.Logger) -> Any:
    """Breaker and other in-flow e-mails go through SMTP when a connection is configured, else
    to the task log (so nothing is dropped)."""
    from erpsync_airflow.notifiers import AlertSender, smtp_configured

    if smtp_configured():
        return AlertSender()
    from erpsync.reliability.notify import LogNotifier

    return LogNotifier(log)


def _close(obj: Any) -> None:
    """Close an adapter's HTTP session (``adapter.close()`` or ``adapter.http.close()``)."""
    close = getattr(obj, "close", None) or getattr(getattr(obj, "http", None), "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


#: libraries whose INFO lines would bury erpsync's summary in a task log (Great Expectations logs
#: each validation, its data sources and its progress); their warnings and errors still show
NOISY_LOGGERS = ("great_expectations", "altair", "numexpr", "tzlocal")
#: loggers that set their own level at import (GX: ``logger.setLevel(logging.INFO)``), which a
#: level set before the import cannot hold: a filter on the logger drops their INFO lines
SELF_LEVELLED = ("great_expectations.data_context.types.base",)


def _warnings_and_up(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def quiet_libraries() -> None:
    """Silence library INFO/DEBUG noise in task logs (WARNING and above still get through)."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SELF_LEVELLED:
        logger = logging.getLogger(name)
        if _warnings_and_up not in logger.filters:
            logger.addFilter(_warnings_and_up)


@contextlib.contextmanager
def flow_context(flow: str, context: Mapping[str, Any]) -> Iterator[FlowContext]:
    """Yield the core FlowContext for ``flow`` built from the Airflow task ``context`` by
    ``FlowContext.for_run`` (its adapters' breakers and throttles, its masked log).

    A missing Connection, a ConfigError or refused credentials (anywhere in the block) end the
    task with one log line naming the problem and its fix, and no retries: retrying cannot help.
    Transient errors propagate, so Airflow's retries apply.
    """
    from erpsync.errors import AuthError, ConfigError
    from erpsync.flows.base import FlowContext

    log = safe_logger(f"airflow.task.erpsync.{flow}")
    quiet_libraries()
    erp = storefront = None
    try:
        try:
            erp = ErpHook().get_conn()
            storefront = StorefrontHook().get_conn()
            store = StateStoreHook().get_conn()
        except MissingConnectionError as exc:
            raise _fail(log, f"{flow}: {exc}") from None
        start, end = _interval(context)
        ctx = FlowContext.for_run(  # breakers, throttles and the masked log attached here
            flow=flow,
            run_id=str(context.get("run_id") or ""),
            store=store,
            erp=erp,
            storefront=storefront,
            interval_start=start,
            interval_end=end,
            params=dict(context.get("params") or {}),
            log=log,
            run_type=_run_type(context),
            notifier=_alert_sender(log),
        )
        yield ctx
    except ConfigError as exc:
        raise _fail(log, f"{flow}: configuration error: {exc}") from None
    except AuthError as exc:
        raise _fail(
            log,
            f"{flow}: credentials refused by {exc.system or 'a system'}: {exc} "
            "(fix the login/password/token of its Airflow connection, then clear the task)",
        ) from None
    finally:
        _close(erp)
        _close(storefront)


def run_flow(flow: str, run: Callable[[FlowContext], RunSummary], context: Mapping[str, Any]) -> dict:
    """Run one core flow as the body of an Airflow task; return the summary for XCom.

    Every flow validates its batch through ``ctx.gate`` (``erpsync.quality``). A batch whose bad
    share is above the flow's limit ends the task without retries (retrying the same data cannot
    help) and one failure e-mail goes out. Any failure carries the run's counts and quality
    reports (``erpsync_counts``, ``erpsync_quality_reports``) for that e-mail.
    """
    from erpsync.flows.base import NothingUseful, check_useful
    from erpsync.quality import QualityGateFailed

    started = dt.datetime.now(dt.UTC)
    with flow_context(flow, context) as ctx:
        try:
            summary = run(ctx)
            if not summary.useful_checked:  # the general rule: read records, compared (almost) none
                check_useful(ctx, summary)
        except (QualityGateFailed, NothingUseful) as exc:
            summary = exc.summary or ctx.summary
            if summary is not None:
                ctx.log.info("%s", summary.render())
                record_run(ctx, summary, started, dt.datetime.now(dt.UTC), context, status="failed", error=str(exc),
                           nothing_useful=str(exc) if isinstance(exc, NothingUseful) else None)
            fail = _fail(ctx.log, f"{flow}: {exc}")
            _attach(fail, ctx, summary)
            raise fail from None
        except Exception as exc:
            if ctx.summary is not None:
                record_run(ctx, ctx.summary, started, dt.datetime.now(dt.UTC), context, status="failed",
                           error=f"{type(exc).__name__}: {exc}")
            _attach(exc, ctx, ctx.summary)
            raise
        finished = dt.datetime.now(dt.UTC)
        ctx.log.info("%s", summary.render())
        for report in ctx.quality_reports:
            ctx.log.info("quality report (GX validation result): %s", report)
        record_run(ctx, summary, started, finished, context)
        result = summary.to_dict()
        result["quality_reports"] = list(ctx.quality_reports)
        return result


#: summary counts that add up over the partitions of a run
_SUMMED = ("done", "failed", "quarantined", "skipped", "queued", "drained", "read", "compared")


def run_orders_partition(index: int, count: int, context: Mapping[str, Any], *, by_event: bool = False) -> dict:
    """Body of one mapped ``sync_orders`` task of a partitioned orders_sync run
    (``flows.orders.Partition``): its share of the run's orders, under its own run id
    ``<run id>#p<index>`` (its metrics row and outbox claims). The result carries the change time
    it read up to (``cursor_high``) for ``finish_orders_partitions``. A run started by an inbox
    event is small: partition 0 syncs every order the inbox names, the others have nothing to do."""
    from erpsync.flows import events, orders

    part = orders.Partition(index, count)
    run_context = {**context, "run_id": part.run_id(str(context.get("run_id") or ""))}
    if by_event:
        if index != 0:
            return {"partition": [index, count], "by_event": True, "note": "partition 0 syncs the inbox's orders"}
        result = run_flow("orders_sync", events.orders_from_inbox, run_context)
        return {**result, "partition": [index, count], "by_event": True}
    highs: list[str | None] = []

    def body(ctx: FlowContext) -> RunSummary:
        summary, high = orders.run_partition(ctx, part)
        highs.append(high)
        return summary

    result = run_flow("orders_sync", body, run_context)
    return {**result, "partition": [index, count], "cursor_high": highs[0] if highs else None}


def finish_orders_partitions(results: Any, context: Mapping[str, Any]) -> dict:
    """Body of ``save_cursor``, after every partition of an orders_sync run succeeded: move the
    cursor to the highest change the partitions read (a backfill or an event run leaves it) and
    return the run's summary, the partitions' counts added up (``review_dead_letters`` reads it)."""
    from erpsync.flows import orders

    parts = [dict(r) for r in (results if results is not None else ()) if r]  # a lazy XCom sequence
    merged: dict[str, Any] = {"flow": "orders_sync", "run_id": str(context.get("run_id") or ""),
                              "partitions": len(parts), "dead_letters": [], "reasons": {}, "quality_reports": []}
    for part in parts:
        for key in _SUMMED:
            merged[key] = merged.get(key, 0) + int(part.get(key) or 0)
        merged["dead_letters"].extend(part.get("dead_letters") or [])
        merged["quality_reports"].extend(part.get("quality_reports") or [])
        for reason, n in (part.get("reasons") or {}).items():
            merged["reasons"][reason] = merged["reasons"].get(reason, 0) + int(n)
    with flow_context("orders_sync", context) as ctx:
        merged["cursor"] = orders.save_cursor(ctx, [p.get("cursor_high") for p in parts])
        ctx.log.info("orders_sync: %d partition(s): done=%s skipped=%s quarantined=%s read=%s; cursor %s",
                     len(parts), merged.get("done", 0), merged.get("skipped", 0), merged.get("quarantined", 0),
                     merged.get("read", 0), merged["cursor"])
    return merged


def _attach(exc: BaseException, ctx: FlowContext, summary: RunSummary | None) -> None:
    """Give the failure e-mail (notifiers.FailureNotifier) the counts and reports of the run."""
    try:
        if summary is not None:
            exc.erpsync_counts = summary.to_dict()  # type: ignore[attr-defined]
        exc.erpsync_quality_reports = list(ctx.quality_reports)  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - an exception type refusing attributes
        pass


def record_run(
    ctx: FlowContext,
    summary: RunSummary,
    started: dt.datetime,
    finished: dt.datetime,
    context: Mapping[str, Any],
    *,
    status: str = "success",
    error: str | None = None,
    nothing_useful: str | None = None,
) -> None:
    """Store the run's counts (the watchdog and `erpsync` CLI read them); never fail the task.

    ``extra.status`` is ``success`` or ``failed``: the watchdog counts only successful runs;
    ``extra.read``/``compared`` are the run's counts, ``extra.nothing_useful`` why a run that did
    nothing useful failed (``flows.base.NothingUseful``; the watchdog's ``nothing_compared``)."""
    ti = context.get("ti")
    extra = {
        "status": status,
        "dead_letters": len(summary.dead_letters),
        "read": summary.read,
        "compared": summary.compared_count,
        "compared_unit": summary.compared_unit,
        "try_number": getattr(ti, "try_number", None),
        "duration_s": round((finished - started).total_seconds(), 3),
        "quality_reports": list(ctx.quality_reports),
    }
    if summary.latencies_s:  # placed -> ERP per order written (the console's dashboard)
        from erpsync.dashboard import latency_histogram

        extra["latency"] = latency_histogram(summary.latencies_s)
    if error:
        extra["error"] = error[:500]
    if nothing_useful:  # the watchdog reports it (check nothing_compared)
        extra["nothing_useful"] = nothing_useful[:500]
    try:
        ctx.store.record_run(
            ctx.flow,
            ctx.run_id,
            started,
            finished,
            summary.done,
            summary.failed,
            summary.quarantined,
            summary.skipped,
            extra=extra,
        )
    except Exception:
        ctx.log.warning("%s: could not record the run metrics", ctx.flow, exc_info=True)


def run_watchdog(context: Mapping[str, Any]) -> dict:
    """Body of ``sync_watchdog``: ``erpsync.watchdog.run`` on the state store, mailing through the
    SMTP connection. The task succeeds either way: the mail is the alert, not a failed task."""
    from erpsync import watchdog
    from erpsync.errors import ConfigError
    from erpsync_airflow.notifiers import AlertSender, alert_links

    log = safe_logger("airflow.task.erpsync.sync_watchdog")
    try:
        config = watchdog.WatchdogConfig.from_settings(dict(context.get("params") or {}))
    except ConfigError as exc:
        raise _fail(log, f"sync_watchdog: configuration error: {exc}") from None
    # the per-finding links from Airflow's [api] base_url wherever it is set (airflow.cfg or environment)
    return watchdog.run(StateStoreHook().get_conn(), config, AlertSender().send, log=log, links=alert_links())


def run_housekeeping(context: Mapping[str, Any]) -> dict:
    """Body of ``sync_watchdog.purge_old_history``: ``erpsync.housekeeping.purge`` (the retention)."""
    from erpsync import housekeeping
    from erpsync.errors import ConfigError

    log = safe_logger("airflow.task.erpsync.housekeeping")
    try:
        done = housekeeping.purge(StateStoreHook().get_conn())
    except ConfigError as exc:
        raise _fail(log, f"housekeeping: configuration error: {exc}") from None
    log.info("housekeeping: kept %d days; purged %d audit row(s), %d closed dead letter(s), %d outbox row(s)",
             done.retention_days, done.audit_rows, done.dead_letters, done.outbox_rows)
    return done.to_dict()


def run_dead_letter_replay(context: Mapping[str, Any]) -> dict:
    """Body of the ``dead_letter_replay`` task: replay (or preview) the dead letters its Params
    select, each through its own flow; the task log ends with one line per dead letter. A filter
    that matches nothing, an unknown id or an empty filter fail the task with one line."""
    from erpsync.flows.replay import ReplayFilter, replay_many

    params = dict(context.get("params") or {})
    flow_params = dict(params.get("flow_params") or {})
    with flow_context("dead_letter_replay", context) as base:
        flt = ReplayFilter.from_params(params)
        dry_run = bool(params.get("dry_run", True))
        base.log.info("dead_letter_replay: %s%s", flt.describe(), " (dry run: nothing is sent)" if dry_run else "")
        contexts: dict[str, FlowContext] = {}

        def ctx_for(flow: str) -> FlowContext:
            if flow not in contexts:
                contexts[flow] = base.derive(flow=flow, params={**base.params, **flow_params})
            return contexts[flow]

        report = replay_many(ctx_for, base.store, flt, dry_run=dry_run)
        base.log.info("%s", report.render())
        if report.stopped:
            from erpsync.errors import TransientError

            raise TransientError(f"dead_letter_replay stopped: {report.stopped}")
        if not report.outcomes:
            raise _fail(base.log, f"dead_letter_replay: no dead letter matches {flt.describe()}")
        failed = report.failures()
        if failed and not dry_run:  # not green: the records are still not in the target
            listed = "; ".join(f"#{o.dead_letter_id} {o.external_id}: {o.detail[:200]}" for o in failed[:20])
            more = f"; and {len(failed) - 20} more" if len(failed) > 20 else ""
            raise _fail(base.log, f"dead_letter_replay: {len(failed)} of {len(report.outcomes)} dead letter(s) "
                                  f"failed again: {listed}{more} (fix the cause, then replay them again)")
        return report.to_dict()


#: DAG Params of historical_migration that are the rate budget (kept on the job, so a resume keeps them)
BUDGET_PARAMS = ("erp_rps", "erp_pool_slots", "storefront_rps", "storefront_pool_slots")


def run_migration(context: Mapping[str, Any]) -> dict:
    """Body of the ``historical_migration`` task: create the job of this run from its Params (or
    take the ``job_id`` Param), then run it to its end. A retry or a rerun of the run finds the
    same job (its id comes from the run id) and resumes after the last committed batch.

    Bad Params fail at once with one line; a quality gate failure fails without retries; a
    transient error (the target down) fails the try and Airflow's retries resume the job."""
    from erpsync.flows.base import RunSummary
    from erpsync.flows.migration import FLOW, MigrationSpec, job_id_for, run_job
    from erpsync.quality import QualityGateFailed
    from erpsync.state.migration_jobs import MigrationJobs

    params = dict(context.get("params") or {})
    flow_params = {**dict(params.get("flow_params") or {}),
                   **{k: params[k] for k in BUDGET_PARAMS if params.get(k) not in (None, "")}}
    started = dt.datetime.now(dt.UTC)
    with flow_context(FLOW, {**context, "params": flow_params}) as base:
        run_id = str(context.get("run_id") or "")
        given = str(params.get("job_id") or "").strip()
        job_id = given or job_id_for(run_id, str(params.get("entity") or "job"))
        existing = MigrationJobs(base.store).get(job_id)
        spec = None if existing is not None else MigrationSpec.from_params({**params, "flow_params": flow_params})
        if existing is not None:
            base.log.info("%s: resuming job %s (%s); its own range and settings apply", FLOW, job_id,
                          MigrationSpec.of(existing).describe())
        dag_id = getattr(context.get("dag"), "dag_id", None) or FLOW
        try:
            job = run_job(base, job_id, spec, owner=f"airflow:{dag_id}:{run_id}")
        except QualityGateFailed as exc:
            raise _fail(base.log, f"{FLOW} {job_id}: {exc}") from None
        summary = RunSummary(flow=FLOW, run_id=run_id, done=job.written, quarantined=job.failed, skipped=job.skipped)
        record_run(base, summary, started, dt.datetime.now(dt.UTC), context)
        report = job.report or {}
        if report.get("reconciled") is False:
            base.log.warning("%s %s: source and target differ in %s record(s): see the report above "
                             "(erpsync migration report %s)", FLOW, job.id, report.get("differences"), job.id)
        return {"job_id": job.id, "status": job.status, "processed": job.processed, "written": job.written,
                "skipped": job.skipped, "failed": job.failed, "reconciled": report.get("reconciled"),
                "differences": report.get("differences")}


def review_threshold() -> int:
    """``ERPSYNC_REVIEW_MAX_DEAD_LETTERS``: how many records one run may dead-letter before its
    ``review_dead_letters`` task fails (default 0: any dead letter turns the run red)."""
    import os

    from erpsync.errors import ConfigError

    raw = os.environ.get("ERPSYNC_REVIEW_MAX_DEAD_LETTERS", "").strip()
    try:
        value = int(raw) if raw else 0
    except ValueError:
        raise ConfigError(f"ERPSYNC_REVIEW_MAX_DEAD_LETTERS={raw!r}: a whole number >= 0, e.g. 0") from None
    if value < 0:
        raise ConfigError(f"ERPSYNC_REVIEW_MAX_DEAD_LETTERS={raw!r}: a whole number >= 0, e.g. 0")
    return value


def _mail_new_reasons(flow: str, letters: list[tuple[Any, ...]], context: Mapping[str, Any], log: Any) -> None:
    """The first dead letters of a reason new for the flow are mailed once (``notifiers.mail_new_reasons``:
    one mail per run, each reason at most once a day per flow), with links to them and the run. A mail
    that cannot be sent is logged and never changes the review's outcome."""
    try:
        from erpsync_airflow.hooks import StateStoreHook
        from erpsync_airflow.notifiers import mail_new_reasons

        mail_new_reasons(StateStoreHook().get_conn(), flow, str(context.get("run_id") or ""), letters)
    except Exception:
        log.exception("%s: the mail of new dead-letter reasons could not be sent", flow)


def run_review(flow: str, result: Mapping[str, Any] | None, context: Mapping[str, Any]) -> dict:
    """Body of ``review_dead_letters``: the dead letters the flow's task reported (its XCom), one
    line each; past the threshold the task fails (no retries) with that list."""
    from collections import Counter

    from erpsync.errors import ConfigError

    log = safe_logger(f"airflow.task.erpsync.{flow}")
    try:
        limit = review_threshold()
    except ConfigError as exc:
        raise _fail(log, f"{flow}: configuration error: {exc}") from None
    letters = [tuple(d) for d in (result or {}).get("dead_letters") or []]
    if not letters:
        log.info("%s: this run dead-lettered no record", flow)
        return {"dead_letters": 0, "threshold": limit}
    _mail_new_reasons(flow, letters, context, log)
    reasons = Counter(str(reason).split(":", 1)[0] for _id, _ext, reason in letters)
    ids = [int(d[0]) for d in letters]
    shown = "; ".join(f"#{i} {ext}: {reason}" for i, ext, reason in letters[:20])
    more = f"; and {len(letters) - 20} more" if len(letters) > 20 else ""
    line = (f"{flow}: this run dead-lettered {len(letters)} record(s) ("
            + ", ".join(f"{r} x{n}" for r, n in reasons.most_common()) + f"): {shown}{more}. "
            f"Fix the cause, then replay them from the erpsync Dead letters page or trigger "
            f'dead_letter_replay with {{"ids": {ids[:50]}, "dry_run": true}}')
    if len(letters) > limit:
        raise _fail(log, line + f" (more than ERPSYNC_REVIEW_MAX_DEAD_LETTERS={limit})")
    log.warning("%s", line)
    return {"dead_letters": len(letters), "threshold": limit, "ids": ids}
