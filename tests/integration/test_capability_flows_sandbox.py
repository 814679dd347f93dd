"""A flow asked to do what its connector lacks says so once per run (issue 18, the capability
matrix), against the sandbox over HTTP: an ERP connector without RMAs or without erasure (the
sandbox ERP adapter with those parts taken out and declared missing, as a new ERP's first
connector would be) gets one dead letter per run naming the connector and the capability, not
one per return or request, and nothing is lost: the store's returns and requests stay as they were."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.connectors.base import ErpAdapter
from erpsync.connectors.capabilities import replace
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.errors import ConfigError
from erpsync.flows import erasure, returns
from erpsync.flows.replay import replay
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import ctx_for, sync_all
from tests.integration.test_returns_sandbox import _open_return

pytestmark = pytest.mark.integration


class ErpWithoutRmasOrErasure(SandboxErpAdapter):
    capabilities = replace(SandboxErpAdapter.capabilities, name="ERP without RMAs", rmas=False, erasure=False,
                           notes=(("rmas", "no return API"), ("erasure", "no anonymisation API")))
    create_return = ErpAdapter.create_return
    find_return = ErpAdapter.find_return
    list_returns = ErpAdapter.list_returns
    anonymize_customer = ErpAdapter.anonymize_customer


@pytest.fixture
def lacking_erp(sandbox: Any) -> Any:
    from tests.fixtures.sandbox import TEST_RETRY, TEST_TIMEOUT

    erp = ErpWithoutRmasOrErasure(sandbox.erp_url, sandbox.erp_user, sandbox.erp_password, timeout=TEST_TIMEOUT,
                                  page_size=25, retry=TEST_RETRY)
    yield erp
    erp.http.close()


def test_returns_to_an_erp_without_rmas_are_one_dead_letter_per_run_and_stay_requested(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any, lacking_erp: Any
) -> None:
    sync_all(store, erp_adapter, storefront_adapter)
    synced = [o for o in storefront_adapter.list_orders() if store.get_xref("erp", "sales_order", str(o["id"]))]
    opened = [_open_return(fresh, o["id"], [(o["line_items"][0]["sku"], 1)]) for o in synced[:3]]
    assert len(opened) == 3
    for n in (1, 2):
        s = returns.run(ctx_for("returns_sync", store, lacking_erp, storefront_adapter, f"no-rma-{n}"))
        assert s.quarantined == 1 and s.done == 0 and s.failed == 0, s.render()
    letters = store.list_dead_letters(flow="returns_sync")
    assert [(d.entity, d.external_id, d.attempts) for d in letters] == [("capability", "erp:rmas", 2)]
    assert letters[0].reason.startswith("unsupported_by_connector: ERP without RMAs (ErpWithoutRmasOrErasure) "
                                        "lacks rmas (no return API); no return is read or written")
    assert fresh.stats("erp")["returns"] == 0
    assert {r["id"]: r["status"] for r in storefront_adapter.list_returns()} == {r["id"]: r["status"] for r in opened}
    with pytest.raises(ConfigError, match="lacks rmas .* nothing to replay"):
        replay(ctx_for("returns_sync", store, lacking_erp, storefront_adapter, "replay"), letters[0])


def test_erasure_requests_for_an_erp_without_erasure_stay_pending_with_one_dead_letter(
    fresh: Any, store: StateStore, storefront_adapter: Any, lacking_erp: Any
) -> None:
    ids = [c["id"] for c in list(storefront_adapter.list_customers())[:2]]
    for cid in ids:
        fresh.admin("storefront", "POST", "erasure_requests", {"customer_id": cid})
    s = erasure.run(ctx_for("customer_erasure", store, lacking_erp, storefront_adapter, "erase-1"))
    assert s.quarantined == 1 and s.done == 0 and s.read == 2, s.render()
    (dl,) = store.list_dead_letters(flow="customer_erasure")
    assert (dl.entity, dl.external_id) == ("capability", "erp:erasure")
    assert "lacks erasure (no anonymisation API); 2 pending erasure request(s) stay pending" in dl.reason
    assert {r["customer_id"] for r in dl.payload["requests"]} == set(ids)
    assert "email" not in str(dl.payload)  # the letter keeps no personal data
    assert len(storefront_adapter.list_erasure_requests(status="pending")) == 2
