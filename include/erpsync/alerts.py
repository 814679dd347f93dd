"""The text of the alert e-mails erpsync sends: task failures, missed deadlines and the watchdog's
findings (the held-prices list is rendered by ``erpsync.flows.pricing.render_held``; the breaker
e-mails by ``erpsync.reliability.notify``). Rendering only (plain text a person can act on); sending is the
Airflow side's job (``erpsync_airflow.notifiers``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from erpsync import display

PREFIX = "[erpsync]"
MAX_ERROR_CHARS = 300


def one_line(error: BaseException | str | None, limit: int = MAX_ERROR_CHARS) -> str:
    """``ValueError: first line of the message`` (no traceback, at most ``limit`` characters)."""
    if error is None:
        return "no error recorded (see the task log)"
    if isinstance(error, BaseException):
        text = str(error).strip()
        first = text.splitlines()[0].strip() if text else ""
        line = f"{type(error).__name__}: {first}" if first else type(error).__name__
    else:
        line = (error.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(slots=True)
class FailureInfo:
    dag_id: str
    task_id: str
    run_id: str
    try_number: int | None
    max_tries: int | None
    error: str
    log_url: str | None = None
    counts: Mapping[str, Any] | None = None  # done / failed / quarantined / skipped of the flow run
    quality_reports: Sequence[str] = field(default_factory=tuple)
    logical_date: str | None = None


def failure_mail(info: FailureInfo) -> tuple[str, str]:
    # every field may carry data (an error message quotes a record): one bounded, neutralised line each
    info = dataclasses.replace(
        info, dag_id=display.line(info.dag_id), task_id=display.line(info.task_id), run_id=display.line(info.run_id),
        error=display.line(info.error, limit=MAX_ERROR_CHARS),
        log_url=display.line(info.log_url, limit=500) if info.log_url else None,
        quality_reports=tuple(display.line(r, limit=500) for r in info.quality_reports),
        logical_date=display.line(info.logical_date) if info.logical_date else None,
    )
    subject = f"{PREFIX} {info.dag_id}.{info.task_id} failed: {info.error[:120]}"
    tries = f"{info.try_number}" + (f" of {info.max_tries}" if info.max_tries else "")
    lines = [
        f"DAG:    {info.dag_id}",
        f"Task:   {info.task_id}",
        f"Run:    {info.run_id}" + (f" (logical date {info.logical_date})" if info.logical_date else ""),
        f"Try:    {tries}",
        f"Error:  {info.error}",
    ]
    if info.counts:
        c = info.counts
        lines.append(
            f"Records: done={c.get('done', 0)} failed={c.get('failed', 0)} "
            f"quarantined={c.get('quarantined', 0)} skipped={c.get('skipped', 0)}"
            + (f" read={c['read']} compared={c.get('compared', 0)}" if c.get("read") else "")
        )
        reasons = c.get("reasons") or {}
        if reasons:
            top = sorted(reasons.items(), key=lambda kv: -kv[1])[:5]
            lines.append("Top reasons: " + ", ".join(f"{display.line(r, limit=80)} x{n}" for r, n in top))
    else:
        lines.append("Records: not counted (the run stopped before its summary; the task log says what was done)")
    if info.log_url:
        lines.append(f"Log:    {info.log_url}")
    for report in info.quality_reports:
        lines.append(f"Quality report: {report}")
    lines += [
        "",
        "What to do: read the log line above the error; records that could not be synced are in the",
        f"dead letters (erpsync dead-letters list --flow {info.dag_id}). Fix the cause, then clear the",
        "task in the Airflow UI; every write is idempotent, so a rerun never duplicates.",
    ]
    return subject, "\n".join(lines)


def deadline_mail(
    dag_id: str,
    run_id: str,
    *,
    deadline_time: str | dt.datetime | None,
    queued_at: str | None = None,
    state: str | None = None,
    limit: str | None = None,
    run_url: str | None = None,
) -> tuple[str, str]:
    dag_id, run_id = display.line(dag_id), display.line(run_id)
    subject = f"{PREFIX} {dag_id} missed its deadline" + (f" ({limit})" if limit else "")
    lines = [
        f"DAG:       {dag_id}",
        f"Run:       {run_id}",
        f"Queued at: {queued_at or '?'}",
        f"Deadline:  {deadline_time or '?'}" + (f" ({limit} after it was queued)" if limit else ""),
        f"State:     {state or '?'} (when the deadline passed)",
    ]
    if run_url:
        lines.append(f"Run page:  {run_url}")
    lines += [
        "",
        "The run had not finished by its deadline: data is late, or the run is stuck. Check the run",
        "page: a task queued for long means no free worker slot; a task running for long means a slow",
        "or unreachable system (see docs/runbooks/silent-stop.md). The run goes on; this is a warning.",
    ]
    return subject, "\n".join(lines)


def watchdog_mail(findings: Sequence[Any], *, now: dt.datetime | None = None) -> tuple[str, str]:
    """``findings`` are ``erpsync.watchdog.Finding`` (check, flow, message, hint)."""
    kinds = sorted({f.check for f in findings})
    subject = f"{PREFIX} watchdog: {len(findings)} problem(s): {', '.join(kinds)}"
    lines = [f"The sync watchdog found {len(findings)} problem(s)" + (f" at {now:%Y-%m-%d %H:%M} UTC" if now else "") + ":", ""]
    for f in findings:
        lines.append(f"- [{display.line(f.check)}] {display.line(f.flow)}: {display.line(f.message, limit=1000)}")
        if f.hint:
            lines.append(f"    what to do: {display.line(f.hint, limit=1000)}")
    lines += ["", "Runbook: docs/runbooks/silent-stop.md"]
    return subject, "\n".join(lines)
