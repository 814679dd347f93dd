"""The sandbox storefront over real HTTP: token, cursors, filters, events, writes, batch limit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import requests

from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.errors import PermanentError
from erpsync.sandbox.launcher import Sandbox
from tests.drivers.sandbox import erp_customers, store_events

pytestmark = pytest.mark.integration

AFTER_SEED = dt.datetime(2026, 11, 1, 0, 0, 1, tzinfo=dt.UTC)


def auth(sb: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.token}"}


def all_pages(sb: Sandbox, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit, **params}
    while True:
        body = requests.get(f"{sb.storefront_url}{path}", params=query, headers=auth(sb), timeout=5).json()
        out.extend(body["items"])
        if not body["next_cursor"]:
            return out
        query = {"limit": limit, "cursor": body["next_cursor"]}


def test_bearer_token_is_required(clean_sandbox: Sandbox) -> None:
    url = f"{clean_sandbox.storefront_url}/admin/api/orders"
    assert requests.get(url, timeout=5).json()["error"] == "missing_token"
    r = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_token")
    assert requests.get(url, headers=auth(clean_sandbox), timeout=5).status_code == 200


@pytest.mark.parametrize("path,count", [("/admin/api/orders", 120), ("/admin/api/customers", 150),
                                        ("/admin/api/products", 48), ("/admin/api/inventory_levels", 180)])
def test_cursor_pagination_is_complete(clean_sandbox: Sandbox, path: str, count: int) -> None:
    small = all_pages(clean_sandbox, path, 7)
    big = all_pages(clean_sandbox, path, 250)
    assert small == big and len(small) == count
    keys = [(r.get("id"), r.get("sku"), r.get("location_id")) for r in small]
    assert len(set(keys)) == count


def test_no_record_lost_or_repeated_when_records_change_while_paging(clean_sandbox: Sandbox) -> None:
    sb = clean_sandbox
    seen: list[str] = []
    body = requests.get(f"{sb.storefront_url}/admin/api/orders", params={"limit": 10}, headers=auth(sb), timeout=5).json()
    seen += [o["id"] for o in body["items"]]
    # orders on the page already read and on a page not read yet change; new orders arrive
    for oid in ("O100003", "O100050"):
        requests.post(f"{sb.storefront_url}/admin/api/orders/{oid}/cancel", headers=auth(sb), timeout=5)
    sb.admin("storefront", "POST", "orders/generate", {"count": 3})
    cursor = body["next_cursor"]
    while cursor:
        body = requests.get(f"{sb.storefront_url}/admin/api/orders", params={"limit": 10, "cursor": cursor},
                            headers=auth(sb), timeout=5).json()
        seen += [o["id"] for o in body["items"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 123


def test_updated_since_and_before_on_orders(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    assert list(storefront_adapter.list_orders(updated_since=AFTER_SEED)) == []
    new = clean_sandbox.admin("storefront", "POST", "orders/generate", {"count": 4})
    assert sorted(o["id"] for o in storefront_adapter.list_orders(updated_since=AFTER_SEED)) == sorted(new["orders"])
    mid = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    before = list(storefront_adapter.list_orders(updated_before=mid))
    after = list(storefront_adapter.list_orders(updated_since=mid))
    assert len(before) + len(after) == 124
    assert all(o["updated_at"] < "2026-05-01T00:00:00Z" for o in before)
    assert all(o["updated_at"] >= "2026-05-01T00:00:00Z" for o in after)
    assert list(storefront_adapter.list_customers(updated_since=AFTER_SEED)) != []  # new customers


def test_events_feed_after_a_checkout(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    items, cursor = store_events(storefront_adapter, None, limit=1000)
    assert len(items) == 270 and cursor == "270"  # 150 customer.created + 120 order.created
    assert [e["seq"] for e in items] == list(range(1, 271))
    r = requests.post(f"{clean_sandbox.storefront_url}/admin/api/orders", headers=auth(clean_sandbox), timeout=5,
                      json={"email": "new.shopper@example.com", "first_name": "New", "last_name": "Shopper",
                            "currency": "EUR", "line_items": [{"sku": "SKU-000002", "quantity": 2}]})
    assert r.status_code == 201
    order = r.json()
    assert order["currency"] == "EUR" and order["customer"]["email"] == "new.shopper@example.com"
    items, cursor = store_events(storefront_adapter, cursor)
    assert [(e["type"], e["id"]) for e in items] == [
        ("customer.created", order["customer"]["id"]), ("order.created", order["id"]), ("order.paid", order["id"])]
    assert store_events(storefront_adapter, cursor) == ([], cursor)
    guest = requests.post(f"{clean_sandbox.storefront_url}/admin/api/orders", headers=auth(clean_sandbox), timeout=5,
                          json={"email": "g@example.com", "guest": True, "line_items": [{"sku": "SKU-000001"}]}).json()
    assert guest["customer"] is None
    unknown = requests.post(f"{clean_sandbox.storefront_url}/admin/api/orders", headers=auth(clean_sandbox), timeout=5,
                            json={"email": "g@example.com", "guest": True, "line_items": [{"sku": "NOPE"}]})
    assert (unknown.status_code, unknown.json()["error"]) == (422, "unknown_sku")


def test_seeded_orders_add_up_and_include_guests(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    from decimal import Decimal

    orders = list(storefront_adapter.list_orders())
    assert any(o["customer"] is None for o in orders)
    for o in orders:
        lines = sum(Decimal(li["price"]) * li["quantity"] - Decimal(li["total_discount"]) for li in o["line_items"])
        taxes = sum(Decimal(t["price"]) for li in o["line_items"] for t in li["tax_lines"])
        taxes += sum(Decimal(t["price"]) for t in o["tax_lines"])
        ship = sum(Decimal(s["price"]) for s in o["shipping_lines"])
        disc = sum(Decimal(d["amount"]) for d in o["discount_codes"])
        assert lines + taxes + ship - disc == Decimal(o["total_price"]), o["id"]


def test_generate_orders_with_guests_and_new_customers(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    out = clean_sandbox.admin("storefront", "POST", "orders/generate",
                              {"count": 20, "guest_share": 0.5, "new_customer_share": 0.5, "seed": 3})
    assert len(out["orders"]) == 20 and out["customers"]
    orders = [storefront_adapter.get_order(oid) for oid in out["orders"]]
    guests = [o for o in orders if o["customer"] is None]
    assert 0 < len(guests) < 20
    assert storefront_adapter.get_order("O999999") is None


def test_inventory_batch_limit(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    items = [{"sku": f"SKU-{(i % 60) + 1:06d}", "location_id": "MAIN", "available": i} for i in range(251)]
    r = requests.post(f"{clean_sandbox.storefront_url}/admin/api/inventory_levels/set", json={"items": items},
                      headers=auth(clean_sandbox), timeout=5)
    assert r.status_code == 413
    assert r.json()["error"] == "batch_too_large" and r.json()["limit"] == 250 and "250" in r.json()["message"]
    with pytest.raises(ValueError, match="batches of 250"):
        storefront_adapter.set_inventory(items, idempotency_key="inv-too-big")
    ok = storefront_adapter.set_inventory(items[:250], idempotency_key="inv-ok")
    assert ok["updated"] == 250
    levels = {(x["sku"], x["location_id"]): x["available"] for x in storefront_adapter.list_inventory()}
    assert levels[("SKU-000001", "MAIN")] == 240  # the last write of that sku in the batch wins


def test_inventory_rejects_unknown_sku_all_or_nothing(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    with pytest.raises(PermanentError) as err:
        storefront_adapter.set_inventory([{"sku": "SKU-000001", "location_id": "MAIN", "available": 5},
                                          {"sku": "NOPE", "location_id": "MAIN", "available": 1}],
                                         idempotency_key="inv-bad")
    assert err.value.status == 422 and err.value.body["errors"][0]["index"] == 1
    first = next(storefront_adapter.list_inventory())
    assert first["updated_at"] < "2026-11-01"  # nothing was set


def test_product_upsert_creates_then_updates_and_replays(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    payload = {"title": "Unpublished item", "status": "active",
               "variants": [{"sku": "SKU-000005", "price": "12.00"}]}  # item 5 is not published at seed
    created = storefront_adapter.upsert_product(payload, idempotency_key="p-5-v1")
    assert created["created"] is True and created["product"]["handle"] == "sku-000005"
    assert storefront_adapter.upsert_product(payload, idempotency_key="p-5-v1") == created
    updated = storefront_adapter.upsert_product({**payload, "title": "Renamed"}, idempotency_key="p-5-v2")
    assert updated["created"] is False and updated["product"]["id"] == created["product"]["id"]
    seeded = storefront_adapter.upsert_product({"title": "X", "variants": [{"sku": "SKU-000001", "price": "1.00"}]},
                                               idempotency_key="p-1")
    assert seeded["created"] is False and seeded["product"]["id"] == "P100001"
    assert len(list(storefront_adapter.list_products())) == 49
    assert [p["id"] for p in storefront_adapter.list_products(updated_since=AFTER_SEED)] == ["P100001", created["product"]["id"]]
    stats = clean_sandbox.stats("storefront")
    assert (stats["writes_committed"], stats["idempotent_replays"]) == (3, 1)


def test_fulfillments(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    order = next(o for o in storefront_adapter.list_orders() if not o["cancelled_at"])
    line = order["line_items"][0]
    f = storefront_adapter.add_fulfillment(order["id"], {"tracking_company": "UPS", "tracking_number": "1Z1",
                                                         "line_items": [{"sku": line["sku"], "quantity": 1}]},
                                           idempotency_key=f"ful-{order['id']}-1")
    assert f["fulfillment"]["status"] == "success"
    again = storefront_adapter.add_fulfillment(order["id"], {"tracking_company": "UPS", "tracking_number": "1Z1",
                                                             "line_items": [{"sku": line["sku"], "quantity": 1}]},
                                               idempotency_key=f"ful-{order['id']}-1")
    assert again == f  # replay: no second fulfillment
    with pytest.raises(PermanentError) as err:
        storefront_adapter.add_fulfillment(order["id"], {"line_items": [{"sku": line["sku"], "quantity": 999}]},
                                           idempotency_key=f"ful-{order['id']}-2")
    assert err.value.body["error"] == "over_fulfillment"
    rest = storefront_adapter.add_fulfillment(order["id"], {"tracking_number": "1Z2"}, idempotency_key=f"ful-{order['id']}-3")
    assert rest["fulfillment"]["line_items"]
    got = storefront_adapter.get_order(order["id"])
    assert got["fulfillment_status"] == "fulfilled" and len(got["fulfillments"]) == 2


def test_shared_emails_between_storefront_and_erp(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter, erp_adapter: Any) -> None:
    sf = {c["email"].strip().lower(): c["email"] for c in storefront_adapter.list_customers()}
    erp = {c["email"].strip().lower(): c["email"] for c in erp_customers(erp_adapter)}
    shared = set(sf) & set(erp)
    assert 3 <= len(shared) <= 10
    assert any(sf[e] != erp[e] for e in shared)  # same address, other case or spacing


def _levels(sb: Sandbox, sku: str) -> dict[str, int]:
    r = requests.get(f"{sb.storefront_url}/admin/api/inventory_levels/by-skus", params={"skus": sku},
                     headers=auth(sb), timeout=5)
    return {rec["location_id"]: rec["available"] for rec in r.json()["data"]}


def _checkout(sb: Sandbox, sku: str, qty: int, **extra: Any) -> requests.Response:
    return requests.post(f"{sb.storefront_url}/admin/api/orders", headers=auth(sb), timeout=5,
                         json={"email": "flash@example.com", "guest": True,
                               "line_items": [{"sku": sku, "quantity": qty}], **extra})


def test_checkouts_beyond_stock_are_refused_by_default(clean_sandbox: Sandbox) -> None:
    sb = clean_sandbox
    assert sb.settings("storefront")["inventory_policy"] == "deny"
    levels = _levels(sb, "SKU-000002")
    total = sum(levels.values())
    assert total > 0 and len(levels) == 3
    r = _checkout(sb, "SKU-000002", total + 1)
    assert (r.status_code, r.json()["error"], r.json()["available"]) == (422, "insufficient_stock", total)
    assert _levels(sb, "SKU-000002") == levels  # all or nothing
    two_lines = requests.post(f"{sb.storefront_url}/admin/api/orders", headers=auth(sb), timeout=5, json={
        "email": "flash@example.com", "guest": True,
        "line_items": [{"sku": "SKU-000002", "quantity": total}, {"sku": "SKU-000002", "quantity": 1}]})
    assert two_lines.status_code == 422  # two lines of one sku share its stock
    # routed as stores do: the first location that has it all ships it (the order's location_id)
    biggest = max(levels.values())
    one = _checkout(sb, "SKU-000002", biggest)
    assert one.status_code == 201
    assert one.json()["location_id"] == next(loc for loc in ("MAIN", "EAST", "WEST") if levels[loc] == biggest)
    rest = _checkout(sb, "SKU-000002", total - biggest)  # the rest, from wherever it is
    assert rest.status_code == 201 and rest.json()["location_id"] in levels
    assert _levels(sb, "SKU-000002") == dict.fromkeys(levels, 0)
    assert _checkout(sb, "SKU-000002", 1).status_code == 422
    sold_elsewhere = _checkout(sb, "SKU-000002", 3, inventory_behaviour="bypass", source_name="marketplace")
    assert sold_elsewhere.status_code == 201 and "location_id" not in sold_elsewhere.json()
    assert _levels(sb, "SKU-000002") == dict.fromkeys(levels, 0)  # the store's levels untouched
    assert _checkout(sb, "SKU-000002", 1, inventory_behaviour="maybe").status_code == 422

    sb.settings("storefront", inventory_policy="continue")  # backorders: the level goes negative
    assert _checkout(sb, "SKU-000002", 2).status_code == 201
    assert _levels(sb, "SKU-000002")["MAIN"] == -2
    assert sb.admin("storefront", "POST", "inventory_policy", {"policy": None}) == {"policy": None}
    assert sb.settings("storefront")["inventory_policy"] == "untracked"
    assert _checkout(sb, "SKU-000002", 5).status_code == 201
    assert _levels(sb, "SKU-000002")["MAIN"] == -2  # not tracked
    r = requests.post(f"{sb.storefront_url}/_admin/settings", json={"inventory_policy": "maybe"}, timeout=5)
    assert (r.status_code, r.json()["field"]) == (422, "inventory_policy")
    sb.reset()
    assert sb.settings("storefront")["inventory_policy"] == "deny"


def _money(order: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(tax charged, total recomputed from the parts) of a store order."""
    lines = sum(Decimal(li["price"]) * li["quantity"] - Decimal(li["total_discount"]) for li in order["line_items"])
    tax = sum(Decimal(t["price"]) for li in order["line_items"] for t in li["tax_lines"])
    tax += sum(Decimal(t["price"]) for t in order["tax_lines"])
    ship = sum(Decimal(s["price"]) for s in order["shipping_lines"])
    disc = sum(Decimal(d["amount"]) for d in order["discount_codes"])
    return tax, lines + tax + ship - disc


def test_orders_are_taxed_by_default_and_taxes_can_be_set_or_turned_off(clean_sandbox: Sandbox) -> None:
    sb = clean_sandbox
    us = {"address1": "1 Main St", "city": "Austin", "province": "TX", "zip": "78701", "country_code": "US"}
    order = _checkout(sb, "SKU-000002", 1, shipping_address=us).json()
    tax, total = _money(order)
    line = order["line_items"][0]
    assert line["tax_lines"][0]["code"] == "US-STATE" and line["tax_lines"][0]["rate"] == "0.0725"
    assert tax > 0 and total == Decimal(order["total_price"])  # the total includes the tax

    sb.settings("storefront", tax_rate="0.10", tax_code="VAT10")  # one flat rate, as in issue 16's store
    order = _checkout(sb, "SKU-000002", 1, shipping_address=us).json()
    line = order["line_items"][0]
    net = Decimal(line["price"]) - Decimal(line["total_discount"])
    assert [(t["code"], t["rate"], Decimal(t["price"])) for t in line["tax_lines"]] == [
        ("VAT10", "0.10", (net * Decimal("0.10")).quantize(Decimal("0.01")))]
    assert _money(order)[1] == Decimal(order["total_price"])

    sb.settings("storefront", taxes=False)
    order = _checkout(sb, "SKU-000002", 1, shipping_address=us).json()
    assert order["line_items"][0]["tax_lines"] == [] and order["tax_lines"] == []
    assert _money(order) == (Decimal("0"), Decimal(order["total_price"]))
    r = requests.post(f"{sb.storefront_url}/_admin/settings", json={"tax_rate": "10%"}, timeout=5)
    assert (r.status_code, r.json()["field"]) == (422, "tax_rate")
    sb.reset()
    assert sb.settings("storefront") == {"inventory_policy": "deny", "taxes": True, "tax_rate": None, "tax_code": "TAX"}
