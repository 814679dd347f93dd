"""The held-prices mail as it arrives (``pricing.notify_held`` through the task runtime's
``AlertSender`` to an SMTP sink): it opens with the console's Approvals page, from Airflow's
``[api] base_url``; the CLI follows as the alternative; without a base URL the first line names
the page and the mail says which setting gives the link."""

from __future__ import annotations

import logging
from decimal import Decimal
from types import SimpleNamespace

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: E402,F401  (fixtures)

pytestmark = [pytest.mark.integration]


def _send_held() -> None:
    from erpsync.flows import pricing
    from erpsync_airflow.runtime import _alert_sender

    log = logging.getLogger("test.pricing")
    held = [pricing.Held(3, "SKU-000003|retail|USD|1", "zero_price", Decimal("9.99"), Decimal("0.00"), "USD",
                         "zero_price")]
    pricing.notify_held(SimpleNamespace(notifier=_alert_sender(log), log=log, flow="pricing_sync"),
                        SimpleNamespace(held=held, held_count=1))


@pytest.mark.parametrize("base", ["https://airflow.example.com", ""])
def test_the_held_prices_mail_leads_with_the_approvals_page(smtp_connection, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                                            base: str) -> None:
    monkeypatch.delenv("ERPSYNC_CONSOLE_URL", raising=False)
    if base:
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", base)
    else:
        monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    _send_held()
    (mail,) = smtp_connection.sink.wait(1, timeout=10)
    lines = mail.text.strip().splitlines()
    if base:
        assert lines[0] == "Approve or reject in the erpsync console: " \
                           "https://airflow.example.com/erpsync/approvals?flow=pricing_sync"
        assert mail.text.count("/erpsync/approvals?flow=pricing_sync") == 1  # not repeated in the footer
        assert "Dashboard: https://airflow.example.com/erpsync/dashboard" in lines and "Links:" not in mail.text
    else:
        assert lines[0].startswith("Approve or reject on the erpsync console's Approvals page")
        assert any(x.startswith("Links: no links to Airflow's UI or the erpsync console: set Airflow's [api] "
                                "base_url (environment AIRFLOW__API__BASE_URL=") for x in lines)
    cli = lines.index("Or from a terminal:")
    assert cli > 1 and lines[cli + 1].startswith("Review:   erpsync approvals list --flow pricing_sync")
