"""Failure e-mails through a real SMTP server: orders_sync runs in Airflow (``dag.test()``) against
the sandbox serving half of its orders broken; the quality gate fails the run (no retries) and
exactly one mail arrives that a person can act on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: E402,F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]


@pytest.fixture
def sandbox_connections(clean_sandbox, monkeypatch: pytest.MonkeyPatch) -> Any:
    sb = clean_sandbox
    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DEFAULT", json.dumps({
        "conn_type": "erpsync_erp", "host": sb.erp_url, "login": sb.erp_user, "password": sb.erp_password,
        "extra": {"adapter": "sandbox", "timeout": 5}}))
    monkeypatch.setenv("AIRFLOW_CONN_STOREFRONT_DEFAULT", json.dumps({
        "conn_type": "erpsync_storefront", "host": sb.storefront_url, "password": sb.token,
        "extra": {"adapter": "sandbox", "timeout": 5}}))
    return sb


def test_half_bad_batch_fails_the_run_and_sends_one_mail(sandbox_connections, smtp_connection) -> None:  # noqa: F811 (fixture)
    from erpsync.state import StateStore

    airflow_home.migrate()
    bag = DagBag(dag_folder=str(airflow_home.DAGS / "orders_sync.py"))
    dag = bag.dags["orders_sync"]
    dag.deadline = None  # dag.test() cannot run a deadline alert (apache/airflow#73428)
    sandbox_connections.set_faults("storefront", malformed_rate=0.5, seed=11, paths=["/admin/api/orders"])

    dag_run = dag.test()

    assert str(dag_run.state) == "failed"
    tis = {t.task_id: t for t in dag_run.get_task_instances()}
    assert str(tis["review_dead_letters"].state) == "upstream_failed"  # it never runs: no second mail
    ti = tis["sync_orders"]
    assert str(ti.state) == "failed" and ti.try_number == 1  # no retries: the same data fails again
    mails = smtp_connection.sink.wait(1, timeout=10)
    assert len(mails) == 1, [m.subject for m in mails]
    mail = mails[0]
    assert mail.to == ["ops@example.com"] and mail.sender == "erpsync-airflow@example.com"
    assert mail.subject.startswith("[erpsync] orders_sync.sync_orders failed: ")
    body = mail.text
    assert "DAG:    orders_sync" in body and "Task:   sync_orders" in body
    assert f"Run:    {dag_run.run_id}" in body and "Try:    1 of 4" in body
    (error,) = [ln for ln in body.splitlines() if ln.startswith("Error:")]
    assert "quality gate orders_sync/order:" in error and "limit 10%" in error
    # the counts of the run, the link to the task log, the kept GX result
    store = StateStore.from_url()
    quarantined = len(store.list_dead_letters(flow="orders_sync"))
    assert quarantined > 0
    assert f"Records: done=0 failed=0 quarantined={quarantined}" in body
    assert f"Log:    http://localhost:8080/dags/orders_sync/runs/{dag_run.run_id}/tasks/sync_orders" in body.replace(
        "%3A", ":").replace("%2B", "+")
    (report,) = [ln.split(": ", 1)[1] for ln in body.splitlines() if ln.startswith("Quality report:")]
    assert report.endswith(".html")
    reasons = {d.reason.split(":")[0] for d in store.list_dead_letters(flow="orders_sync")}
    assert reasons & {"bad_currency", "mapping_error", "missing_field"}
    (metric,) = store.last_runs("orders_sync", limit=1)
    assert metric.extra["status"] == "failed" and metric.quarantined == quarantined
