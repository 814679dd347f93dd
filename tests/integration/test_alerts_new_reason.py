"""The first dead letter of a new reason is mailed once, through a real SMTP server (issue 20 item
7): the ``review_dead_letters`` task of a run that dead-lettered records sends one mail grouping the
run's new reasons, with links to the dead letter, the flow's letters of that reason and the run;
the next run with the same reason sends none (at most one per flow and reason a day), a new
reason mails again. The review's outcome is the same with or without the mail."""

from __future__ import annotations

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.exceptions import AirflowFailException  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: E402,F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


def test_a_new_reason_mails_once_with_links(smtp_connection, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: F811
    from erpsync.state import StateStore
    from erpsync_airflow.runtime import run_review

    url = f"sqlite:///{tmp_path}/state.db"
    monkeypatch.setenv("ERPSYNC_STATE_URL", url)
    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.example:8080")
    monkeypatch.setenv("ERPSYNC_REVIEW_MAX_DEAD_LETTERS", "5")
    store = StateStore.from_url(url)
    store.migrate()
    smtp_connection.sink.clear()
    first = {"dead_letters": [[11, "ORD-1", "unknown_sku: SKU-<b>9</b>"], [12, "ORD-2", "unknown_sku: SKU-8"]]}
    run_review("orders_sync", first, {"run_id": "scheduled__r1"})
    (mail,) = smtp_connection.sink.wait(1, timeout=10)
    assert mail.subject == "[erpsync] orders_sync: new dead-letter reason unknown_sku (2 records)"
    body = mail.text
    assert "unknown_sku: 2 record(s), first: #11 ORD-1: unknown_sku: SKU-<b>9</b>" in body  # text, as data
    assert "http://airflow.example:8080/erpsync/dead-letters/11" in body
    assert "http://airflow.example:8080/erpsync/dead-letters?flow=orders_sync&reason=unknown_sku" in body
    assert "http://airflow.example:8080/dags/orders_sync/runs/scheduled__r1" in body

    smtp_connection.sink.clear()
    run_review("orders_sync", {"dead_letters": [[13, "ORD-3", "unknown_sku: SKU-7"]]}, {"run_id": "scheduled__r2"})
    with pytest.raises(AirflowFailException):  # past the review's threshold: the run is red as before
        run_review("orders_sync", {"dead_letters": [[14 + i, f"ORD-{i}", "tax_mismatch: 1.00"] for i in range(6)]
                                   + [[30, "ORD-30", "unknown_sku: SKU-6"]]}, {"run_id": "scheduled__r3"})
    (mail,) = smtp_connection.sink.wait(1, timeout=10)
    assert mail.subject == "[erpsync] orders_sync: new dead-letter reason tax_mismatch (6 records)"
    assert len(smtp_connection.sink.wait(1, timeout=1)) == 1  # r2 sent nothing
    store.close()
