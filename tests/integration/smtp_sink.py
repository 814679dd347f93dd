"""A real SMTP server for the alert tests (aiosmtpd, in a thread, on a free port) and the
Airflow connection pointing at it. Import the fixtures into a test module:
``from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: F401``."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class Mail:
    sender: str
    to: list[str]
    subject: str
    text: str  # the body with HTML tags removed and entities decoded
    raw: str = ""  # the text parts as sent (HTML markup included)


class Sink:
    """Collects every message the server receives."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        parts = [p for p in msg.walk() if p.get_content_maintype() == "text"]
        raw = "\n".join(p.get_content() for p in parts)
        text = html.unescape(re.sub(r"<[^>]+>", "", raw))
        with self._lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), str(msg["subject"]), text, raw))
        return "250 OK"

    def wait(self, count: int = 1, timeout: float = 30.0, match: str | None = None) -> list[Mail]:
        """The mails (whose subject contains ``match``) once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [m for m in self.mails if match is None or match in m.subject]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def clear(self) -> None:
        with self._lock:
            self.mails.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SmtpServer:
    host: str
    port: int
    sink: Sink

    @property
    def connection(self) -> str:
        return json.dumps({
            "conn_type": "smtp", "host": self.host, "port": self.port, "login": None, "password": None,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.com"},
        })


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, sink)
    finally:
        controller.stop()


@pytest.fixture
def smtp_connection(smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    """``smtp_default`` pointing at the sink, sender and recipients set; the sink emptied."""
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.connection)
    monkeypatch.setenv("AIRFLOW__EMAIL__FROM_EMAIL", "erpsync-airflow@example.com")
    monkeypatch.setenv("ERPSYNC_ALERT_EMAILS", "ops@example.com")
    smtp.sink.clear()
    return smtp
