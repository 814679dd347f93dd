"""The held-prices mail: the pricing flow renders its held list (``pricing.render_held``) and
sends it through the context's notifier, which the task runtime wires to the SMTP connection."""

from __future__ import annotations

import logging
from decimal import Decimal
from types import SimpleNamespace

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: E402,F401  (fixtures)

pytestmark = [pytest.mark.integration]


def test_held_prices_mail_arrives(smtp_connection) -> None:  # noqa: F811 (fixture)
    from erpsync.flows import pricing
    from erpsync_airflow.notifiers import AlertSender
    from erpsync_airflow.runtime import _alert_sender

    log = logging.getLogger("test.pricing")
    notifier = _alert_sender(log)
    assert isinstance(notifier, AlertSender)  # an SMTP connection exists: flows mail, not log
    held = [
        pricing.Held(1, "SKU-000001|retail|USD|1", "change_over_threshold", Decimal("20.00"), Decimal("2.00"), "USD",
                     "change_over_threshold: -90.0% from 20.00 (limit 20%)"),
        pricing.Held(2, "SKU-000002|retail|USD|1", "zero_price", Decimal("9.99"), Decimal("0.00"), "USD", "zero_price"),
    ]
    pricing.notify_held(SimpleNamespace(notifier=notifier, log=log, flow="pricing_sync"),
                        SimpleNamespace(held=held, held_count=2))
    (mail,) = smtp_connection.sink.wait(1, timeout=10)
    assert mail.subject == "[erpsync] pricing_sync held 2 price changes for approval"
    assert mail.to == ["ops@example.com"]
    assert "-90.0% from 20.00" in mail.text and "#2" in mail.text and "zero_price" in mail.text


def test_without_smtp_the_alert_goes_to_the_log(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    from erpsync_airflow.notifiers import AlertSender

    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    caplog.set_level(logging.WARNING)
    AlertSender().send("[erpsync] subject", "body text")
    assert "no SMTP connection" in caplog.text and "body text" in caplog.text
