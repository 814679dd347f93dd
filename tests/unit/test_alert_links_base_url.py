"""Alert links when Airflow's ``[api] base_url`` is not set (Airflow 3.3 has no default for it) and
the held-changes mail's first line: a mail never drops a link silently, it names the setting that
gives it; the held-prices mail opens with the console's Approvals page, the CLI the alternative."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from erpsync import watchdog
from erpsync.alerts import Links, lead_with_page, links_footer, watchdog_mail
from erpsync.flows.pricing import Held, render_held
from erpsync.state import StateStore
from erpsync.watchdog import Finding

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
FINDINGS = [Finding("dead_letters_piling", "orders_sync", "130 open", "replay them"),
            Finding("flow_overdue", "pricing_sync", "no run for 3 h", "")]


@pytest.fixture(autouse=True)
def _no_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    monkeypatch.delenv("ERPSYNC_CONSOLE_URL", raising=False)


def test_without_a_base_url_the_watchdog_mail_says_which_setting_gives_its_links() -> None:
    links = Links.from_env()
    assert links.airflow is None and links.console is None
    _, body = watchdog_mail(FINDINGS, now=NOW, links=links)
    lines = body.splitlines()
    assert "    see: the flow's dead letters in the erpsync console (no link: see Links below)" in lines
    assert "    see: the flow's runs in Airflow's UI (no link: see Links below)" in lines
    (said,) = [line for line in lines if line.startswith("Links: ")]
    assert "no links to Airflow's UI or the erpsync console: set Airflow's [api] base_url" in said
    assert "AIRFLOW__API__BASE_URL=https://airflow.example.com" in said and "Airflow has no default" in said
    assert "http" not in " ".join(line for line in lines if line.startswith("    see:"))  # nothing guessed


def test_a_base_url_without_scheme_is_named_not_linked_and_the_console_url_alone_still_links(
        monkeypatch: pytest.MonkeyPatch) -> None:
    links = Links.from_env("airflow.example.com")
    assert links.airflow is None and links.console is None
    assert "'airflow.example.com' is not an absolute http(s) URL" in (links.problem or "")
    assert "AIRFLOW__API__BASE_URL" in (links.problem or "")

    monkeypatch.setenv("ERPSYNC_CONSOLE_URL", "https://ops.example/erpsync")
    links = Links.from_env()
    _, body = watchdog_mail(FINDINGS, now=NOW, links=links)
    assert "    see: https://ops.example/erpsync/dead-letters?flow=orders_sync" in body
    assert "    see: the flow's runs in Airflow's UI (no link: see Links below)" in body
    assert "Links: no links to Airflow's UI: set Airflow's [api] base_url" in body
    assert "Dashboard: https://ops.example/erpsync/dashboard" in body


def test_with_a_base_url_there_is_no_links_complaint() -> None:
    links = Links.from_env("https://airflow.example.com/")
    assert links.problem is None and links.dag("pricing_sync") == "https://airflow.example.com/dags/pricing_sync"
    _, body = watchdog_mail(FINDINGS, now=NOW, links=links)
    assert "Links:" not in body and "    see: https://airflow.example.com/dags/pricing_sync" in body


def test_the_watchdog_round_mails_the_links_it_is_given(tmp_path: Any) -> None:
    """``watchdog.run(links=...)``: the Airflow side passes Airflow's own ``[api] base_url`` (set in
    airflow.cfg, not only in the environment) rather than the mail reading the environment."""
    store = StateStore.from_url(f"sqlite:///{tmp_path}/state.db")
    store.migrate()
    try:
        store.add_dead_letter("orders_sync", "order", "O-1", {}, "unknown_sku: X")
        mails: list[tuple[str, str]] = []
        watchdog.run(store, watchdog.WatchdogConfig(dead_letters_open_max=0), lambda s, b: mails.append((s, b)),
                     now=NOW, links=Links.from_env("https://airflow.example.com"))
    finally:
        store.close()
    ((_, body),) = mails
    assert "    see: https://airflow.example.com/erpsync/dead-letters?flow=orders_sync" in body
    assert "Links:" not in body


def _held_mail() -> tuple[str, str]:
    return render_held([Held(7, "SKU-1|retail|USD|1", "zero_price", Decimal("9.99"), Decimal("0.00"), "USD",
                             "zero_price")], total=1)


def test_the_held_prices_mail_opens_with_the_approvals_page_and_keeps_the_cli_as_the_alternative() -> None:
    subject, body = _held_mail()
    links = Links.from_env("https://airflow.example.com")
    led = lead_with_page(subject, body, links)
    lines = led.splitlines()
    assert lines[0] == "Approve or reject in the erpsync console: " \
                       "https://airflow.example.com/erpsync/approvals?flow=pricing_sync"
    assert "or with the CLI below" in lines[1]
    cli = lines.index("Or from a terminal:")
    assert lines[cli + 1].startswith("Review:   erpsync approvals list") and cli > 2
    assert led.index("Approve:  erpsync approvals approve") > led.index("/erpsync/approvals?flow=pricing_sync")
    assert lead_with_page(subject, led, links) == led  # once
    # the footer does not repeat the Approvals link the mail opens with (notifiers.with_links drops lines
    # whose URL the body has)
    footer = [x for x in links_footer(subject, links).splitlines() if x.split(" ")[-1] not in led]
    assert footer == ["Dashboard: https://airflow.example.com/erpsync/dashboard"]


def test_without_a_base_url_the_held_mail_still_names_the_page_and_the_setting() -> None:
    subject, body = _held_mail()
    links = Links.from_env()
    led = lead_with_page(subject, body, links)
    assert led.splitlines()[0] == ("Approve or reject on the erpsync console's Approvals page (Airflow: Browse > "
                                   "Sync health > Approvals) (no link: see Links below)")
    assert "AIRFLOW__API__BASE_URL" in links_footer(subject, links)
    assert lead_with_page("[erpsync] watchdog: 1 problem(s)", "text", links) == "text"
