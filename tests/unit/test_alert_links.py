"""Alerts that help (issue 20 item 7): every alert e-mail links to the page that explains it, and
the first dead letter of a new reason for a flow is mailed once (grouped per run, at most once per
flow and reason in 24 hours), not only past the watchdog's hourly threshold."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from erpsync import config
from erpsync.alerts import (
    FailureInfo,
    Links,
    deadline_mail,
    failure_mail,
    links_footer,
    new_reason_mail,
    new_reasons,
    watchdog_mail,
)
from erpsync.errors import ConfigError
from erpsync.watchdog import Finding

LINKS = Links(airflow="http://airflow.example:8080", console="http://airflow.example:8080/erpsync")
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def test_console_url_from_the_environment_or_airflows_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERPSYNC_CONSOLE_URL", raising=False)
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert config.console_url() is None and config.console_url("http://af:8080/") == "http://af:8080/erpsync"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://ops.example")
    assert config.console_url() == "https://ops.example/erpsync"
    monkeypatch.setenv("ERPSYNC_CONSOLE_URL", "https://console.example/erpsync/")
    assert config.console_url("http://ignored") == "https://console.example/erpsync"
    monkeypatch.setenv("ERPSYNC_CONSOLE_URL", "console.example")
    with pytest.raises(ConfigError, match="ERPSYNC_CONSOLE_URL"):
        config.console_url()


def test_links_quote_what_they_carry() -> None:
    assert LINKS.run("orders_sync", "scheduled__2026-12-07T11:00:00+00:00") == (
        "http://airflow.example:8080/dags/orders_sync/runs/scheduled__2026-12-07T11%3A00%3A00%2B00%3A00")
    assert LINKS.dead_letter(42) == "http://airflow.example:8080/erpsync/dead-letters/42"
    assert LINKS.dead_letters("orders_sync", reason="unknown sku") == (
        "http://airflow.example:8080/erpsync/dead-letters?flow=orders_sync&reason=unknown+sku")
    assert LINKS.dashboard() == "http://airflow.example:8080/erpsync/dashboard"
    assert Links(None, None).run("f", "r") is None and Links(None, None).dashboard() is None


def test_failure_mail_links_the_run_and_its_dead_letters() -> None:
    _, body = failure_mail(FailureInfo("orders_sync", "sync_orders", "manual__1", 1, 4, "E: x", links=LINKS))
    lines = body.splitlines()
    assert "Run page:  http://airflow.example:8080/dags/orders_sync/runs/manual__1" in lines
    assert "Dead letters: http://airflow.example:8080/erpsync/dead-letters?flow=orders_sync" in lines
    assert "Dashboard: http://airflow.example:8080/erpsync/dashboard" in lines


def test_deadline_and_watchdog_mails_link_their_pages() -> None:
    _, body = deadline_mail("orders_sync", "r1", deadline_time=None, links=LINKS)
    assert "Run page:  http://airflow.example:8080/dags/orders_sync/runs/r1" in body
    assert "Dashboard: http://airflow.example:8080/erpsync/dashboard" in body
    findings = [Finding("dead_letters_piling", "orders_sync", "130 open", "replay them"),
                Finding("flow_overdue", "pricing_sync", "no run for 3 h", "")]
    _, body = watchdog_mail(findings, now=NOW, links=LINKS)
    assert "    see: http://airflow.example:8080/erpsync/dead-letters?flow=orders_sync" in body
    assert "    see: http://airflow.example:8080/dags/pricing_sync" in body
    assert "Dashboard: http://airflow.example:8080/erpsync/dashboard" in body


def test_held_prices_and_other_sent_alerts_get_their_page_in_a_footer() -> None:
    assert "Approvals: http://airflow.example:8080/erpsync/approvals?flow=pricing_sync" in links_footer(
        "[erpsync] pricing_sync held 3 price changes for approval", LINKS)
    assert "Dashboard: http://airflow.example:8080/erpsync/dashboard" in links_footer("[erpsync] breaker open", LINKS)
    assert links_footer("[erpsync] anything", Links(None, None)) == ""


def _letter(i: int, reason: str, ext: str = "") -> tuple[int, str, str]:
    return (i, ext or f"ORD-{i}", reason)


def test_only_reasons_not_mailed_in_the_window_are_new_grouped_per_reason() -> None:
    letters = [_letter(1, "unknown_sku: SKU-9"), _letter(2, "unknown_sku: SKU-8"), _letter(3, "mapping_error: x"),
               _letter(4, "customer_rejected: 422")]
    last = {"mapping_error": NOW - dt.timedelta(hours=2), "customer_rejected": NOW - dt.timedelta(hours=25)}
    groups = new_reasons(letters, last, now=NOW)
    assert list(groups) == ["unknown_sku", "customer_rejected"]
    assert [d[0] for d in groups["unknown_sku"]] == [1, 2]
    assert new_reasons([], {}, now=NOW) == {}


def test_the_new_reason_mail_names_the_reason_and_links_the_dead_letter_and_the_run() -> None:
    groups = {"unknown_sku": [_letter(7, "unknown_sku: SKU-<b>9</b>"), _letter(8, "unknown_sku: SKU-8")]}
    subject, body = new_reason_mail("orders_sync", "scheduled__r1", groups, links=LINKS)
    assert subject == "[erpsync] orders_sync: new dead-letter reason unknown_sku (2 records)"
    assert "unknown_sku: 2 record(s), first: #7 ORD-7: unknown_sku: SKU-<b>9</b>" in body
    assert "    dead letter: http://airflow.example:8080/erpsync/dead-letters/7" in body
    assert "    all of them: http://airflow.example:8080/erpsync/dead-letters?flow=orders_sync&reason=unknown_sku" in body
    assert "Run page:  http://airflow.example:8080/dags/orders_sync/runs/scheduled__r1" in body


def test_what_a_person_sees_the_mail_as_sent_is_escaped_and_keeps_link_and_reason() -> None:
    from erpsync_airflow.notifiers import _TextMail

    groups = {"mapping_error": [_letter(5, "mapping_error: <script>alert(1)</script>\u202eevil", ext="C-<i>1</i>")]}
    subject, body = new_reason_mail("customers_sync", "manual__x", groups, links=LINKS)
    mail = _TextMail(to=["ops@example"])
    mail._prepare(subject, body)
    html = mail.html_content
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<i>" not in html and "C-&lt;i&gt;1&lt;/i&gt;" in html
    assert "\u202e" not in html  # a bidi override is shown as an escape, not obeyed
    assert "http://airflow.example:8080/erpsync/dead-letters/5" in html
    assert mail.subject == "[erpsync] customers_sync: new dead-letter reason mapping_error (1 record)"


class _Store:
    def __init__(self) -> None:
        self.cursors: dict[tuple[str, str], str] = {}

    def get_cursor(self, flow: str, name: str = "default") -> str | None:
        return self.cursors.get((flow, name))

    def set_cursor(self, flow: str, value: str, name: str = "default") -> None:
        self.cursors[(flow, name)] = value


def test_mail_new_reasons_mails_once_per_flow_and_reason_per_day() -> None:
    from erpsync_airflow.notifiers import mail_new_reasons

    store, sent = _Store(), []

    def send(subject: str, body: str) -> None:
        sent.append((subject, body))

    letters = [_letter(1, "unknown_sku: A"), _letter(2, "unknown_sku: B")]
    assert mail_new_reasons(store, "orders_sync", "r1", letters, send=send, links=LINKS, now=NOW) == ["unknown_sku"]
    assert len(sent) == 1
    # the next run, an hour later: the same reason is not mailed again; a new one is
    later = NOW + dt.timedelta(hours=1)
    more = [_letter(3, "unknown_sku: C"), _letter(4, "tax_mismatch: 1.00")]
    assert mail_new_reasons(store, "orders_sync", "r2", more, send=send, links=LINKS, now=later) == ["tax_mismatch"]
    assert len(sent) == 2 and "unknown_sku" not in sent[1][0]
    # another flow has its own reasons; a day later the first reason mails again
    assert mail_new_reasons(store, "customers_sync", "r3", [_letter(5, "unknown_sku: A")], send=send, links=LINKS,
                            now=later) == ["unknown_sku"]
    assert mail_new_reasons(store, "orders_sync", "r4", letters, send=send, links=LINKS,
                            now=NOW + dt.timedelta(hours=24, minutes=1)) == ["unknown_sku"]
    assert len(sent) == 4


def test_a_mail_that_cannot_be_sent_is_tried_again_next_run() -> None:
    from erpsync_airflow.notifiers import mail_new_reasons

    store = _Store()

    def broken(subject: str, body: str) -> Any:
        raise OSError("SMTP down")

    with pytest.raises(OSError):
        mail_new_reasons(store, "orders_sync", "r1", [_letter(1, "unknown_sku: A")], send=broken, links=LINKS, now=NOW)
    sent: list[Any] = []
    assert mail_new_reasons(store, "orders_sync", "r2", [_letter(1, "unknown_sku: A")],
                            send=lambda s, b: sent.append(s), links=LINKS, now=NOW) == ["unknown_sku"]
