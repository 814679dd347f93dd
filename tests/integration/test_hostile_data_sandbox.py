"""Issue 17: hostile records through the real flows against the sandbox, over HTTP.

A man-in-the-middle (``hostile_proxy``) splices records into the sandbox's list answers as a
broken or malicious remote would send them: stamped in the year 9999 or hours ahead, nested
~900 and ~1,000 levels deep, with a 10 MB field, priced ``1e309``, with a Cyrillic letter or an
invisible character in a code. Each becomes a dead letter with its reason, no cursor moves past
now + the clock skew, the run goes on (and again on retry), and the honest records are synced.
The corpus and its outcomes are tabled in docs/reliability.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.flows import catalog, customers, orders, pricing, returns, shipments
from erpsync.flows.base import FlowContext, RunSummary, parse_cursor
from erpsync.limits import DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_REASON_CHARS
from erpsync.state import StateStore
from tests.fixtures.sandbox import TEST_RETRY
from tests.integration.hostile_proxy import HostileProxy, nested
from tests.integration.test_shipments_sandbox import place_order

pytestmark = pytest.mark.integration

FAR = "9999-12-31T23:59:59Z"
TEN_MB = "A" * 10_000_000


@dataclass
class World:
    sb: Any
    sf_proxy: HostileProxy
    erp_proxy: HostileProxy
    erp: SandboxErpAdapter
    sf: SandboxStorefrontAdapter


@pytest.fixture
def world(fresh: Any) -> Iterator[World]:
    sf_proxy, erp_proxy = HostileProxy(fresh.storefront_url), HostileProxy(fresh.erp_url)
    erp = SandboxErpAdapter(erp_proxy.url, fresh.erp_user, fresh.erp_password, timeout=30.0, page_size=25,
                            retry=TEST_RETRY)
    sf = SandboxStorefrontAdapter(sf_proxy.url, fresh.token, timeout=30.0, page_size=25, retry=TEST_RETRY)
    yield World(fresh, sf_proxy, erp_proxy, erp, sf)
    erp.http.close()
    sf.http.close()
    sf_proxy.close()
    erp_proxy.close()


def run(flow_module: Any, flow: str, w: World, store: StateStore, run_id: str, **params: Any) -> RunSummary:
    ctx = FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=w.erp, storefront=w.sf,
                              params=params, log=logging.getLogger(f"test.{flow}"))
    return flow_module.run(ctx)


def soon() -> str:
    """Three hours ahead: a remote whose clock is wrong, not a year 9999."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_reasons(store: StateStore, flow: str) -> dict[str, str]:
    return {d.external_id: d.reason for d in store.list_dead_letters(flow=flow, limit=1000)}


def assert_cursor_bounded(store: StateStore, flow: str, name: str = "default") -> None:
    value = store.get_cursor(flow, name)
    assert value is not None, f"{flow}: no cursor"
    bound = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=DEFAULT_CLOCK_SKEW_SECONDS)
    assert parse_cursor(value) <= bound, f"{flow}/{name}: cursor {value} is past now + the clock skew"


def _sf(sb: Any, method: str, path: str, body: Any) -> Any:
    resp = requests.request(method, f"{sb.storefront_url}{path}", headers={"Authorization": f"Bearer {sb.token}"},
                            json=body, timeout=10)
    resp.raise_for_status()
    return resp.json()


def _paid_order(w: World) -> dict[str, Any]:
    return next(o for o in w.sf.list_orders() if o.get("financial_status") == "paid" and not o.get("cancelled_at")
                and o.get("currency") == "USD")


def _order_copy(base: dict[str, Any], oid: str, **changes: Any) -> dict[str, Any]:
    return {**base, "id": oid, "name": f"#{oid}", **changes}


def _shipped_order_with_return(w: World, store: StateStore, email: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A storefront order synced to the ERP, shipped there, with a return the shopper opened."""
    order = place_order(w.sb, [("SKU-000002", 2), ("SKU-000003", 1)], email=email)
    run(customers, "customers_sync", w, store, f"c-{email}")
    run(orders, "orders_sync", w, store, f"o-{email}")
    so = w.erp.find_sales_order(order["id"])
    assert so is not None
    w.sb.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
    ret = _sf(w.sb, "POST", f"/admin/api/orders/{order['id']}/returns",
              {"line_items": [{"sku": "SKU-000002", "quantity": 1, "reason": "too small"}]})
    return order, ret


# --------------------------------------------------------------------------- 1. timestamps


def test_records_stamped_in_the_future_are_dead_letters_and_move_no_cursor(world: World, store: StateStore) -> None:
    w = world
    # customers: a copy stamped 9999 and one 3 hours ahead; a change made afterwards is still read
    run(customers, "customers_sync", w, store, "c1")
    base = next(iter(w.sf.list_customers()))
    w.sf_proxy.inject["/admin/api/customers"] = [
        json.dumps({**base, "id": "C900001", "email": "far.future@example.com", "updated_at": FAR}),
        json.dumps({**base, "id": "C900002", "email": "soon.future@example.com", "updated_at": soon()}),
    ]
    run(customers, "customers_sync", w, store, "c2")
    reasons = open_reasons(store, "customers_sync")
    assert reasons["C900001"].startswith("timestamp_in_future:") and "9999-12-31" in reasons["C900001"]
    assert reasons["C900002"].startswith("timestamp_in_future:")
    assert_cursor_bounded(store, "customers_sync")
    assert not w.erp.find_customers(email="far.future@example.com")
    _sf(w.sb, "PUT", f"/admin/api/customers/{base['id']}", {"first_name": "Changed-After"})
    after = run(customers, "customers_sync", w, store, "c3")
    assert after.done >= 1, f"a change made after the future-stamped records was never read: {after.render()}"
    assert_cursor_bounded(store, "customers_sync")

    # orders: the same; a paid order placed afterwards reaches the ERP
    run(orders, "orders_sync", w, store, "o1")
    paid = _paid_order(w)
    w.sf_proxy.inject["/admin/api/orders"] = [
        json.dumps(_order_copy(paid, "O900001", updated_at=FAR)),
        json.dumps(_order_copy(paid, "O900002", updated_at=soon())),
    ]
    run(orders, "orders_sync", w, store, "o2")
    reasons = open_reasons(store, "orders_sync")
    assert reasons["O900001"].startswith("timestamp_in_future:")
    assert reasons["O900002"].startswith("timestamp_in_future:")
    assert w.erp.find_sales_order("O900001") is None and w.erp.find_sales_order("O900002") is None
    assert_cursor_bounded(store, "orders_sync")
    new = place_order(w.sb, [("SKU-000004", 1)], email="after.future@example.com")
    run(orders, "orders_sync", w, store, "o3")
    assert w.erp.find_sales_order(new["id"]) is not None, "an order placed after the future-stamped ones was never read"
    w.sf_proxy.inject.clear()

    # returns, store side: a real return is opened; copies stamped ahead are dead letters; a
    # return opened afterwards still reaches the ERP
    order, ret = _shipped_order_with_return(w, store, "future.returns@example.com")
    run(returns, "returns_sync", w, store, "r1")
    assert w.erp.find_return(ret["id"]) is not None
    real = w.sf.get_return(ret["id"])
    w.sf_proxy.inject["/admin/api/returns"] = [
        json.dumps({**real, "id": "R900001", "status": "requested", "erp_reference": None, "updated_at": FAR}),
        json.dumps({**real, "id": "R900002", "status": "requested", "erp_reference": None, "updated_at": soon()}),
    ]
    run(returns, "returns_sync", w, store, "r2")
    reasons = open_reasons(store, "returns_sync")
    assert reasons["R900001"].startswith("timestamp_in_future:")
    assert reasons["R900002"].startswith("timestamp_in_future:")
    assert_cursor_bounded(store, "returns_sync", "store")
    later = _sf(w.sb, "POST", f"/admin/api/orders/{order['id']}/returns",
                {"line_items": [{"sku": "SKU-000003", "quantity": 1, "reason": "broken"}]})
    run(returns, "returns_sync", w, store, "r3")
    assert w.erp.find_return(later["id"]) is not None, "a return opened after the future-stamped ones was never read"


# --------------------------------------------------------------------------- 3. deep and huge


def _hostile(base: dict[str, Any], key: str, prefix: str, field: str) -> dict[str, str]:
    """Three raw texts (id -> JSON): ~900 and ~1,000 levels deep in ``field``, and a 10 MB ``field``."""
    plain = {k: v for k, v in base.items() if k != field}
    ids = [f"{prefix}900{n}" for n in (1, 2, 3)]
    head = json.dumps(plain)[:-1]
    return {
        ids[0]: head.replace(json.dumps(base[key]), json.dumps(ids[0]), 1) + f', "{field}": {nested(900)}}}',
        ids[1]: head.replace(json.dumps(base[key]), json.dumps(ids[1]), 1) + f', "{field}": {nested(1000)}}}',
        ids[2]: json.dumps({**plain, key: ids[2], field: TEN_MB}),
    }


def _check_bounded(store: StateStore, flow: str, ids: list[str]) -> None:
    dead = {d.external_id: d for d in store.list_dead_letters(flow=flow, limit=1000)}
    for i, rid in enumerate(ids):
        assert rid in dead, f"{flow}: {rid} is not a dead letter ({sorted(dead)[:10]})"
        d = dead[rid]
        want = "record_too_large:" if i == 2 else "record_too_deep:"
        assert d.reason.startswith(want), f"{flow}: {rid}: {d.reason[:200]}"
        assert len(d.reason) <= DEFAULT_MAX_REASON_CHARS
        kept = json.dumps(d.payload)
        assert len(kept) < 10_000, f"{flow}: {rid}: the dead letter keeps {len(kept):,} characters"
        assert "excerpt" in d.payload


def test_deep_and_huge_records_are_dead_letters_with_an_excerpt_and_the_run_goes_on(
    world: World, store: StateStore
) -> None:
    w = world
    # customers
    base = next(iter(w.sf.list_customers()))
    bad = _hostile(base, "id", "C", "note")
    w.sf_proxy.inject["/admin/api/customers"] = list(bad.values())
    first = run(customers, "customers_sync", w, store, "c1")
    assert first.done > 0 and first.failed == 0
    _check_bounded(store, "customers_sync", list(bad))
    assert run(customers, "customers_sync", w, store, "c2").failed == 0  # and again on retry

    # shipments: an order shipped in the ERP, and three broken copies of its shipment
    order, _ = _shipped_order_with_return(w, store, "deep.records@example.com")
    shipment = next(s for s in w.erp.list_shipments() if s.get("external_ref") == order["id"]
                    or s.get("order_ref") == order["id"] or order["id"] in json.dumps(s))
    sid_key = "shipment_no" if "shipment_no" in shipment else "id"
    bad = _hostile(shipment, sid_key, "SHP-", "notes")
    w.erp_proxy.inject["/api/shipments"] = list(bad.values())
    first = run(shipments, "shipments_sync", w, store, "s1")
    assert first.failed == 0 and first.done >= 1, first.render()
    _check_bounded(store, "shipments_sync", list(bad))
    assert run(shipments, "shipments_sync", w, store, "s2").failed == 0

    # returns (store side): the shopper's real return opens an RMA, three broken copies do not
    real = w.sf.list_returns()
    real = next(iter(real))
    bad = _hostile(real, "id", "R", "note")
    w.sf_proxy.inject["/admin/api/returns"] = list(bad.values())
    first = run(returns, "returns_sync", w, store, "r1")
    assert first.failed == 0 and first.done >= 1, first.render()
    _check_bounded(store, "returns_sync", list(bad))
    assert run(returns, "returns_sync", w, store, "r2").failed == 0

    # catalog: three broken copies of an ERP item beside the real catalog
    item = next(iter(w.erp.list_items()))
    bad = _hostile({**item, "variant_of": None}, "item_code", "ITEM-", "description")
    w.erp_proxy.inject["/api/items"] = list(bad.values())
    first = run(catalog, "catalog_sync", w, store, "k1")
    assert first.failed == 0 and first.done >= 1, first.render()
    _check_bounded(store, "catalog_sync", list(bad))
    assert run(catalog, "catalog_sync", w, store, "k2", full_pass=True).failed == 0


# --------------------------------------------------------------------------- 4. small batches


def test_one_negative_price_among_fourteen_is_held_and_thirteen_are_published(world: World, store: StateStore) -> None:
    w = world
    run(pricing, "pricing_sync", w, store, "p1")
    rows = [r for r in w.erp.list_prices() if r["price_list"] == "LIST" and r.get("currency") == "USD"
            and int(r.get("min_qty") or 1) == 1 and not r.get("customer_group") and not r.get("customer_no")]
    in_store = {v["sku"] for p in w.sf.list_products() for v in p["variants"]}
    rows = sorted((r for r in rows if f"SKU-{r['item_code'][5:]}" in in_store), key=lambda r: r["item_code"])[:14]
    assert len(rows) == 14
    changed = [{**r, "price": str((Decimal(r["price"]) * Decimal("1.02")).quantize(Decimal("0.01")))} for r in rows]
    changed[6]["price"] = "-5.00"
    w.sb.admin("erp", "POST", "prices", {"set": changed})
    summary = run(pricing, "pricing_sync", w, store, "p2")  # one bad row of 14 (7 %) must not stop the run
    prices = {v["sku"]: v["price"] for p in w.sf.list_products() for v in p["variants"]}
    sku = {r["item_code"]: f"SKU-{r['item_code'][5:]}" for r in rows}
    published = [c for i, c in enumerate(changed) if i != 6 and Decimal(prices[sku[c["item_code"]]]) == Decimal(c["price"])]
    assert len(published) == 13, f"published {len(published)} of 13: {summary.render()}"
    assert Decimal(prices[sku[changed[6]["item_code"]]]) > 0, "the negative price reached the store"
    reasons = " ".join(d.reason for d in store.list_dead_letters(flow="pricing_sync", limit=100))
    assert "-5" in reasons, reasons


# --------------------------------------------------------------------------- 5. absurd money


def test_absurd_money_is_a_dead_letter_in_orders_and_catalog(world: World, store: StateStore) -> None:
    w = world
    run(orders, "orders_sync", w, store, "o1")
    paid = _paid_order(w)
    line = {**paid["line_items"][0], "quantity": 1, "price": "1e309", "total_discount": "0.00", "tax_lines": []}
    huge = _order_copy(paid, "O900011", line_items=[line], tax_lines=[], discount_codes=[], total_price="1e309",
                       shipping_lines=[{"code": "FREE", "title": "Free shipping", "price": "0.00"}],
                       transactions=[{**paid["transactions"][0], "amount": "1e309"}])
    w.sf_proxy.inject["/admin/api/orders"] = [json.dumps(huge)]
    run(orders, "orders_sync", w, store, "o2")
    assert w.erp.find_sales_order("O900011") is None, "an order priced 1e309 became an ERP sales order"
    assert open_reasons(store, "orders_sync")["O900011"].startswith("absurd_amount:")

    # catalog: list prices get pricing_sync's checks (new products: no xref yet)
    bad = {"ITEM-000031": "NaN", "ITEM-000032": "Infinity", "ITEM-000033": "1e309", "ITEM-000034": "-1.00"}
    for code, price in bad.items():
        w.sb.admin("erp", "POST", "items", {"item_code": code, "list_price": price})
    summary = run(catalog, "catalog_sync", w, store, "k1")
    reasons = open_reasons(store, "catalog_sync")
    for code, price in bad.items():
        assert code in reasons, f"list price {price} of {code} was synced: {summary.render()}"
        assert reasons[code].split(":")[0] in ("bad_price", "absurd_amount"), reasons[code]
    handles = {p.get("handle") for p in w.sf.list_products()}
    assert "sku-000035" in handles  # the honest items are published


# --------------------------------------------------------------------------- 6. lookalike codes


def test_lookalike_and_invisible_codes_are_suspicious_identifiers(world: World, store: StateStore) -> None:
    w = world
    codes = {
        "ITEM-000031": "\u0421KU-000031",  # Cyrillic Es: looks like SKU-000031
        "ITEM-000032": "SKU-000032\u200b",  # zero-width space
        "ITEM-000033": "SKU-00\x000033",  # NUL
        "ITEM-000034": "\u200fSKU-000034",  # right-to-left mark
    }
    for code, sku in codes.items():
        w.sb.admin("erp", "POST", "items", {"item_code": code, "sku": sku})
    w.sb.admin("erp", "POST", "items", {"item_code": "ITEM-000035", "sku": "\uff33\uff2b\uff35-000035"})  # fullwidth
    summary = run(catalog, "catalog_sync", w, store, "k1")
    reasons = open_reasons(store, "catalog_sync")
    for code in codes:
        assert reasons.get(code, "").startswith("suspicious_identifier:"), f"{code}: {reasons.get(code)} {summary.render()}"
    skus = {v["sku"] for p in w.sf.list_products() for v in p["variants"]}
    assert not set(codes.values()) & skus
    assert "SKU-000035" in skus  # NFKC: the fullwidth code is the plain one

    # orders: a line whose SKU hides a Cyrillic letter, an order id with a zero-width space
    run(orders, "orders_sync", w, store, "o1")
    paid = _paid_order(w)
    line = {**paid["line_items"][0], "sku": "SKU-0000\u04302"}  # Cyrillic a
    w.sf_proxy.inject["/admin/api/orders"] = [
        json.dumps(_order_copy(paid, "O900021", line_items=[line, *paid["line_items"][1:]])),
        json.dumps(_order_copy(paid, "O900022\u200b")),
    ]
    run(orders, "orders_sync", w, store, "o2")
    reasons = open_reasons(store, "orders_sync")
    assert reasons["O900021"].startswith("suspicious_identifier:")
    assert reasons["O900022\u200b"].startswith("suspicious_identifier:")
    assert w.erp.find_sales_order("O900021") is None
