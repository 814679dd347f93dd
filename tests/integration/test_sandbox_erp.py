"""The sandbox ERP over real HTTP: sessions, page pagination, filters, keyed writes, shipments."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.errors import PermanentError
from erpsync.sandbox.launcher import Sandbox
from tests.drivers.sandbox import erp_customers

pytestmark = pytest.mark.integration


def session(sb: Sandbox) -> dict[str, str]:
    r = requests.post(f"{sb.erp_url}/api/session", json={"username": sb.erp_user, "password": sb.erp_password}, timeout=5)
    assert r.status_code == 201
    assert r.json()["expires_at"].endswith("Z")
    return {"X-Session-Id": r.json()["session_id"]}


def order_payload(ref: str, customer: str = "CUST-000001") -> dict[str, Any]:
    return {"external_ref": ref, "customer_no": customer, "order_date": "2026-11-23T10:00:00Z", "currency": "USD",
            "exchange_rate": "1", "lines": [{"line_no": 1, "item_code": "ITEM-000002", "qty": 2, "unit_price": "10.00",
                                              "discount": "0.00", "taxes": []}],
            "shipping": {"method": "STANDARD", "amount": "0.00", "address": None}, "payments": [], "taxes": [],
            "discounts": [], "total": "20.00"}


def test_wrong_credentials_and_missing_session_are_401(clean_sandbox: Sandbox) -> None:
    r = requests.post(f"{clean_sandbox.erp_url}/api/session", json={"username": "erpsync", "password": "x"}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_credentials")
    r = requests.get(f"{clean_sandbox.erp_url}/api/items", timeout=5)
    assert (r.status_code, r.json()["error"]) == (401, "missing_session")


def test_expired_session_is_401_and_the_adapter_logs_in_again(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    headers = session(clean_sandbox)
    assert next(erp_adapter.list_items())["item_code"] == "ITEM-000001"
    clean_sandbox.set_faults("erp", expire_sessions=True)
    r = requests.get(f"{clean_sandbox.erp_url}/api/items", headers=headers, timeout=5)
    assert (r.status_code, r.json()["error"]) == (401, "session_expired")
    assert erp_adapter.find_item_by_sku("SKU-000003")["item_code"] == "ITEM-000003"
    stats = clean_sandbox.stats("erp")
    assert stats["sessions_created"] == 3  # raw session + adapter login + one re-login
    assert stats["session_expired_hits"] == 2


def test_session_ttl_expires_sessions(tmp_path: Any) -> None:
    from erpsync.sandbox.launcher import start_service

    svc = start_service("erp", args=["--skus", "10", "--customers", "10", "--session-ttl", "0.3"], log_dir=tmp_path)
    try:
        sb = type("S", (), {"erp_url": svc.url, "erp_user": "erpsync", "erp_password": "erpsync-sandbox"})
        headers = session(sb)  # type: ignore[arg-type]
        assert requests.get(f"{svc.url}/api/items", headers=headers, timeout=5).status_code == 200
        import time

        time.sleep(0.5)
        r = requests.get(f"{svc.url}/api/items", headers=headers, timeout=5)
        assert (r.status_code, r.json()["error"]) == (401, "session_expired")
    finally:
        svc.stop()


@pytest.mark.parametrize("path,key", [("/api/stock", ("item_code", "warehouse")), ("/api/items", ("item_code",)),
                                      ("/api/customers", ("customer_no",)), ("/api/prices", None)])
def test_page_pagination_is_complete(clean_sandbox: Sandbox, path: str, key: tuple[str, ...] | None) -> None:
    headers = session(clean_sandbox)
    everything = requests.get(f"{clean_sandbox.erp_url}{path}", params={"page_size": 1000}, headers=headers, timeout=5).json()
    seen = []
    page = 1
    while True:
        body = requests.get(f"{clean_sandbox.erp_url}{path}", params={"page": page, "page_size": 7}, headers=headers,
                            timeout=5).json()
        assert body["total"] == everything["total"]
        seen.extend(body["data"])
        if not body["has_more"]:
            break
        page += 1
    assert seen == everything["data"]
    assert len(seen) == everything["total"]
    if key:
        assert len({tuple(r[k] for k in key) for r in seen}) == len(seen)


def test_sizes_follow_the_seed(clean_sandbox: Sandbox) -> None:
    headers = session(clean_sandbox)
    totals = {p: requests.get(f"{clean_sandbox.erp_url}/api/{p}", params={"page_size": 1}, headers=headers,
                              timeout=5).json()["total"] for p in ("items", "stock", "customers")}
    assert totals == {"items": 60, "stock": 180, "customers": 150}


def test_updated_since_returns_only_changed_records_after_a_change(
    clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter
) -> None:
    after_seed = dt.datetime(2026, 11, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert list(erp_customers(erp_adapter, updated_since=after_seed)) == []
    updated = erp_adapter.update_customer("CUST-000007", {"phone": "+1-555-0000"}, idempotency_key="t-upd-1")
    assert updated["phone"] == "+1-555-0000"
    changed = list(erp_customers(erp_adapter, updated_since=after_seed))
    assert [c["customer_no"] for c in changed] == ["CUST-000007"]
    # a window in the middle of the seeded year holds only the seeded records of that window
    mid = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    later = list(erp_customers(erp_adapter, updated_since=mid))
    assert 0 < len(later) < 150
    assert all(c["modified_at"] >= "2026-05-01T00:00:00Z" for c in later)
    churn = clean_sandbox.admin("erp", "POST", "churn", {"entity": "stock", "count": 5})
    assert len(list(erp_adapter.list_stock(updated_since=after_seed))) >= 5
    assert len(churn["changed"]) == 5


def test_bad_time_filter_is_400(clean_sandbox: Sandbox) -> None:
    r = requests.get(f"{clean_sandbox.erp_url}/api/items", params={"updated_since": "yesterday"},
                     headers=session(clean_sandbox), timeout=5)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_parameter")


def test_customer_search_by_email_ignores_case_and_spaces(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    shared = next(c for c in erp_customers(erp_adapter) if c["email"] != c["email"].strip().lower())
    found = erp_adapter.find_customers(email=f"  {shared['email'].strip().upper()} ")
    assert [c["customer_no"] for c in found] == [shared["customer_no"]]
    postcode = shared["addresses"][0]["postal_code"]
    assert shared["customer_no"] in [c["customer_no"] for c in erp_adapter.find_customers(postcode=postcode.lower())]
    assert erp_adapter.find_customers(name=shared["name"][:4])


def test_create_customer_is_idempotent_and_validated(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    payload = {"name": "Jane Roe", "email": "jane@example.com", "currency": "EUR", "external_ref": "C999",
               "addresses": [{"type": "BILL_TO", "street": "1 A St", "street2": "", "city": "Berlin", "state": "",
                              "postal_code": "10115", "country": "DE"}]}
    first = erp_adapter.create_customer(payload, idempotency_key="cust-C999")
    again = erp_adapter.create_customer(payload, idempotency_key="cust-C999")
    assert first == again and first["customer_no"] == "CUST-000151"
    assert clean_sandbox.stats("erp")["idempotent_replays"] == 1
    assert erp_adapter.find_customers(email="JANE@example.com")[0]["customer_no"] == first["customer_no"]
    with pytest.raises(PermanentError) as err:
        erp_adapter.create_customer({"email": "x@example.com"}, idempotency_key="cust-bad")
    assert err.value.status == 422 and err.value.body["field"] == "name"


def test_sales_order_idempotency_key_and_lookup(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    created = erp_adapter.create_sales_order(order_payload("O100001"), idempotency_key="so-O100001")
    replay = erp_adapter.create_sales_order(order_payload("O100001"), idempotency_key="so-O100001")
    assert created == replay and created["order_no"] == "SO-000001" and created["status"] == "open"
    assert erp_adapter.find_sales_order("O100001")["order_no"] == "SO-000001"
    assert erp_adapter.find_sales_order("O999999") is None
    stats = clean_sandbox.stats("erp")
    assert (stats["sales_orders"], stats["writes_committed"], stats["idempotent_replays"]) == (1, 1, 1)
    r = requests.post(f"{clean_sandbox.erp_url}/api/sales-orders", json=order_payload("O100002"),
                      headers={**session(clean_sandbox), "Idempotency-Key": "so-O100001"}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (422, "idempotency_key_reused")


def test_sales_order_validation(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    with pytest.raises(PermanentError) as err:
        erp_adapter.create_sales_order(order_payload("O1", customer="CUST-999999"), idempotency_key="so-bad-1")
    assert err.value.body["error"] == "unknown_customer"
    bad_item = order_payload("O2")
    bad_item["lines"][0]["item_code"] = "ITEM-999999"
    with pytest.raises(PermanentError) as err:
        erp_adapter.create_sales_order(bad_item, idempotency_key="so-bad-2")
    assert err.value.body["error"] == "unknown_item"


def test_shipping_an_order_creates_a_shipment_and_moves_stock(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    before = next(s for s in erp_adapter.list_stock() if s["item_code"] == "ITEM-000002")
    erp_adapter.create_sales_order(order_payload("O100003"), idempotency_key="so-O100003")
    allocated = next(s for s in erp_adapter.list_stock() if s["item_code"] == "ITEM-000002")
    assert allocated["allocated"] == before["allocated"] + 2
    shipment = clean_sandbox.admin("erp", "POST", "ship", {"external_ref": "O100003", "carrier": "DHL"})
    assert shipment["packages"][0]["carrier"] == "DHL" and shipment["external_ref"] == "O100003"
    listed = list(erp_adapter.list_shipments(updated_since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    assert [s["shipment_no"] for s in listed] == [shipment["shipment_no"]]
    assert erp_adapter.find_sales_order("O100003")["status"] == "shipped"
    after = next(s for s in erp_adapter.list_stock() if s["item_code"] == "ITEM-000002")
    assert (after["on_hand"], after["allocated"]) == (max(0, before["on_hand"] - 2), before["allocated"])
    r = requests.post(f"{clean_sandbox.erp_url}/_admin/ship", json={"external_ref": "O100003"}, timeout=5)
    assert r.status_code == 409


def _stock(erp_adapter: SandboxErpAdapter, code: str) -> dict[str, dict[str, Any]]:
    return {s["warehouse"]: s for s in erp_adapter.stock_for_items([code])}


def test_sales_orders_are_booked_on_the_warehouse_they_name(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    """Several warehouses with the stock split over them (the default); no default warehouse: an
    order naming none is refused as Tryton refuses it; one beyond a warehouse's stock is accepted
    and shows as negative there; shipping takes the stock from the order's warehouse."""
    sb = clean_sandbox
    assert sb.settings("erp") == {"default_warehouse": "MAIN"}  # the test fixture's pin
    assert sb.settings("erp", default_warehouse=None) == {"default_warehouse": None}
    before = _stock(erp_adapter, "ITEM-000002")
    assert sorted(before) == ["EAST", "MAIN", "WEST"]
    assert sum(1 for s in before.values() if s["on_hand"] > 0) >= 2  # split over several warehouses

    with pytest.raises(PermanentError) as err:
        erp_adapter.create_sales_order(order_payload("O-NOWH"), idempotency_key="so-nowh")
    body = err.value.body
    assert (err.value.status, body["error"], body["field"]) == (422, "warehouse_required", "warehouse")
    assert "you must enter a warehouse" in body["message"] and body["warehouses"] == ["MAIN", "EAST", "WEST"]
    with pytest.raises(PermanentError) as err:
        erp_adapter.create_sales_order({**order_payload("O-BADWH"), "warehouse": "MOON"}, idempotency_key="so-badwh")
    assert (err.value.body["error"], err.value.body["field"]) == ("unknown_warehouse", "warehouse")
    assert sb.stats("erp")["sales_orders"] == 0  # nothing booked by the refused ones

    east = before["EAST"]
    qty = east["on_hand"] - east["allocated"] + 7  # 7 beyond what EAST has
    big = order_payload("O-EAST")
    big["lines"][0]["qty"] = qty
    created = erp_adapter.create_sales_order({**big, "warehouse": "EAST"}, idempotency_key="so-east")
    assert created["warehouse"] == "EAST" and created["status"] == "open"
    after = _stock(erp_adapter, "ITEM-000002")
    assert after["EAST"]["on_hand"] - after["EAST"]["allocated"] == -7  # negative there, as ERPs show it
    assert after["MAIN"] == before["MAIN"] and after["WEST"] == before["WEST"]

    sb.admin("erp", "POST", "ship", {"external_ref": "O-EAST"})
    shipped = _stock(erp_adapter, "ITEM-000002")
    assert shipped["EAST"]["on_hand"] == east["on_hand"] - qty and shipped["EAST"]["allocated"] == east["allocated"]
    assert shipped["MAIN"]["on_hand"] == before["MAIN"]["on_hand"]

    sb.settings("erp", default_warehouse="WEST")  # a default warehouse, like a Tryton user's preference
    assert erp_adapter.create_sales_order(order_payload("O-DEF"), idempotency_key="so-def")["warehouse"] == "WEST"
    r = requests.post(f"{sb.erp_url}/_admin/settings", json={"default_warehouse": "MOON"}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (422, "unknown_warehouse")
    r = requests.post(f"{sb.erp_url}/_admin/settings", json={"require": True}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (422, "unknown_settings")
    sb.reset()
    assert sb.settings("erp") == {"default_warehouse": "MAIN"}  # reset returns to the launch settings


def test_one_warehouse_takes_orders_that_name_none(seeded: Any, erp_adapter: SandboxErpAdapter) -> None:
    sb = seeded(seed=42, skus=10, locations=1, customers=5, orders=5)
    sb.settings("erp", default_warehouse=None)
    assert erp_adapter.create_sales_order(order_payload("O-ONE"), idempotency_key="so-one")["warehouse"] == "MAIN"
