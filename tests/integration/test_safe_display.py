"""Issue 17, class 10: names and payloads are data. A corpus of hostile names goes through a real
flow (pricing_sync quarantines price rows against the sandbox), is stored as given, and is shown
safely everywhere erpsync shows it: the real ``erpsync`` command (list, show, CSV export), and the
alert e-mails through a real SMTP server (subject, HTML part).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from erpsync.flows import pricing  # noqa: E402
from erpsync.quality import QualityGateFailed  # noqa: E402
from erpsync.state import StateStore  # noqa: E402
from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: E402,F401  (fixtures)

pytestmark = pytest.mark.integration

ERPSYNC = str(Path(sys.executable).with_name("erpsync"))

#: name -> value: markup, spreadsheet formulas (every OWASP prefix), terminal escapes (ANSI colour,
#: OSC 8 hyperlink, C1 CSI, bell, NUL), bidi overrides and zero-width characters
CORPUS = {
    "script": "<script>alert(1)</script>",
    "img": '"><img src=x onerror=alert(1)>',
    "formula": '=HYPERLINK("http://x","y")',
    "plus": "+cmd|' /C calc'!A0",
    "minus": "-2+3+cmd|' /C calc'!A0",
    "at": "@SUM(1+1)*cmd|' /C calc'!A0",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
    "ansi": "\x1b[31mRED\x1b[0m\x1b[2J",
    "osc8": "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07",
    "c1": "\x9b31mC1",
    "bell_nul": "bell\x07nul\x00end",
    "rtl": "invoice\u202egnp.exe",
    "zero_width": "SKU\u200b-1\u2066x\u2069",
    "newline": "first line\nFAKE: all good",
}
RAW_CONTROLS = ["\x1b", "\x07", "\x00", "\x9b", "\u202e", "\u200b", "\u2066", "\u2069", "\r"]
HUGE = "A" * 10_000_000


def no_raw_controls(out: str) -> None:
    found = [repr(c) for c in RAW_CONTROLS if c in out]
    assert not found, f"raw control characters reached the output: {found}"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``erpsync`` console script, as an operator runs it (the test's ERPSYNC_HOME);
    ~5 s each (Airflow's imports), so the loops below call ``main`` in this process instead."""
    return subprocess.run([ERPSYNC, *args], env=dict(os.environ), capture_output=True, text=True, timeout=120)


def main_of(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """The same command through ``erpsync_airflow.cli.main`` (what the console script calls)."""
    from erpsync_airflow.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out, err)


@pytest.fixture
def hostile_dead_letters(sandbox: Any, store: StateStore, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """pricing_sync against the sandbox ERP, whose users typed the corpus as price-list names of
    rows in a currency the business does not trade in: the quality gate quarantines each row, the
    name is in the dead letter's id and payload. The flow runs in the Airflow task runtime's
    context (its Connections, its task logger). Plus a 10 MB name kept by the flow's store."""
    from erpsync_airflow.runtime import flow_context
    from tests.fixtures.sandbox import TEST_SEED

    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DEFAULT", json.dumps({
        "conn_type": "erpsync_erp", "host": sandbox.erp_url, "login": sandbox.erp_user,
        "password": sandbox.erp_password, "extra": {"adapter": "sandbox", "timeout": 5}}))
    monkeypatch.setenv("AIRFLOW_CONN_STOREFRONT_DEFAULT", json.dumps({
        "conn_type": "erpsync_storefront", "host": sandbox.storefront_url, "password": sandbox.token,
        "extra": {"adapter": "sandbox", "timeout": 5}}))

    sandbox.reset(seed=7, skus=20, customers=40, orders=5)
    rows = [{"item_code": "ITEM-000001", "price_list": value, "currency": "CHF", "price": "18.00"}
            for value in CORPUS.values()]
    # and as the failing value itself: the quality report (GX's HTML page) lists unexpected currencies
    rows += [{"item_code": "ITEM-000002", "price_list": f"LIST-BAD-{n}", "currency": value, "price": "18.00"}
             for n, value in enumerate((CORPUS["script"], CORPUS["img"]))]
    sandbox.admin("erp", "POST", "prices", {"set": rows})
    seen: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.INFO)
    catcher.emit = seen.append  # type: ignore[method-assign]
    task_log = logging.getLogger("airflow.task.erpsync.pricing_sync")  # Airflow's: it does not propagate
    task_log.addHandler(catcher)
    try:  # 17 bad rows of ~140 may exceed the batch's bad-share limit: quarantined all the same
        with contextlib.suppress(QualityGateFailed), flow_context("pricing_sync", {"run_id": "hostile", "params": {}}) as ctx, \
                mock.patch.object(pricing, "clock", lambda: dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)):
            pricing.run(ctx)
    finally:
        task_log.removeHandler(catcher)
        sandbox.reset(**TEST_SEED)
    # the task log: each dead letter is logged with its id (the hostile name), neutralised
    logged = "\n".join(r.getMessage() for r in seen)
    assert "dead letter #" in logged and "\\x1b[31mRED" in logged, logged[-2000:]
    no_raw_controls(logged)
    ids: dict[str, int] = {}
    for d in store.list_dead_letters(flow="pricing_sync", limit=1000):
        for name, value in CORPUS.items():
            if isinstance(d.payload, dict) and d.payload.get("price_list") == value:
                ids[name] = d.id
    assert set(ids) == set(CORPUS), f"not quarantined: {set(CORPUS) - set(ids)}"
    ids["huge"] = store.add_dead_letter("pricing_sync", "price", "HUGE-NAME", {"name": HUGE, "nested": CORPUS},
                                        "mapping_error: name " + HUGE[:5000])
    return ids


def test_the_cli_shows_hostile_names_safely_and_keeps_them_as_given(
    hostile_dead_letters: dict[str, int], store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = hostile_dead_letters
    # stored as given: the store keeps the names byte for byte
    for name, value in CORPUS.items():
        assert store.get_dead_letter(ids[name]).payload["price_list"] == value

    listed = cli("dead-letters", "list", "--flow", "pricing_sync")
    assert listed.returncode == 0, listed.stderr
    no_raw_controls(listed.stdout)
    assert "\\x1b[31mRED" in listed.stdout and "\\u202e" in listed.stdout  # shown, as visible escapes
    assert len(listed.stdout) < 20_000  # the 10 MB name is one bounded cell
    assert all(len(line) < 400 for line in listed.stdout.splitlines()), "a value broke the table's layout"
    for line in listed.stdout.splitlines():
        assert not line.startswith("FAKE:"), "a newline in a name forged a line of output"

    for name in CORPUS:
        shown = main_of(capsys, "dead-letters", "show", str(ids[name]))
        assert shown.returncode == 0, shown.stderr
        no_raw_controls(shown.stdout)
        assert not any(line.startswith("FAKE:") for line in shown.stdout.splitlines())
    shown = main_of(capsys, "dead-letters", "show", str(ids["script"]))
    assert "<script>alert(1)</script>" in shown.stdout  # plain text: the operator sees the value itself

    # the quality gate's HTML report of the run (GX's page, linked from the failure mail) escapes them
    from erpsync.config import erpsync_home

    pages = list((erpsync_home() / "quality" / "pricing_sync" / "hostile").glob("*.html"))
    assert pages, "the run kept no quality report"
    for page in pages:
        html_text = page.read_text(encoding="utf-8", errors="replace")
        assert "<script>alert(1)</script>" not in html_text and "<img src=x" not in html_text, page

    huge = cli("dead-letters", "show", str(ids["huge"]))
    assert huge.returncode == 0, huge.stderr[-2000:]
    assert len(huge.stdout) < 250_000 and "more characters]" in huge.stdout
    no_raw_controls(huge.stdout)


def test_the_csv_export_neutralises_formulas(hostile_dead_letters: dict[str, int]) -> None:
    out = cli("dead-letters", "list", "--flow", "pricing_sync", "--format", "csv")
    assert out.returncode == 0, out.stderr
    no_raw_controls(out.stdout)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == len(hostile_dead_letters) + 2  # and the two hostile currencies
    cells = [c for r in rows for c in r.values() if c]
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"a spreadsheet would run {cell!r}"
    ext = {r["id"]: r["external_id"] for r in rows}
    assert ext[str(hostile_dead_letters["formula"])].startswith("ITEM-000001/")  # the id leads with the item
    assert all(len(c) < 5_000 for c in cells)  # the 10 MB name too


def test_the_approvals_commands_show_hostile_values_safely(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [store.add_approval("pricing_sync", "price", f"variant|{value}|1#LIST", "price_change",
                              {"key": f"variant|{value}|1", "rule": "LIST", "data": {"price": "1.00"},
                               "currency": "USD", "sku": value},
                              {"price": value}, f"change_over_threshold: {value}")
           for value in CORPUS.values()]
    listed = main_of(capsys, "approvals", "list", "--flow", "pricing_sync")
    assert listed.returncode == 0, listed.stderr
    no_raw_controls(listed.stdout)
    exported = main_of(capsys, "approvals", "list", "--flow", "pricing_sync", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == len(CORPUS)
    for r in rows:
        for col in ("key", "current", "reason"):
            assert not r[col].startswith(("=", "+", "-", "@", "\t", "\r")), (col, r[col])
    formula = next(r for r in rows if "HYPERLINK" in r["current"])
    assert formula["current"] == "'" + CORPUS["formula"]  # the value itself, behind the quote
    for approval_id in ids:
        shown = main_of(capsys, "approvals", "show", str(approval_id))
        assert shown.returncode == 0, shown.stderr
        no_raw_controls(shown.stdout)


def test_alert_mails_escape_markup_and_neutralise_controls(smtp_connection) -> None:  # noqa: F811 (fixture)
    from erpsync_airflow.notifiers import AlertSender, FailureNotifier

    log = logging.getLogger("test.display")
    held = [pricing.Held(n, f"variant|{value}|1", "LIST", Decimal("20.00"), Decimal("2.00"), "USD",
                         f"change_over_threshold: {value}")
            for n, value in enumerate([*CORPUS.values(), HUGE], start=1)]
    pricing.notify_held(SimpleNamespace(notifier=AlertSender(), log=log, flow="pricing_sync"),
                        SimpleNamespace(held=held, held_count=len(held)))
    exc = ValueError(f"storefront rejected {CORPUS['script']} {CORPUS['ansi']} {CORPUS['rtl']} {HUGE}")
    ti = SimpleNamespace(dag_id="pricing_sync", task_id="sync_prices", run_id="r1", try_number=1,
                         log_url="http://airflow/log?x=\"><script>alert(2)</script>")
    FailureNotifier().notify({"ti": ti, "exception": exc, "run_id": "r1"})
    mails = smtp_connection.sink.wait(2, timeout=20)
    assert len(mails) == 2, [m.subject for m in mails]
    for mail in mails:
        assert "<script>" not in mail.raw and "<img" not in mail.raw, "markup reached the HTML part unescaped"
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.raw or "&lt;script&gt;alert(2)" in mail.raw
        no_raw_controls(mail.raw)
        no_raw_controls(mail.subject)
        assert len(mail.subject) <= 250 and len(mail.raw) < 1_000_000, (len(mail.subject), len(mail.raw))
        assert not any(line.startswith("FAKE:") for line in mail.text.splitlines())
    held_mail = next(m for m in mails if "held" in m.subject)
    assert "\\x1b[31mRED" in held_mail.text and "\\u202egnp.exe" in held_mail.text  # visible, not executed
    failure = next(m for m in mails if "failed" in m.subject)
    assert "storefront rejected <script>alert(1)</script>" in failure.text  # shown as text after decoding
    assert json.dumps(failure.subject).count("\\u001b") == 0
