"""The hooks and the task runtime without a scheduler: Connections in, adapters and one-line errors out."""

from __future__ import annotations

import json
import logging

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from airflow.sdk import Connection  # noqa: E402  (after isolate(): AIRFLOW_HOME first)
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

from erpsync_airflow.hooks import (  # noqa: E402
    ErpHook,
    StateStoreHook,
    StorefrontHook,
    base_url,
    sqlalchemy_url,
)
from erpsync_airflow.runtime import flow_context  # noqa: E402

pytestmark = [pytest.mark.airflow]


@pytest.fixture(autouse=True)
def _no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AIRFLOW_CONN_ERP_DEFAULT", "AIRFLOW_CONN_STOREFRONT_DEFAULT", "AIRFLOW_CONN_ERPSYNC_STATE"):
        monkeypatch.delenv(var, raising=False)


def _set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_hooks_follow_the_http_provider_style() -> None:
    for hook, attr, default, conn_type in (
        (ErpHook, "erp_conn_id", "erp_default", "erpsync_erp"),
        (StorefrontHook, "storefront_conn_id", "storefront_default", "erpsync_storefront"),
        (StateStoreHook, "state_conn_id", "erpsync_state", "erpsync_state"),
    ):
        assert (hook.conn_name_attr, hook.default_conn_name, hook.conn_type) == (attr, default, conn_type)
        assert getattr(hook(), attr) == default
        assert getattr(hook(**{attr: "other"}), attr) == "other"


def test_building_a_hook_reads_no_connection() -> None:
    ErpHook(), StorefrontHook(), StateStoreHook()  # no connection defined: still fine until get_conn()


@pytest.mark.parametrize(
    ("fields", "url"),
    [
        ({"host": "127.0.0.1", "port": 8101}, "http://127.0.0.1:8101"),
        ({"host": "erp.example.com", "schema": "https"}, "https://erp.example.com"),
        ({"host": "https://erp.example.com/", "port": None}, "https://erp.example.com"),
        ({"host": "http://127.0.0.1", "port": 8101}, "http://127.0.0.1:8101"),
        ({"host": "http://127.0.0.1:9000"}, "http://127.0.0.1:9000"),
    ],
)
def test_base_url(fields: dict, url: str) -> None:
    assert base_url(Connection(conn_id="x", conn_type="erpsync_erp", **fields)) == url


def test_postgres_state_connection_becomes_a_psycopg3_url() -> None:
    conn = Connection(
        conn_id="erpsync_state",
        conn_type="postgres",
        host="db",
        port=5432,
        login="u",
        password="p@ss",
        schema="erpsync",
    )
    assert sqlalchemy_url(conn) == "postgresql+psycopg://u:p%40ss@db:5432/erpsync"
    url_in_host = Connection(conn_id="s", conn_type="generic", host="postgresql://u:p@db/erpsync")
    assert sqlalchemy_url(url_in_host) == "postgresql+psycopg://u:p@db/erpsync"


def test_without_a_state_connection_the_store_follows_erpsync_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_HOME", str(tmp_path))
    assert StateStoreHook().get_url() is None
    store = StateStoreHook().get_conn()
    assert str(tmp_path / "state.db") in str(store.engine.url)


def test_erp_hook_builds_the_sandbox_adapter(sandbox, monkeypatch) -> None:
    _set_conn(
        monkeypatch,
        "erp_default",
        conn_type="erpsync_erp",
        host=sandbox.erp_url,
        login=sandbox.erp_user,
        password=sandbox.erp_password,
        extra={"adapter": "sandbox"},
    )
    ok, message = ErpHook().test_connection()
    assert ok, message


def test_missing_password_is_one_clear_line(monkeypatch, caplog) -> None:
    _set_conn(monkeypatch, "erp_default", conn_type="erpsync_erp", host="127.0.0.1", port=1, login="erpsync")
    caplog.set_level(logging.ERROR)
    with pytest.raises(AirflowFailException) as raised:
        with flow_context("customers_sync", {"run_id": "manual__t"}):
            pytest.fail("must not be entered")
    line = str(raised.value)
    assert "\n" not in line and "erp_default" in line and "password" in line
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [line]


def test_missing_storefront_connection_names_it(monkeypatch) -> None:
    _set_conn(
        monkeypatch,
        "erp_default",
        conn_type="erpsync_erp",
        host="127.0.0.1",
        port=1,
        login="erpsync",
        password="x",
    )
    with pytest.raises(AirflowFailException, match="storefront_default' is not defined"):
        with flow_context("orders_sync", {"run_id": "manual__t"}):
            pass


@pytest.mark.parametrize(
    ("airflow_run_type", "run_type", "has_interval"),
    [
        ("scheduled", "scheduled", True),
        ("backfill", "backfill", True),
        ("asset_triggered", "scheduled", True),
        ("manual", "manual", False),
        ("operator_triggered", "manual", False),
    ],
)
def test_run_type_and_interval_reach_the_flow(
    sandbox, monkeypatch, airflow_run_type: str, run_type: str, has_interval: bool
) -> None:
    import datetime as dt
    from types import SimpleNamespace

    from airflow.utils.types import DagRunType

    _set_conn(
        monkeypatch,
        "erp_default",
        conn_type="erpsync_erp",
        host=sandbox.erp_url,
        login=sandbox.erp_user,
        password=sandbox.erp_password,
    )
    _set_conn(
        monkeypatch,
        "storefront_default",
        conn_type="erpsync_storefront",
        host=sandbox.storefront_url,
        password=sandbox.token,
    )
    start = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    context = {
        "run_id": f"{airflow_run_type}__x",
        "dag_run": SimpleNamespace(run_type=DagRunType(airflow_run_type)),
        "data_interval_start": start,
        "data_interval_end": start + dt.timedelta(minutes=1),
        "params": {"lookback_minutes": 2},
    }
    with flow_context("orders_sync", context) as ctx:
        assert ctx.run_type == run_type
        assert (ctx.interval_start == start) is has_interval
        assert (ctx.interval_end is not None) is has_interval
        assert ctx.params == {"lookback_minutes": 2}
        assert ctx.run_id == f"{airflow_run_type}__x"
