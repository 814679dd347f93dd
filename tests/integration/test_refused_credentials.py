"""Refused credentials are a configuration problem of the whole run, never of one record: the run
stops with an AuthError (the task runtime turns it into one line naming the connection) and not a
single record is dead-lettered, so fixing the password and rerunning syncs everything."""

from __future__ import annotations

import logging

import pytest

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.errors import AuthError
from erpsync.flows import customers, orders
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore
from tests.fixtures.sandbox import TEST_RETRY, TEST_TIMEOUT

pytestmark = pytest.mark.integration


def _ctx(flow: str, store: StateStore, erp, storefront) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id="run-1", store=store, erp=erp, storefront=storefront,
                               params={}, log=logging.getLogger(f"test.{flow}"))


@pytest.mark.parametrize("flow", [customers, orders], ids=["customers_sync", "orders_sync"])
def test_wrong_erp_password_stops_the_run_and_dead_letters_nothing(fresh, store, storefront_adapter, flow) -> None:
    name = flow.__name__.rsplit(".", 1)[-1] + "_sync"
    bad = SandboxErpAdapter(fresh.erp_url, fresh.erp_user, "not-the-password", timeout=TEST_TIMEOUT,
                            retry=TEST_RETRY)
    try:
        with pytest.raises(AuthError, match="invalid_credentials"):
            flow.run(_ctx(name, store, bad, storefront_adapter))
    finally:
        bad.http.close()
    assert store.list_dead_letters(flow=name) == []
    assert store.get_cursor(name) is None  # the records are read again once the password is fixed

    good = SandboxErpAdapter(fresh.erp_url, fresh.erp_user, fresh.erp_password, timeout=TEST_TIMEOUT,
                             retry=TEST_RETRY)
    try:
        if flow is orders:
            customers.run(_ctx("customers_sync", store, good, storefront_adapter))
        summary = flow.run(_ctx(name, store, good, storefront_adapter))
    finally:
        good.http.close()
    assert summary.done > 0 and summary.quarantined == 0
