"""Secrets never leak: seeded secret values of the Connections must appear in no log line, no
XCom value (the task's return value) and no row of any state table, after the flows ran through
the Airflow runtime against a sandbox that fails in every way it can. Personal data of synced
customers must not reach the audit log."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

from erpsync.flows import customers, orders  # noqa: E402
from erpsync.flows.replay import ReplayFilter, replay_many  # noqa: E402
from erpsync.sandbox.launcher import start_sandbox  # noqa: E402
from erpsync.state import StateStore  # noqa: E402
from erpsync.state.schema import metadata  # noqa: E402
from erpsync_airflow.runtime import flow_context, run_flow  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

ERP_PASSWORD = f"erp-pw-{uuid.uuid4().hex}"
SF_TOKEN = f"sf-token-{uuid.uuid4().hex}"
SECRETS = (ERP_PASSWORD, SF_TOKEN)


@pytest.fixture
def secret_sandbox(tmp_path: Path) -> Any:
    with start_sandbox(seed=9, skus=30, customers=40, orders=40, token=SF_TOKEN, erp_password=ERP_PASSWORD,
                       log_dir=tmp_path / "sandbox", default_warehouse="MAIN") as sb:  # sales need no warehouse
        yield sb


def _conns(monkeypatch: pytest.MonkeyPatch, sb: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DEFAULT", json.dumps({
        "conn_type": "erpsync_erp", "host": sb.erp_url, "login": sb.erp_user, "password": ERP_PASSWORD,
        "extra": {"adapter": "sandbox", "timeout": 1, "max_attempts": 2}}))
    monkeypatch.setenv("AIRFLOW_CONN_STOREFRONT_DEFAULT", json.dumps({
        "conn_type": "erpsync_storefront", "host": sb.storefront_url, "password": SF_TOKEN,
        "extra": {"adapter": "sandbox", "timeout": 1, "max_attempts": 2}}))
    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)


def _dump_tables(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return "\n".join(repr(row) for table in metadata.sorted_tables
                             for row in conn.execute(sa.select(table)))
    finally:
        engine.dispose()


def test_no_secret_in_logs_xcom_or_state(secret_sandbox: Any, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    _conns(monkeypatch, secret_sandbox)
    log_file = tmp_path / "task.log"
    handler = logging.FileHandler(log_file)
    handler.setLevel(logging.DEBUG)
    task_log_file = tmp_path / "task-info.log"  # what a task log shows (INFO and up, Airflow's default)
    task_handler = logging.FileHandler(task_log_file)
    task_handler.setLevel(logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.addHandler(task_handler)
    root.setLevel(logging.DEBUG)  # everything, urllib3 and the SQL layer included
    xcom: list[Any] = []
    try:
        sb = secret_sandbox
        sb.set_faults("erp", seed=2, error_rate=0.15, commit_then_timeout={"rate": 0.2, "hold_seconds": 0.05})
        sb.set_faults("storefront", seed=3, malformed_rate=0.05)
        for attempt in range(6):  # Airflow retries
            context = {"run_id": "secret-run", "params": {"guest_policy": "hold"}}
            try:
                xcom.append(run_flow("customers_sync", customers.run, context))
                xcom.append(run_flow("orders_sync", orders.run, context))
                break
            except Exception as exc:  # transient: retried like a task
                logging.getLogger("test").info("attempt %d: %s", attempt, exc)
        sb.set_faults("erp", expire_sessions=True)  # a re-login on the way
        with flow_context("orders_sync", {"run_id": "replay", "params": {}}) as ctx:
            report = replay_many(lambda flow: ctx, ctx.store, ReplayFilter(flow="orders_sync"), dry_run=True)
            xcom.append(report.to_dict())
            url = ctx.store.engine.url.render_as_string(hide_password=False)
            assert ctx.store.list_dead_letters(), "the faults should have produced dead letters"
        # wrong credentials: the refusal is logged, the password is not
        monkeypatch.setenv("AIRFLOW_CONN_ERP_DEFAULT", json.dumps({
            "conn_type": "erpsync_erp", "host": sb.erp_url, "login": sb.erp_user, "password": ERP_PASSWORD + "x"}))
        with pytest.raises(AirflowFailException, match="refused the login"), flow_context("orders_sync", {"run_id": "bad-creds", "params": {}}) as ctx:
            ctx.erp.ping()
    finally:
        root.removeHandler(handler)
        handler.close()
        root.removeHandler(task_handler)
        task_handler.close()
        root.setLevel(old_level)

    logs = log_file.read_text(errors="replace")
    assert "orders_sync" in logs and len(logs) > 10_000  # the scan looked at real logs
    files = [p for p in Path(tmp_path).rglob("*") if p.is_file() and "sandbox" not in p.parts]
    files += [p for p in Path(airflow_home.isolate()).rglob("*.log") if p.is_file()]
    state = _dump_tables(url)
    for secret in SECRETS:
        assert secret not in logs, f"secret in the logs: {secret[:10]}..."
        assert secret not in json.dumps(xcom, default=str), "secret in an XCom value"
        assert secret not in state, "secret in a state table"
        for path in files:
            assert secret.encode() not in path.read_bytes(), f"secret in {path}"
    # personal data: the audit log keeps the shape of payloads, not the e-mails and names
    with StateStore.from_url(url) as store:
        audits = store.list_audit(limit=10_000)
    assert audits
    emails = {a.request.get("email") for a in audits if isinstance(a.request, dict) and "email" in a.request}
    assert emails <= {"***", None, ""}, emails
    # ... nor the task logs and the dead letters' reasons (their payloads keep what a replay needs)
    people = {str(c["email"]).lower() for c in StorefrontOf(secret_sandbox).list_customers() if c.get("email")}
    people |= {str(o["email"]).lower() for o in StorefrontOf(secret_sandbox).list_orders() if o.get("email")}
    assert len(people) > 30
    task_logs = task_log_file.read_text(errors="replace").lower()
    assert "dead letter" in task_logs  # the scan read the lines that name failed records
    assert not [e for e in people if e in task_logs], "personal data (e-mail) in a task log"
    with StateStore.from_url(url) as store:
        reasons = " ".join(d.reason for d in store.list_dead_letters(status=None, limit=10_000)).lower()
    assert not [e for e in people if e in reasons], "personal data (e-mail) in a dead letter's reason"


def StorefrontOf(sb: Any) -> Any:  # noqa: N802 - reads like a constructor
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter

    return SandboxStorefrontAdapter(sb.storefront_url, SF_TOKEN)
