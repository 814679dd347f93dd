"""`erpsync migration ...`: start, resume, follow and inspect historical migrations from a terminal.

``start`` and ``resume`` run the migration in this process (no Airflow scheduler needed; the
adapters come from the same Connections as the tasks) with a progress bar on stderr. ``follow``
watches a job that runs elsewhere (the ``historical_migration`` DAG, another terminal) from the
state store. Jobs are shared: a job started here can be resumed by the DAG (Param ``job_id``) and
the other way round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from typing import IO, Any

from erpsync_airflow.cli._common import flow_context, store, table

FINAL = ("succeeded", "failed", "stopped")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("migration", help="historical migrations: start, resume, follow, status, report")
    s = p.add_subparsers(dest="cmd", required=True)

    st = s.add_parser("start", help="start a migration here, with a progress bar (resumes it if the job exists)",
                      description="Migrate the records of one entity changed in [--from, --to) in checkpointed "
                      "batches through the live flow's writer; ends with the reconciliation report. Valid: "
                      "customers, orders, returns store_to_erp; products, shipments erp_to_store.")
    st.add_argument("--entity", required=True, help="customers | products | orders | shipments | returns")
    st.add_argument("--direction", help="store_to_erp | erp_to_store (default: the entity's only one)")
    st.add_argument("--from", dest="date_from", required=True, help="changed at or after (YYYY-MM-DD or ISO 8601, UTC)")
    st.add_argument("--to", dest="date_to", help="changed before (exclusive; default: now)")
    st.add_argument("--batch-size", type=int, default=1000, help="records per checkpointed batch (default 1000)")
    st.add_argument("--dry-run", action="store_true", help="report what would be written; write nothing")
    st.add_argument("--job-id", help="name the job (default: <entity>-<UTC time>)")
    st.add_argument("--erp-rps", type=float, help="rate budget: ERP requests per second")
    st.add_argument("--storefront-rps", type=float, help="rate budget: storefront requests per second")
    st.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="params of the live flow, e.g. guest_policy=create, write_concurrency=8")
    _run_options(st)
    st.set_defaults(func=_start)

    rs = s.add_parser("resume", help="go on with a job after its last committed batch")
    rs.add_argument("job_id")
    rs.add_argument("--force", action="store_true",
                    help="take the job even if another process holds its lease (only when that one is gone)")
    _run_options(rs)
    rs.set_defaults(func=_resume)

    fo = s.add_parser("follow", help="watch a job that runs elsewhere (the DAG, another terminal)")
    fo.add_argument("job_id")
    fo.add_argument("--interval", type=float, default=1.0, help="seconds between looks (default 1)")
    fo.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    fo.set_defaults(func=_follow)

    ls = s.add_parser("status", help="list the jobs (newest first), or one job in full")
    ls.add_argument("job_id", nargs="?")
    ls.add_argument("--limit", type=int, default=20)
    ls.set_defaults(func=_status)

    rp = s.add_parser("report", help="the reconciliation report of a finished job")
    rp.add_argument("job_id")
    rp.add_argument("--all", action="store_true", help="every record that did not make it (from the drift report)")
    rp.add_argument("--json", action="store_true", help="the report as JSON")
    rp.set_defaults(func=_report)


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", action="store_true", help="log every record as the task log does")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (a line per batch on stderr)")


# --------------------------------------------------------------------------- progress bar


class ProgressBar:
    """On a terminal, a ``rich`` progress bar redrawn in place (the job's line beside it); a plain line
    per update when stderr is not a terminal (a log, a pipe, ``--no-progress``)."""

    def __init__(self, stream: IO[str] | None = None, *, width: int = 28, redraw: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.redraw = self.stream.isatty() if redraw is None else redraw
        self._live: Any = None
        self._task: Any = None

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        console = Console(file=self.stream, force_terminal=True, soft_wrap=True)
        self._live = Progress(BarColumn(bar_width=self.width), TextColumn("{task.description}"),
                              console=console, auto_refresh=False, transient=False)
        self._live.start()
        self._task = self._live.add_task("", total=None)

    def show(self, job: Any, progress: Any, now: float | None = None) -> None:
        from erpsync.flows.migration import progress_line

        now = time.monotonic() if now is None else now
        line = progress_line(job, progress, now)
        if not self.redraw:
            self.stream.write(line + "\n")
            self.stream.flush()
            return
        if self._live is None:
            self._start()
        self._live.update(self._task, description=line, total=progress.total, completed=progress.done)
        self._live.refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.stream.flush()


# --------------------------------------------------------------------------- commands


def _params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"erpsync: --param {pair!r} is not KEY=VALUE")
        try:
            out[key] = json.loads(value)  # numbers and booleans keep their type
        except ValueError:
            out[key] = value
    return out


def _start(args: argparse.Namespace) -> int:
    from erpsync.flows.migration import ENTITIES, MigrationSpec, new_job_id

    flow_params = _params(args.param)
    for key, value in (("erp_rps", args.erp_rps), ("storefront_rps", args.storefront_rps)):
        if value:
            flow_params[key] = value
    entity = str(args.entity).strip().lower()
    direction = args.direction or (ENTITIES[entity].direction if entity in ENTITIES else "")
    spec = MigrationSpec.from_params({"entity": entity, "direction": direction, "date_from": args.date_from,
                                      "date_to": args.date_to, "batch_size": args.batch_size,
                                      "dry_run": args.dry_run, "flow_params": flow_params})
    return _run(args, args.job_id or new_job_id(spec.entity), spec, flow_params, force=False)


def _resume(args: argparse.Namespace) -> int:
    from erpsync.state.migration_jobs import MigrationJobs

    job = MigrationJobs(store()).get(args.job_id)
    if job is None:
        print(f"erpsync: no migration job {args.job_id!r} (erpsync migration status lists them)", file=sys.stderr)
        return 1
    return _run(args, job.id, None, dict(job.params), force=args.force)


def _run(args: argparse.Namespace, job_id: str, spec: Any, flow_params: dict[str, Any], *, force: bool) -> int:
    from erpsync.flows.migration import FLOW, render_report, run_job

    ctx = flow_context(FLOW, flow_params)
    if not args.verbose:  # the bar tells the story; each record's line is for the task log
        for name in (ctx.log.name, "great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)
    view = ProgressBar(redraw=False if args.no_progress else None)
    print(f"{FLOW} {job_id}: {spec.describe() if spec else 'resuming'}; "
          f"stop with Ctrl-C, go on with: erpsync migration resume {job_id}", file=sys.stderr)
    try:
        job = run_job(ctx, job_id, spec, force=force, on_progress=view.show)
    except KeyboardInterrupt:
        view.close()
        print(f"stopped after the last committed batch; go on with: erpsync migration resume {job_id}",
              file=sys.stderr)
        return 130
    finally:
        view.close()
    print(render_report(job.report or {}))
    return 0 if job.dry_run or (job.report or {}).get("reconciled") else 1


def _follow(args: argparse.Namespace) -> int:
    from erpsync.flows.migration import Progress, owner_is_gone, render_report
    from erpsync.state.migration_jobs import MigrationJobs

    jobs = MigrationJobs(store(migrate=False))
    job = jobs.get(args.job_id)
    if job is None:
        print(f"erpsync: no migration job {args.job_id!r}", file=sys.stderr)
        return 1
    view = ProgressBar()
    started = time.monotonic()
    progress = Progress(job.total, job.processed, job.processed, started)
    seen_batches = -1
    try:
        while True:
            job = jobs.get(args.job_id)
            assert job is not None
            progress.done, progress.total = job.processed, job.total
            if job.batches != seen_batches or view.redraw:
                view.show(job, progress)
                seen_batches = job.batches
            if job.status in FINAL:
                break
            if job.status == "running" and (owner_is_gone(job.owner) or (
                    job.lease_until is not None and job.lease_until < dt.datetime.now(dt.UTC))):
                view.close()
                print(f"{job.id}: nobody runs it any more ({job.owner} is gone or its lease ran out); "
                      f"go on with: erpsync migration resume {job.id}", file=sys.stderr)
                return 1
            if args.timeout is not None and time.monotonic() - started > args.timeout:
                view.close()
                print(f"erpsync: {args.job_id} still {job.status} after {args.timeout:g} s", file=sys.stderr)
                return 3
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 130
    finally:
        view.close()
    if job.status != "succeeded":
        print(f"{job.id}: {job.status}{': ' + job.error if job.error else ''}; "
              f"go on with: erpsync migration resume {job.id}", file=sys.stderr)
        return 1
    print(render_report(job.report or {}))
    return 0 if job.dry_run or (job.report or {}).get("reconciled") else 1


def _row(job: Any) -> dict[str, Any]:
    total = f"{job.total:,}" if job.total is not None else "?"
    return {"id": job.id, "entity": job.entity, "direction": job.direction,
            "range": f"{job.date_from:%Y-%m-%d} .. {job.date_to:%Y-%m-%d}", "dry_run": job.dry_run,
            "status": job.status, "done": f"{job.processed:,}/{total}", "written": job.written,
            "skipped": job.skipped, "failed": job.failed, "batches": job.batches,
            "updated": f"{job.updated_at:%Y-%m-%d %H:%M:%S}", "owner": job.owner or ""}


def _status(args: argparse.Namespace) -> int:
    from erpsync.state.migration_jobs import MigrationJobs

    jobs = MigrationJobs(store())
    if args.job_id:
        job = jobs.get(args.job_id)
        if job is None:
            print(f"erpsync: no migration job {args.job_id!r}", file=sys.stderr)
            return 1
        for key, value in _row(job).items():
            print(f"{key:>10}: {value}")
        print(f"{'counts':>10}: {json.dumps(job.counts, sort_keys=True)}")
        if job.error:
            print(f"{'error':>10}: {job.error}")
        return 0
    rows = [_row(j) for j in jobs.list(limit=args.limit)]
    print(table(rows, list(rows[0])) if rows else "no migration jobs yet")
    return 0


def _report(args: argparse.Namespace) -> int:
    from erpsync.flows.migration import FLOW, render_report
    from erpsync.state.migration_jobs import MigrationJobs

    st = store()
    job = MigrationJobs(st).get(args.job_id)
    if job is None or not job.report:
        print(f"erpsync: {args.job_id}: no report ({'no such job' if job is None else job.status})", file=sys.stderr)
        return 1
    report = dict(job.report)
    if args.all:
        found = [r for r in st.list_drift_reports(flow=FLOW, limit=1000) if r.run_id == job.id]
        full = st.get_drift_report(found[0].id) if found else None
        if full is not None:
            report["items"] = [dict(i.detail) for i in full.items]
            report.pop("items_truncated", None)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render_report(report, max_items=len(report.get("items") or []) if args.all else 20))
    return 0
