"""The text of the alert e-mails erpsync sends: task failures, missed deadlines, the watchdog's
findings and the first dead letters of a new reason (the held-prices list is rendered by
``erpsync.flows.pricing.render_held``; the breaker e-mails by ``erpsync.reliability.notify``).
Rendering only (plain text a person can act on); sending is the Airflow side's job
(``erpsync_airflow.notifiers``).

Every mail links to the page that explains it (``Links``): the run in Airflow's UI, the dead
letter or the flow's dead letters in the erpsync console, the console's dashboard; mails rendered
elsewhere get the page in a footer when sent (``links_footer``). The base URLs: Airflow's
``[api] base_url`` and ``ERPSYNC_CONSOLE_URL`` (default ``<base_url>/erpsync``,
``erpsync.config.console_url``). Airflow 3.3 has no default for ``[api] base_url`` (its own log
links then guess ``http://localhost:8080``, right only on the Airflow machine): without it a mail
has no links to guess, and says which setting gives them rather than dropping them silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from erpsync import config, display
from erpsync.errors import ConfigError

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


@dataclass(frozen=True, slots=True)
class Links:
    """The pages a mail links to; ``None`` bases give no links."""

    airflow: str | None  # Airflow's UI base URL ([api] base_url)
    console: str | None  # the erpsync console (ERPSYNC_CONSOLE_URL, default <airflow>/erpsync)
    problem: str | None = None  # why there are no console links (a bad setting): said in the mail

    @classmethod
    def from_env(cls, airflow_base: str | None = None) -> Links:
        """``airflow_base`` (Airflow's ``[api] base_url`` as the Airflow side reads it, else
        ``AIRFLOW__API__BASE_URL``) and ``erpsync.config.console_url``. A missing or relative base
        URL, or a bad ``ERPSYNC_CONSOLE_URL``, never stops an alert: the mail goes out with the
        links it can make and a ``Links:`` line naming the setting that gives the others."""
        raw = (airflow_base if airflow_base is not None else os.environ.get("AIRFLOW__API__BASE_URL", "")).strip()
        base = raw.rstrip("/") or None
        problems = []
        if base is not None and not base.lower().startswith(("http://", "https://")):
            problems.append(f"[api] base_url={raw!r} is not an absolute http(s) URL, so it cannot be linked")
            base = None
        try:
            console = config.console_url(base or "")
        except ConfigError as exc:
            console = None
            problems.append(f"no console links: {exc}")
        if base is None:
            missing = "Airflow's UI" + ("" if console or problems else " or the erpsync console")
            problems.append(f"no links to {missing}: set Airflow's [api] base_url (environment "
                            f"AIRFLOW__API__BASE_URL=https://airflow.example.com, the address people open) "
                            "for the scheduler, workers, dag processor and triggerer; Airflow has no default")
        return cls(base, console, "; ".join(problems) or None)

    @property
    def no_link(self) -> str:
        """Said in place of a page's link that cannot be made (the ``Links:`` line says why)."""
        return "(no link: see Links below)" if self.problem else "(no link)"

    def lines(self, *pairs: tuple[str, str | None]) -> list[str]:
        """``label url`` lines of the pairs that have a URL, and the reason when links are missing."""
        return _link_lines(*pairs) + ([f"Links: {self.problem}"] if self.problem else [])

    def run(self, flow: str, run_id: str) -> str | None:
        if not self.airflow or not run_id or run_id == "?":
            return None
        return f"{self.airflow}/dags/{_q(flow)}/runs/{_q(run_id)}"

    def dag(self, flow: str) -> str | None:
        return f"{self.airflow}/dags/{_q(flow)}" if self.airflow and flow else None

    def dead_letter(self, dead_letter_id: int) -> str | None:
        return f"{self.console}/dead-letters/{int(dead_letter_id)}" if self.console else None

    def dead_letters(self, flow: str, reason: str | None = None) -> str | None:
        if not self.console:
            return None
        query = {"flow": flow, **({"reason": reason} if reason else {})}
        return f"{self.console}/dead-letters?{urllib.parse.urlencode(query)}"

    def approvals(self, flow: str) -> str | None:
        return f"{self.console}/approvals?{urllib.parse.urlencode({'flow': flow})}" if self.console else None

    def dashboard(self) -> str | None:
        return f"{self.console}/dashboard" if self.console else None


def _q(value: str) -> str:
    return urllib.parse.quote(str(value), safe="")


def _link_lines(*pairs: tuple[str, str | None]) -> list[str]:
    return [f"{label} {url}" for label, url in pairs if url]


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
    links: Links | None = None


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
    if info.links:
        lines += info.links.lines(("Run page: ", info.links.run(info.dag_id, info.run_id)),
                             ("Dead letters:", info.links.dead_letters(info.dag_id)),
                             ("Dashboard:", info.links.dashboard()))
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
    links: Links | None = None,
) -> tuple[str, str]:
    if run_url is None and links is not None:
        run_url = links.run(dag_id, run_id)
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
    if links is not None:
        lines += links.lines(("Dashboard:", links.dashboard()))
    lines += [
        "",
        "The run had not finished by its deadline: data is late, or the run is stuck. Check the run",
        "page: a task queued for long means no free worker slot; a task running for long means a slow",
        "or unreachable system (see docs/runbooks/silent-stop.md). The run goes on; this is a warning.",
    ]
    return subject, "\n".join(lines)


#: which page explains a watchdog finding: the flow's dead letters, else its runs in Airflow
_FINDING_PAGE = {"dead_letters_piling": "dead_letters"}


def watchdog_mail(findings: Sequence[Any], *, now: dt.datetime | None = None,
                  links: Links | None = None) -> tuple[str, str]:
    """``findings`` are ``erpsync.watchdog.Finding`` (check, flow, message, hint); ``links``
    default to ``Links.from_env()``."""
    links = links if links is not None else Links.from_env()
    kinds = sorted({f.check for f in findings})
    subject = f"{PREFIX} watchdog: {len(findings)} problem(s): {', '.join(kinds)}"
    lines = [f"The sync watchdog found {len(findings)} problem(s)" + (f" at {now:%Y-%m-%d %H:%M} UTC" if now else "") + ":", ""]
    for f in findings:
        lines.append(f"- [{display.line(f.check)}] {display.line(f.flow)}: {display.line(f.message, limit=1000)}")
        if f.hint:
            lines.append(f"    what to do: {display.line(f.hint, limit=1000)}")
        dead = _FINDING_PAGE.get(f.check) == "dead_letters"
        page = links.dead_letters(f.flow) if dead else links.dag(f.flow)
        where = "the flow's dead letters in the erpsync console" if dead else "the flow's runs in Airflow's UI"
        lines.append(f"    see: {page}" if page else f"    see: {where} {links.no_link}")
    lines += ["", *links.lines(("Dashboard:", links.dashboard())), "Runbook: docs/runbooks/silent-stop.md"]
    return subject, "\n".join(lines)


def _held_for_approval(subject: str) -> bool:
    return " held " in subject and "approval" in subject


#: where the CLI block of a held-changes mail begins (``erpsync.flows.pricing.render_held``)
_CLI_BLOCK = "\nReview:   erpsync approvals"


def lead_with_page(subject: str, body: str, links: Links) -> str:
    """A held-changes mail rendered elsewhere (``[erpsync] <flow> held ... for approval``) opens
    with the console's Approvals page of that flow, where a person decides in two clicks as their
    Airflow user, with the ERP's value now beside each change; the erpsync CLI lines the body ends
    with stay, as the alternative. Without a base URL the first line still names the page and says
    why there is no link. Any other mail is returned as it is."""
    if not _held_for_approval(subject):
        return body
    flow = subject.removeprefix(PREFIX).strip().split(" ", 1)[0]
    page = links.approvals(flow)
    if page and page in body:
        return body
    lead = (f"Approve or reject in the erpsync console: {page}" if page else
            "Approve or reject on the erpsync console's Approvals page (Airflow: Browse > Sync health > "
            f"Approvals) {links.no_link}")
    body = body.replace(_CLI_BLOCK, "\nOr from a terminal:" + _CLI_BLOCK, 1)
    return f"{lead}\n(as your Airflow user, each change beside the ERP's value now; or with the CLI below)\n\n{body}"


def links_footer(subject: str, links: Links) -> str:
    """The page a mail rendered elsewhere (held prices, the breaker) links to, as lines to append:
    held changes -> the console's Approvals page of that flow; anything else -> the dashboard."""
    flow = subject.removeprefix(PREFIX).strip().split(" ", 1)[0]
    pairs: list[tuple[str, str | None]] = []
    if _held_for_approval(subject):
        pairs.append(("Approvals:", links.approvals(flow)))
    pairs.append(("Dashboard:", links.dashboard()))
    return "\n".join(links.lines(*pairs))


# --------------------------------------------------------------------------- new dead-letter reasons

#: a reason is mailed at most once per flow in this window
NEW_REASON_WINDOW = dt.timedelta(hours=24)
#: records listed per reason in the mail
NEW_REASON_LISTED = 5


def reason_key(reason: str) -> str:
    """The kind of a dead letter's reason (``unknown_sku: SKU-1`` -> ``unknown_sku``), bounded."""
    return display.line(str(reason).split(":", 1)[0].strip() or "unknown", limit=80)


def new_reasons(letters: Iterable[Sequence[Any]], last_mailed: Mapping[str, dt.datetime | None], *,
                now: dt.datetime, window: dt.timedelta = NEW_REASON_WINDOW) -> dict[str, list[Sequence[Any]]]:
    """The run's dead letters ``(id, external id, reason)`` grouped by reason kind, only the kinds
    not mailed for this flow within ``window`` (``last_mailed``: kind -> when it was), in order of
    first appearance."""
    groups: dict[str, list[Sequence[Any]]] = {}
    for letter in letters:
        key = reason_key(letter[2])
        at = last_mailed.get(key)
        if at is not None and now - at < window:
            continue
        groups.setdefault(key, []).append(letter)
    return groups


def new_reason_mail(flow: str, run_id: str, groups: Mapping[str, Sequence[Sequence[Any]]], *,
                    links: Links) -> tuple[str, str]:
    """The first dead letters of reasons new for ``flow`` (``new_reasons``), one mail per run."""
    flow_l, run_l = display.line(flow), display.line(run_id)
    total = sum(len(v) for v in groups.values())
    kinds = ", ".join(groups)
    subject = (f"{PREFIX} {flow_l}: new dead-letter reason{'s' if len(groups) != 1 else ''} {kinds} "
               f"({total} record{'s' if total != 1 else ''})")
    lines = [f"Run {run_l} of {flow_l} dead-lettered records for a reason not seen (or not mailed) in the last "
             f"{int(NEW_REASON_WINDOW.total_seconds() // 3600)} hours. Nothing else was held up: the rest of the "
             "batch went on.", ""]
    for key, letters in groups.items():
        first = letters[0]
        lines.append(f"{key}: {len(letters)} record(s), first: #{first[0]} {display.line(first[1])}: "
                     f"{display.line(first[2], limit=300)}")
        for other in letters[1:NEW_REASON_LISTED]:
            lines.append(f"    also #{other[0]} {display.line(other[1])}: {display.line(other[2], limit=200)}")
        if len(letters) > NEW_REASON_LISTED:
            lines.append(f"    ... and {len(letters) - NEW_REASON_LISTED} more")
        lines += [f"    {label} {url}" for label, url in (("dead letter:", links.dead_letter(first[0])),
                                                           ("all of them:", links.dead_letters(flow, key))) if url]
    lines.append("")
    lines += links.lines(("Run page: ", links.run(flow, run_id)), ("Dashboard:", links.dashboard()))
    lines += ["", "What to do: open the dead letter, fix the cause where it lives (a cross-reference, the record "
              "in its system), then replay it from the console. The same reason is mailed again for this flow "
              "after 24 hours at the earliest; the watchdog still mails when dead letters pile up. Runbook: "
              "docs/runbooks/dead-letters.md"]
    return subject, "\n".join(lines)
