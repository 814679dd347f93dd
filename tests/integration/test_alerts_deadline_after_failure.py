"""Issue 20 item 7: no "missed deadline" mail for a run that already failed and was mailed.

Airflow prunes a run's deadline only when the run succeeds, so a run that failed before its deadline
still reaches the triggerer's ``DeadlineMissNotifier`` when the deadline passes; its failed task had
already mailed (``FailureNotifier``). The notifier is awaited here as the triggerer awaits it, with
the context the scheduler builds (``dag_run`` as the API's JSON, ``deadline``), against a real SMTP
server. The full scheduler path of a still-running run is tests/integration/test_alerts_deadline.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: E402,F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


def context(state: str, run_id: str) -> dict[str, Any]:
    return {
        "dag_run": {"dag_id": "orders_sync", "dag_run_id": run_id, "state": state,
                    "queued_at": "2026-12-07T09:00:00Z"},
        "deadline": {"deadline_time": "2026-12-07T09:15:00Z"},
    }


def test_no_deadline_mail_for_a_run_that_already_failed(smtp_connection, monkeypatch) -> None:  # noqa: F811
    from erpsync_airflow.notifiers import DeadlineMissNotifier

    monkeypatch.setenv("ERPSYNC_ALERT_EMAILS", "ops@example.com")
    smtp_connection.sink.clear()

    failed = DeadlineMissNotifier(dag_id="orders_sync", limit="15 min")
    asyncio.run(failed.async_notify(context("failed", "scheduled__failed")))
    # the same run still running at its deadline is mailed (the control: the sink receives)
    running = DeadlineMissNotifier(dag_id="orders_sync", limit="15 min")
    asyncio.run(running.async_notify(context("running", "scheduled__slow")))

    assert smtp_connection.sink.wait(1, timeout=10)
    time.sleep(0.5)  # both were awaited before; nothing else is on its way
    (mail,) = smtp_connection.sink.mails
    assert "orders_sync missed its deadline" in mail.subject
    assert "scheduled__slow" in mail.text and "scheduled__failed" not in mail.text
