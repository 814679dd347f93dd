"""Alert e-mails through the SMTP provider (Connection ``smtp_default``, or ``[email]
email_conn_id``): the task-failure callback, the deadline-miss callback, a plain sender for the
watchdog, held prices and the circuit breaker, and the mail of a run's first dead letters of a new
reason (``mail_new_reasons``). The text comes from ``erpsync.alerts``; every mail links to the page
that explains it (``alert_links()``: Airflow's ``[api] base_url`` and ``ERPSYNC_CONSOLE_URL``).

* recipients: ``ERPSYNC_ALERT_EMAILS`` (comma-separated), read when a mail is sent;
* sender: ``[email] from_email`` (``AIRFLOW__EMAIL__FROM_EMAIL``), else the connection's extra
  ``from_email``, else ``erpsync@localhost``;
* the body is the plain text of ``erpsync.alerts`` inside ``<pre>`` (the provider sends HTML).

Every mail passes ``erpsync.display`` in ``_TextMail._prepare``, the one place a mail is composed:
the subject is one bounded line, each body line is bounded, control characters and bidi
overrides are shown as escapes, and the HTML part escapes markup (``<script>`` is text).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from erpsync import display

log = logging.getLogger(__name__)

DEFAULT_RECIPIENTS = "erpsync-alerts@localhost"
DEFAULT_SENDER = "erpsync@localhost"


def alert_recipients() -> list[str]:
    raw = os.environ.get("ERPSYNC_ALERT_EMAILS", "").strip() or DEFAULT_RECIPIENTS
    return [r.strip() for r in raw.split(",") if r.strip()]


def sender() -> str | None:
    """``[email] from_email`` wins (the provider ignores the connection extra in places, #69262)."""
    try:
        from airflow.configuration import conf

        configured = conf.get("email", "from_email", fallback=None)
    except Exception:  # pragma: no cover - no Airflow config in this process
        configured = None
    return configured or os.environ.get("AIRFLOW__EMAIL__FROM_EMAIL") or None


def smtp_configured(conn_id: str | None = None) -> bool:
    """True when the SMTP connection exists (env ``AIRFLOW_CONN_SMTP_DEFAULT``, the UI, a backend)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    try:
        SmtpHook.get_connection(conn_id or _conn_id())
        return True
    except Exception:
        return False


def _conn_id() -> str:
    try:
        from airflow.configuration import conf

        return conf.get("email", "email_conn_id", fallback="smtp_default") or "smtp_default"
    except Exception:  # pragma: no cover
        return "smtp_default"


#: a mail subject is one line of at most this many characters
SUBJECT_CHARS = 200


def as_html(text: str) -> str:
    return f"<pre style=\"font-family: monospace\">{display.html_block(text)}</pre>"


class _TextMail(SmtpNotifier):
    """An SmtpNotifier whose subject and body are set from plain text just before sending."""

    def _prepare(self, subject: str, body: str) -> None:
        self.to = self.to or alert_recipients()
        self.from_email = self.from_email or sender()
        self.subject = display.line(subject, limit=SUBJECT_CHARS)
        self.html_content = as_html(body)

    def _send_sync(self, context: Any) -> None:
        with self.hook as smtp:
            if self.from_email is None:
                self.from_email = smtp.from_email or DEFAULT_SENDER
            smtp.send_email_smtp(
                smtp_conn_id=self.smtp_conn_id, from_email=self.from_email, to=self.to,
                subject=self.subject, html_content=self.html_content,
            )


class FailureNotifier(_TextMail):
    """``on_failure_callback`` of every erpsync task (set once in ``defaults.DEFAULT_ARGS``): one
    mail per failed task (after its last try) with DAG, task, run, try, the error in one line,
    the counts done / failed / quarantined and the link to the task log."""

    def __init__(self, to: str | list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(to=to or [], **kwargs)

    def notify(self, context: Any) -> None:
        from erpsync.alerts import FailureInfo, failure_mail, one_line

        ti = context.get("ti") or context.get("task_instance")
        exc = context.get("exception")
        dag_run = context.get("dag_run")
        task = context.get("task")
        logical = context.get("logical_date")
        info = FailureInfo(
            links=alert_links(),
            dag_id=str(getattr(ti, "dag_id", "") or getattr(dag_run, "dag_id", "?")),
            task_id=str(getattr(ti, "task_id", "?")),
            run_id=str(context.get("run_id") or getattr(ti, "run_id", "?")),
            try_number=getattr(ti, "try_number", None),
            max_tries=(getattr(task, "retries", 0) or 0) + 1 if task is not None else None,
            error=one_line(exc),
            log_url=_safe(lambda: ti.log_url),
            counts=getattr(exc, "erpsync_counts", None),
            quality_reports=tuple(getattr(exc, "erpsync_quality_reports", ()) or ()),
            logical_date=logical.isoformat() if hasattr(logical, "isoformat") else None,
        )
        # one instance serves every task of every DAG (DEFAULT_ARGS): never keep a mail on it
        mail = _TextMail(to=self.to or [], from_email=self.from_email, smtp_conn_id=self.smtp_conn_id)
        subject, body = failure_mail(info)
        mail._prepare(subject, body)
        if not smtp_configured(mail.smtp_conn_id):
            log.warning("no SMTP connection %r: the failure mail goes to the log\n%s\n%s",
                        mail.smtp_conn_id, mail.subject, display.block(body))
            return
        mail._send_sync(context)
        log.info("failure mail sent to %s: %s", ", ".join(mail.to), mail.subject)


class DeadlineMissNotifier(_TextMail):
    """Deadline-alert callback (``AsyncCallback``: it runs in the triggerer). The triggerer builds it
    with the alert's kwargs and a small context (``dag_run`` as JSON, ``deadline``) and awaits it."""

    def __init__(self, dag_id: str = "", limit: str = "", to: str | list[str] | None = None,
                 context: Any = None, **kwargs: Any) -> None:
        super().__init__(to=to or [], context=context, **kwargs)
        self.dag_id = dag_id
        self.limit = limit

    def _compose(self, context: Any) -> None:
        from erpsync.alerts import deadline_mail

        run = dict(context.get("dag_run") or {})
        deadline = dict(context.get("deadline") or {})
        dag_id = run.get("dag_id") or self.dag_id
        run_id = run.get("dag_run_id") or run.get("run_id") or "?"
        base = _base_url()
        subject, body = deadline_mail(
            dag_id, run_id,
            deadline_time=deadline.get("deadline_time"),
            queued_at=run.get("queued_at"),
            state=run.get("state"),
            limit=self.limit or None,
            run_url=f"{base}/dags/{dag_id}/runs/{run_id}" if base else None,
            links=alert_links(),
        )
        self._prepare(subject, body)

    @staticmethod
    def already_failed(context: Any) -> bool:
        """The run had failed when its deadline passed (Airflow prunes a deadline only when the run
        succeeds): its failed task already mailed through ``FailureNotifier`` (every erpsync task's
        ``on_failure_callback``), so a "missed deadline" mail would be a second alarm for one fault."""
        run = (context or {}).get("dag_run") or {}
        return isinstance(run, dict) and str(run.get("state") or "").lower() == "failed"

    def _skip(self, context: Any) -> bool:
        if not self.already_failed(context):
            return False
        run = dict(context.get("dag_run") or {})
        log.warning("deadline missed by %s run %s, which had already failed and was mailed as a failure: "
                    "no deadline mail", run.get("dag_id") or self.dag_id, run.get("dag_run_id") or run.get("run_id"))
        return True

    async def async_notify(self, context: Any) -> None:
        if self._skip(context):
            return
        self._compose(context)
        async with self.hook as smtp:
            if self.from_email is None:
                self.from_email = smtp.from_email or DEFAULT_SENDER
            await smtp.asend_email_smtp(
                smtp_conn_id=self.smtp_conn_id, from_email=self.from_email, to=self.to,
                subject=self.subject, html_content=self.html_content,
            )
        log.warning("deadline-miss mail sent to %s: %s", ", ".join(self.to), self.subject)

    def notify(self, context: Any) -> None:
        if self._skip(context):
            return
        self._compose(context)
        self._send_sync(context)


class AlertSender:
    """``send(subject, body)``: the watchdog, held prices and the breaker (``FlowContext.notifier``)."""

    def __init__(self, to: list[str] | None = None, smtp_conn_id: str | None = None) -> None:
        self.to = to
        self.smtp_conn_id = smtp_conn_id

    def send(self, subject: str, body: str) -> None:
        body = with_links(subject, body)
        mail = _TextMail(to=self.to or [], smtp_conn_id=self.smtp_conn_id)
        mail._prepare(subject, body)
        if not smtp_configured(mail.smtp_conn_id):
            log.warning("no SMTP connection %r: the alert goes to the log\n%s\n%s", mail.smtp_conn_id, mail.subject,
                        display.block(body))
            return
        mail._send_sync({})
        log.info("alert mail sent to %s: %s", ", ".join(mail.to), mail.subject)


def alert_links() -> Any:
    """The pages alert mails link to (``erpsync.alerts.Links``): Airflow's ``[api] base_url`` and
    the console (``ERPSYNC_CONSOLE_URL``, default ``<base_url>/erpsync``)."""
    from erpsync.alerts import Links

    return Links.from_env(_base_url() or None)


def with_links(subject: str, body: str) -> str:
    """``body`` with the page to act on: held changes open with the console's Approvals page (the
    CLI as the alternative, ``erpsync.alerts.lead_with_page``); the dashboard appended, unless the
    body links it already."""
    from erpsync.alerts import lead_with_page, links_footer

    links = alert_links()
    body = lead_with_page(subject, body, links)
    footer = [line for line in links_footer(subject, links).splitlines() if line.split(" ")[-1] not in body]
    return body + ("\n\n" + "\n".join(footer) if footer else "")


#: the state-store cursors remembering when a flow's dead-letter reason was last mailed
NEW_REASON_CURSORS = "alerts"


def mail_new_reasons(store: Any, flow: str, run_id: str, letters: Sequence[Sequence[Any]], *,
                     send: Callable[[str, str], Any] | None = None, links: Any = None,
                     now: dt.datetime | None = None) -> list[str]:
    """Mail the run's first dead letters of each reason not mailed for ``flow`` in the last 24
    hours (one mail for the run, all such reasons in it); returns the reasons mailed. ``letters``
    are ``(id, external id, reason)``. A reason counts as mailed only once the mail went out, so
    a mail that fails is tried again by the next run that dead-letters that reason."""
    from erpsync.alerts import new_reason_mail, new_reasons, reason_key

    if not letters:
        return []
    now = now or dt.datetime.now(dt.UTC)
    names = {reason_key(d[2]): f"new_reason:{flow}:{reason_key(d[2])}"[:128] for d in letters}
    last: dict[str, dt.datetime | None] = {}
    for key, name in names.items():
        raw = store.get_cursor(NEW_REASON_CURSORS, name=name)
        try:
            last[key] = dt.datetime.fromisoformat(raw) if raw else None
        except ValueError:
            last[key] = None  # an unreadable mark: mail (once more) rather than stay silent
    groups = new_reasons(letters, last, now=now)
    if not groups:
        return []
    if links is None:
        links = alert_links()
    subject, body = new_reason_mail(flow, run_id, groups, links=links)
    (send or AlertSender().send)(subject, body)
    for key in groups:
        store.set_cursor(NEW_REASON_CURSORS, now.isoformat(), name=names[key])
    log.warning("%s: new dead-letter reason(s) %s mailed: %s", flow, ", ".join(groups), subject)
    return list(groups)


def _base_url() -> str:
    try:
        from airflow.configuration import conf

        return str(conf.get("api", "base_url", fallback="") or "").rstrip("/")
    except Exception:  # pragma: no cover
        return ""


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None
