"""No false success (issue 16, its general rule and items 5 and 7), against the sandbox over HTTP.

A run whose counts show it did nothing useful where work existed fails loudly: the drift check
and the orders reconciliation when one side's records cannot be read (here: an adapter whose
mapping does not fit the system it talks to, the very shape of the Tryton/Vendure defect: every
record dead-lettered, 0 compared, run green), and, through the Airflow task runtime, any flow
whose every record was dead-lettered; the run is recorded as failed with its reason and the
watchdog reports it (``nothing_compared``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from tests.dags import airflow_home

airflow_home.isolate()

from erpsync import watchdog  # noqa: E402
from erpsync.alerts import FailureInfo, failure_mail  # noqa: E402
from erpsync.connectors.sandbox_erp import SandboxErpAdapter  # noqa: E402
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter  # noqa: E402
from erpsync.flows import customers, inventory_drift, reconciliation  # noqa: E402
from erpsync.flows.base import NothingUseful, RunSummary, useless_reason  # noqa: E402
from erpsync.state import StateStore  # noqa: E402
from tests.integration.test_flows_sandbox import ctx_for, sync_all  # noqa: E402
from tests.integration.test_shipments_sandbox import place_order  # noqa: E402

pytestmark = pytest.mark.integration

LOCATIONS = {"MAIN": "MAIN", "EAST": "EAST", "WEST": "WEST"}


class MisreadErp(SandboxErpAdapter):
    """The sandbox ERP read through Tryton's mapping: no record fits (a mapping for another system)."""

    mapping = "erpsync.mappings.erp_tryton"


class MisreadStore(SandboxStorefrontAdapter):
    """The sandbox store read through Vendure's mapping."""

    mapping = "erpsync.mappings.storefront_vendure"


def misread_erp(base_url: str, login: str, password: str, extra: dict[str, Any]) -> MisreadErp:
    """Connection factory (extra ``adapter``: ``tests.integration.test_truth_of_success_sandbox:misread_erp``)."""
    return MisreadErp(base_url, login, password, timeout=5)


def test_drift_check_that_cannot_read_one_side_fails_with_its_report(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    # the same sandbox, read right: every SKU-location compared, the run succeeds
    summary, _mail, ok = inventory_drift.run_with_email(
        ctx_for("inventory_drift_check", store, erp_adapter, storefront_adapter, "d0", location_map=LOCATIONS))
    assert ok.compared > 0 and ok.unreadable == 0, ok.summary()
    assert summary.read == ok.erp_read + ok.store_read > 0 and summary.compared_count >= ok.compared

    misread = MisreadErp(fresh.erp_url, fresh.erp_user, fresh.erp_password, timeout=5)
    with pytest.raises(NothingUseful, match="compared no SKU-location") as failed:
        inventory_drift.run(ctx_for("inventory_drift_check", store, misread, storefront_adapter, "d1",
                                    location_map=LOCATIONS))
    counts = failed.value.summary
    assert counts.read > 0 and counts.quarantined > 0, counts.render()
    # the failure mail carries what was read and compared with the reason
    _subject, body = failure_mail(FailureInfo("inventory_drift_check", "check", "d1", 1, 1,
                                              f"NothingUseful: {failed.value}", counts=counts.to_dict()))
    assert f"read={counts.read} compared={counts.compared_count}" in body and "compared no SKU-location" in body
    report = store.list_drift_reports(flow="inventory_drift_check")[0]
    assert report.run_id == "d1" and report.summary["unreadable"] == counts.quarantined - _items_dead(store)
    assert report.summary["compared"] == 0


def _items_dead(store: StateStore) -> int:
    """Dead letters of the drift check that are items (refreshed through the same misfit mapping)."""
    return len([d for d in store.list_dead_letters(flow="inventory_drift_check", limit=100_000)
                if d.entity not in ("stock", "inventory_level")])


def test_reconciliation_counts_both_sides_and_fails_when_it_can_read_none(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    place_order(fresh, [("SKU-000002", 1)], email="truth.a@example.com")
    sync_all(store, erp_adapter, storefront_adapter)
    today = dt.datetime.now(dt.UTC).date().isoformat()

    done = reconciliation.run(ctx_for("orders_reconciliation", store, erp_adapter, storefront_adapter, "r1",
                                      date=today))
    report = store.list_drift_reports(flow="orders_reconciliation")[0]
    read, compared = report.summary["read"], report.summary["compared"]
    assert read["store"] >= 1 and read["erp"] >= 1, report.summary
    assert compared == read, report.summary  # everything read of that day was compared
    assert done.read == read["store"] + read["erp"] and done.compared == compared["store"] + compared["erp"]

    misread = MisreadStore(fresh.storefront_url, fresh.token, timeout=5)
    # the store's orders cannot be read: the ERP's alone are no reconciliation
    with pytest.raises(NothingUseful, match="compared none of the .* store orders") as failed:
        reconciliation.run(ctx_for("orders_reconciliation", store, erp_adapter, misread, "r2", date=today))
    report = store.get_drift_report(store.list_drift_reports(flow="orders_reconciliation")[0].id)
    assert report.summary["compared"]["store"] == 0 and report.summary["read"]["store"] >= 1
    assert {i.kind for i in report.items} >= {"unmappable"}
    assert failed.value.summary.reasons["unmappable"] == report.summary["read"]["store"]


def test_the_runtime_fails_a_run_that_did_nothing_useful_and_the_watchdog_reports_it(
    fresh: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.exceptions import AirflowFailException

    from erpsync_airflow.runtime import run_flow

    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)
    monkeypatch.setenv("ERPSYNC_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DEFAULT", json.dumps({
        "conn_type": "erpsync_erp", "host": fresh.erp_url, "login": fresh.erp_user, "password": fresh.erp_password,
        "extra": {"adapter": f"{__name__}:misread_erp"}}))
    monkeypatch.setenv("AIRFLOW_CONN_STOREFRONT_DEFAULT", json.dumps({
        "conn_type": "erpsync_storefront", "host": fresh.storefront_url, "password": fresh.token,
        "extra": {"adapter": "sandbox", "timeout": 5}}))
    with pytest.raises(AirflowFailException, match="compared no SKU-location"):
        run_flow("inventory_drift_check", inventory_drift.run,
                 {"run_id": "manual__misread", "params": {"location_map": LOCATIONS}})

    state = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        run, = state.last_runs("inventory_drift_check")
        assert run.extra["status"] == "failed" and "compared no SKU-location" in run.extra["nothing_useful"]
        assert run.extra["read"] > 0
        config = watchdog.WatchdogConfig.from_settings({})
        findings = watchdog.check(watchdog.collect(state, config), config)
        found = [f for f in findings if f.check == "nothing_compared"]
        assert [f.flow for f in found] == ["inventory_drift_check"], findings
        assert "compared no SKU-location" in found[0].message
    finally:
        state.close()


def test_a_sync_flow_whose_every_record_is_dead_lettered_did_nothing_useful(
    fresh: Any, store: StateStore, storefront_adapter: Any, erp_adapter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # customers_sync read through a mapping that fits no record: each one a dead letter (the
    # quality gate, told to quarantine only, lets the run finish)
    monkeypatch.setenv("ERPSYNC_QUALITY_THRESHOLDS", "customers_sync=1")
    misread = MisreadStore(fresh.storefront_url, fresh.token, timeout=5)
    summary = customers.run(ctx_for("customers_sync", store, erp_adapter, misread, "c1"))
    assert summary.read > 0 and summary.quarantined == summary.read and summary.done == 0, summary.render()
    reason = useless_reason(summary, 0.5, 10)
    assert reason is not None and "compared nothing" in reason
    # read right, the same records are synced: nothing to say
    good = customers.run(ctx_for("customers_sync", store, erp_adapter, storefront_adapter, "c2"))
    assert good.read > 0 and useless_reason(good, 0.5, 10) is None, good.render()
    # a flow that counts its outcomes in its own units fails only when every record was dead-lettered
    assert useless_reason(RunSummary(flow="pricing_sync", read=1000, done=3), 0.5, 10) is None
