"""Daily order reconciliation and customer erasure against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import requests

from erpsync.flows import erasure, reconciliation
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import ctx_for, sync_all
from tests.integration.test_shipments_sandbox import place_order

pytestmark = pytest.mark.integration


def test_daily_reconciliation_lists_every_difference(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    a = place_order(fresh, [("SKU-000002", 1)], email="recon.a@example.com")
    sync_all(store, erp_adapter, storefront_adapter)
    b = place_order(fresh, [("SKU-000003", 2)], email="recon.b@example.com")  # placed, never synced
    today = dt.datetime.now(dt.UTC).date().isoformat()
    s = reconciliation.run(ctx_for("orders_reconciliation", store, erp_adapter, storefront_adapter, "rec", date=today))
    report = store.get_drift_report(store.list_drift_reports(flow="orders_reconciliation")[0].id)
    kinds = {(i.kind, i.external_id) for i in report.items}
    assert ("missing_in_erp", b["id"]) in kinds
    assert not any(o == a["id"] for _, o in kinds)
    cur = report.summary["per_currency"]["USD"]
    assert cur["store_orders"] == cur["erp_orders"] + 1
    assert s.done >= 1 and s.reasons["missing_in_erp"] == 1


def test_erasure_anonymises_the_bound_erp_customer_and_audits_no_personal_data(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    email = "erase.me@example.com"
    order = place_order(fresh, [("SKU-000002", 1)], email=email)
    sync_all(store, erp_adapter, storefront_adapter)
    cid = order["customer"]["id"]
    customer_no = store.get_xref("erp", "customer", cid).internal_id
    fresh.admin("storefront", "POST", "erasure_requests", {"customer_id": cid})

    s = erasure.run(ctx_for("customer_erasure", store, erp_adapter, storefront_adapter, "erase-1"))
    assert s.done == 1 and s.quarantined == 0
    erp_customer = requests.get(f"{fresh.erp_url}/api/customers/{customer_no}",
                                headers={"X-Session-Id": erp_adapter.login()}, timeout=5).json()
    assert erp_customer["email"] is None and "Ship" not in erp_customer["name"] and erp_customer["addresses"] == []
    assert erp_adapter.find_sales_order(order["id"])["shipping"]["address"] is None
    assert fresh.stats("erp")["customers_anonymised"] == 1
    assert storefront_adapter.list_erasure_requests(status="pending") == []

    rows = store.list_audit(flow="customer_erasure")
    assert rows, "the erasure is audited"
    blob = json.dumps([r.__dict__ if hasattr(r, "__dict__") else str(r) for r in rows], default=str).lower()
    assert email not in blob and "erase.me" not in blob
    assert s.done == 1 and erasure.run(ctx_for("customer_erasure", store, erp_adapter, storefront_adapter,
                                               "erase-2")).done == 0


def test_erasure_of_a_person_only_matched_by_email_waits_for_review(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    erp_customer = erp_adapter.create_customer({"name": "B2B Buyer", "email": "buyer@corp.example"},
                                               idempotency_key="t-b2b")
    fresh.admin("storefront", "POST", "erasure_requests", {"email": "buyer@corp.example"})
    s = erasure.run(ctx_for("customer_erasure", store, erp_adapter, storefront_adapter, "erase-3"))
    assert s.quarantined == 1 and "erasure_needs_review" in s.dead_letters[0][2]
    dl = store.list_dead_letters(flow="customer_erasure")[0]
    assert "buyer@corp.example" not in json.dumps(dl.payload) and "buyer@corp" not in dl.reason
    assert erp_customer["customer_no"] in dl.reason
