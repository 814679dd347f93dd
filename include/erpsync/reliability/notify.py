"""Breaker e-mails: the text is rendered here (core), sending goes through a small interface.

The Airflow side hands in whatever notifier it has (the SMTP notifier of issue 6 once it is
configured); without one, the e-mail text goes to the log, so nothing is silently dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from erpsync.reliability.breaker import BreakerState

log = logging.getLogger(__name__)


class Notifier(Protocol):
    def send(self, subject: str, body: str) -> None: ...


class LogNotifier:
    """Writes the e-mail to the log (the task log under Airflow)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log

    def send(self, subject: str, body: str) -> None:
        self.log.warning("NOTIFY %s\n%s", subject, body)


class RecordingNotifier:
    """Keeps what was sent (tests, the chaos suite)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, subject: str, body: str) -> None:
        self.sent.append((subject, body))


def render_breaker_email(event: str, state: BreakerState, *, queued: int | None) -> tuple[str, str]:
    """Subject and body of the e-mail for ``event`` (``opened`` or ``recovered``)."""
    system = state.system.upper() if len(state.system) <= 3 else state.system
    if event == "opened":
        subject = f"[erpsync] {system} unreachable: circuit opened, work is queued"
        lines = [
            f"erpsync stopped calling the {state.system} after {state.failures} consecutive failures.",
            f"Last error: {state.last_error or 'n/a'}",
            f"Opened at: {state.opened_at:%Y-%m-%d %H:%M:%S} UTC" if state.opened_at else "",
            "",
            "What happens now: every flow keeps the records meant for this system in the outbox of "
            "the state store, in order. A probe call is made after the cooldown; when it succeeds the "
            "queue drains automatically and you get one recovery e-mail.",
        ]
        if queued is not None:
            lines.append(f"Queued right now: {queued} record(s).")
        lines += ["", "Nothing to do unless the outage lasts: see docs/runbooks/erp-outage.md."]
    else:
        subject = f"[erpsync] {system} recovered: circuit closed, queue draining"
        lines = [
            f"A probe call to the {state.system} succeeded; calls resume.",
            "The records queued during the outage are being sent in order by the next runs.",
        ]
        if queued is not None:
            lines.append(f"Still queued: {queued} record(s).")
        lines += ["", "Check: erpsync outbox status"]
    return subject, "\n".join(x for x in lines if x is not None)
