"""The watchdog against the real thing: orders_sync syncs the sandbox's orders through the task
runtime (hooks, state store, run metrics), then the storefront stops producing orders; the
``sync_watchdog`` DAG (run in Airflow) mails ``orders_stopped`` to a real SMTP server, once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.dag_processing.dagbag import DagBag  # noqa: E402  (after isolate(): AIRFLOW_HOME first)

from tests.fixtures.sandbox import TEST_SEED  # noqa: E402
from tests.integration.smtp_sink import smtp, smtp_connection  # noqa: E402,F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

SILENCE_S = 4  # the watchdog's window, shortened from 60 min so the test waits seconds


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
    monkeypatch.setenv("ERPSYNC_TRADING_HOURS", "Mon-Sun 00:00-24:00")  # the test may run at any hour
    sb.reset(seed=5, customers=20, orders=12)  # a small shop: the first sync takes a second
    yield sb
    sb.reset(**TEST_SEED)


def sync_orders(run_id: str) -> dict:
    from erpsync.flows import orders
    from erpsync_airflow.runtime import run_flow

    return run_flow("orders_sync", orders.run, {"run_id": run_id, "params": {}})


def test_watchdog_mails_when_the_sandbox_stops_producing_orders(sandbox_connections, smtp_connection) -> None:  # noqa: F811
    airflow_home.migrate()
    bag = DagBag(dag_folder=str(airflow_home.DAGS / "sync_watchdog.py"))
    dag = bag.dags["sync_watchdog"]
    dag.deadline = None  # dag.test() cannot run a deadline alert (apache/airflow#73428)
    conf = {"orders_silence_minutes": SILENCE_S / 60}

    # the shop trades: the seeded orders, then new ones, are synced
    assert sync_orders("manual__seed")["done"] > 0
    sandbox_connections.admin("storefront", "POST", "orders/generate", {"count": 5, "seed": 3})
    assert sync_orders("manual__live")["done"] == 5
    assert watchdog(conf)["findings"] == []  # orders arrive: nothing to say
    assert smtp_connection.sink.mails == []

    # the storefront stops producing orders; the flow keeps running and syncs nothing
    time.sleep(SILENCE_S + 0.5)
    assert sync_orders("manual__quiet")["done"] == 0
    silent = dag.test(run_conf=conf)  # the DAG itself, in Airflow
    assert str(silent.state) == "success"  # the mail is the alert, not a failed task
    states = {ti.task_id: str(ti.state) for ti in silent.get_task_instances()}
    assert states == {"check_sync_health": "success", "purge_old_history": "success"}  # retention ran too
    (mail,) = smtp_connection.sink.wait(1, timeout=10)
    assert mail.subject == "[erpsync] watchdog: 1 problem(s): orders_stopped"
    assert "- [orders_stopped] orders_sync: no order synced in the last" in mail.text
    assert "during trading hours" in mail.text and "docs/runbooks/silent-stop.md" in mail.text

    # the same finding again within repeat_minutes is not mailed twice
    again = watchdog(conf)
    assert [f["check"] for f in again["findings"]] == ["orders_stopped"] and again["mailed"] is False
    time.sleep(0.3)
    assert len(smtp_connection.sink.mails) == 1


def watchdog(conf: dict) -> dict:
    """The body of the watchdog task, called directly (the DAG run above shows the wiring)."""
    from erpsync_airflow.runtime import run_watchdog

    return run_watchdog({"params": conf})


def test_watchdog_knows_every_scheduled_flow_from_its_spec(sandbox_connections) -> None:
    """The watchdog's cadences come from the flows' specs (issue 19): customer_erasure, which its
    hand-copied table missed, is overdue once it has not succeeded for twice its hourly cadence.
    The flow runs on the sandbox through the task runtime; the check reads the real state store."""
    import datetime as dt

    from erpsync import watchdog
    from erpsync.flows import erasure
    from erpsync.flows.specs import SPECS
    from erpsync_airflow.hooks import StateStoreHook
    from erpsync_airflow.runtime import run_flow

    scheduled = {name for name, s in SPECS.items() if s.schedule and name != watchdog.WATCHDOG}
    config = watchdog.WatchdogConfig.from_settings({})
    assert set(config.cadences) == scheduled
    assert config.cadences["customer_erasure"] == dt.timedelta(hours=1)

    run_flow("customer_erasure", erasure.run, {"run_id": "manual__erasure", "params": {}})
    store = StateStoreHook().get_conn()
    now = dt.datetime.now(dt.UTC)

    def overdue(at: dt.datetime) -> list[str]:
        return [f.message for f in watchdog.check(watchdog.collect(store, config, at), config)
                if f.check == "flow_overdue" and f.flow == "customer_erasure"]

    assert overdue(now + dt.timedelta(minutes=90)) == []  # within twice its cadence
    (message,) = overdue(now + dt.timedelta(hours=2, minutes=5))
    assert "within twice its cadence (2 h)" in message


def test_no_false_alarm_at_first_start(store) -> None:
    """Issue 20 item 7: on a fresh deployment (no flow has run yet) the watchdog says nothing, not
    "orders stopped" nor overdue; once a flow is past its first due time by the overdue margin
    (three cadences after the watchdog's first round) it reports that the flow never ran, mailed once
    (the mail body from ``alerts.watchdog_mail``; the DAG-to-SMTP wiring is shown above)."""
    import datetime as dt

    from erpsync import watchdog

    mails: list[tuple[str, str]] = []
    config = watchdog.WatchdogConfig.from_settings(
        {"trading_hours": "Mon-Sun 00:00-24:00", "orders_silence_minutes": 60})
    start = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)

    def round_at(at: dt.datetime) -> dict:
        return watchdog.run(store, config, lambda subject, body: mails.append((subject, body)), now=at)

    first = round_at(start)
    assert first["findings"] == [] and mails == []  # before: orders_stopped at first start
    cadence = config.cadences["orders_sync"]
    assert round_at(start + 2 * cadence)["findings"] == []  # not yet past the margin
    later = round_at(start + 3 * cadence + dt.timedelta(minutes=1))
    never = {f["flow"]: f["message"] for f in later["findings"] if f["check"] == "flow_overdue"}
    assert "orders_sync" in never and "never ran since the watchdog started watching" in never["orders_sync"]
    assert not [f for f in later["findings"] if f["check"] == "orders_stopped"]
    assert later["mailed"] is True and len(mails) == 1
    assert "orders_sync: never ran" in mails[0][1]
