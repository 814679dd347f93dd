"""The Shopify Admin GraphQL simulator (erpsync.sandbox.contract.shopify) against a raw HTTP client,
as a future Shopify adapter's tests will use it (no Shopify adapter exists yet): a client that
follows the rules is clean and exercises them; each enforced rule refuses a request that breaks it
with Shopify's documented shape; paging reads every order once while orders arrive; the cost bucket
throttles and refills; commit-then-timeout on inventorySetQuantities commits and drops the answer;
and ``python -m erpsync.sandbox.contract shopify`` serves the same to another process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from erpsync.sandbox.contract.shopify import DEFAULT_TOKEN, VERSION, ShopifyService
from erpsync.sandbox.data import SeedOptions
from erpsync.sandbox.server import make_server

pytestmark = pytest.mark.integration

H = {"X-Shopify-Access-Token": DEFAULT_TOKEN}
ORDERS = """query Orders($after: String, $since: String!) {
  orders(first: 7, after: $after, sortKey: UPDATED_AT, query: $since) {
    nodes { id name updatedAt totalPriceSet { shopMoney { amount currencyCode } } lineItems(first: 10) { nodes { sku quantity } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
VARIANT = """query V($q: String!) { productVariants(first: 1, query: $q) {
  nodes { id sku inventoryItem { id inventoryLevels(first: 10) {
    nodes { location { id } quantities(names: ["available", "on_hand"]) { name quantity } } } } } } }"""
SET_QTY = """mutation Set($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { reason changes { name delta quantityAfterChange } }
    userErrors { field message code }
  }
}"""


class Sim:
    def __init__(self, svc: ShopifyService, url: str) -> None:
        self.svc, self.url = svc, url
        self.endpoint = f"{url}/admin/api/{VERSION}/graphql.json"

    def gql(self, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None,
            endpoint: str | None = None, **kw: Any) -> httpx.Response:
        return httpx.post(endpoint or self.endpoint, json={"query": query, "variables": variables or {}},
                          headers=H if headers is None else headers, **kw)

    def level(self, sku: str, location: int) -> dict[str, int]:
        node = self.gql(VARIANT, {"q": f"sku:{sku}"}).json()["data"]["productVariants"]["nodes"][0]
        for lv in node["inventoryItem"]["inventoryLevels"]["nodes"]:
            if lv["location"]["id"] == f"gid://shopify/Location/{location}":
                return {q["name"]: q["quantity"] for q in lv["quantities"]}
        raise AssertionError(f"{sku} has no level at location {location}")


@pytest.fixture
def simulator() -> Iterator[Callable[..., Sim]]:
    servers = []

    def start(**kw: Any) -> Sim:
        svc = ShopifyService(SeedOptions(seed=3, skus=12, locations=2, orders=40), **kw)
        server = make_server(svc, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return Sim(svc, f"http://127.0.0.1:{server.server_address[1]}")

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _read_orders(sim: Sim, since: str, between: Callable[[], None] = lambda: None) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        body = sim.gql(ORDERS, {"after": after, "since": f"updated_at:>={since}"}).json()
        assert "errors" not in body, body
        page = body["data"]["orders"]
        ids += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids
        after = page["pageInfo"]["endCursor"]
        between()


def test_a_client_that_follows_the_rules_is_clean(simulator: Callable[..., Sim]) -> None:
    sim = simulator()
    ids = _read_orders(sim, "2026-01-01T00:00:11Z")
    assert len(ids) == 30 and len(set(ids)) == 30  # orders 11..40 of 40, one a second from the epoch
    variant = sim.gql(VARIANT, {"q": "sku:SKU-00004"}).json()["data"]["productVariants"]["nodes"][0]
    item = variant["inventoryItem"]["id"]
    before = sim.level("SKU-00004", 1)
    locations = sim.gql("{ locations(first: 10) { nodes { id name isActive } } }").json()["data"]["locations"]["nodes"]
    assert [loc["id"] for loc in locations] == ["gid://shopify/Location/1", "gid://shopify/Location/2"]
    answer = sim.gql(SET_QTY, {"input": {"name": "available", "reason": "correction", "quantities": [
        {"inventoryItemId": item, "locationId": "gid://shopify/Location/1", "quantity": before["available"] + 5,
         "compareQuantity": before["available"]}]}}).json()
    payload = answer["data"]["inventorySetQuantities"]
    assert payload["userErrors"] == [] and payload["inventoryAdjustmentGroup"]["changes"] == [
        {"name": "available", "delta": 5, "quantityAfterChange": before["available"] + 5}]
    assert sim.level("SKU-00004", 1) == {"available": before["available"] + 5, "on_hand": before["on_hand"] + 5}
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 10 and cost["throttleStatus"]["maximumAvailable"] == 2000
    sim.svc.recorder.assert_clean(exercised=[
        "shopify.auth.access_token", "shopify.api.version", "shopify.http.json_body", "shopify.graphql.parse",
        "shopify.connection.first_or_last", "shopify.connection.max_page_size", "shopify.input.max_array_size",
        "shopify.cost.max_single_query", "shopify.inventory.set_quantities_input", "shopify.cost.bucket"])


def _set(quantities: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"input": {"name": "available", "reason": "correction", "quantities": quantities, **extra}}


ITEM = {"inventoryItemId": "gid://shopify/InventoryItem/1", "locationId": "gid://shopify/Location/1",
        "quantity": 3, "compareQuantity": None}

#: per enforced rule: the request that breaks it, and what Shopify answers
REFUSALS: list[tuple[str, dict[str, Any], int, Callable[[Any], bool]]] = [
    ("shopify.auth.access_token", {"headers": {}}, 401,
     lambda b: b == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
    ("shopify.auth.access_token", {"headers": {"X-Shopify-Access-Token": "shpat_forged"}}, 401,
     lambda b: b["errors"].startswith("[API] Invalid API key")),
    ("shopify.http.json_body", {"raw": ("text/plain", b"{ shop { name } }")}, 400, lambda b: "errors" in b),
    ("shopify.graphql.parse", {"query": "{ orders(first: 1) { nodes { id }"}, 200,
     lambda b: b["errors"][0]["locations"] == [{"line": 1, "column": 34}] and "data" not in b),
    ("shopify.connection.first_or_last", {"query": "{ orders { nodes { id } } }"}, 200,
     lambda b: "neither first nor last" in b["errors"][0]["message"]),
    ("shopify.connection.max_page_size", {"query": "{ orders(first: 251) { nodes { id } } }"}, 200,
     lambda b: "more than 250" in b["errors"][0]["message"]),
    ("shopify.connection.max_page_size", {"query": "{ orders(first: 2) { nodes { lineItems(last: 300) { nodes { sku } } } } }"},
     200, lambda b: "orders.nodes.lineItems(last: 300)" in b["errors"][0]["message"]),
    ("shopify.input.max_array_size", {"query": SET_QTY, "variables": _set([ITEM] * 251)}, 200,
     lambda b: b["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"),
    ("shopify.cost.max_single_query",
     {"query": "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { sku } } } } }"}, 200,
     lambda b: b["errors"][0]["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": 2 + 250 * 253, "maxCost": 1000}),
    ("shopify.inventory.set_quantities_input",
     {"query": SET_QTY, "variables": _set([ITEM], reason="because")}, 200,
     lambda b: [e["code"] for e in b["data"]["inventorySetQuantities"]["userErrors"]] == ["INVALID_REASON"]),
    ("shopify.inventory.set_quantities_input",
     {"query": SET_QTY, "variables": _set([{k: v for k, v in ITEM.items() if k != "compareQuantity"}])}, 200,
     lambda b: b["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "COMPARE_QUANTITY_REQUIRED"),
    ("shopify.inventory.set_quantities_input",
     {"query": SET_QTY, "variables": {"input": {**_set([ITEM])["input"], "name": "committed"}}}, 200,
     lambda b: b["data"]["inventorySetQuantities"]["userErrors"][0]["field"] == ["input", "name"]),
]


@pytest.mark.parametrize("rule, request_, status, shape", REFUSALS,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSALS)])
def test_each_enforced_rule_refuses_in_shopifys_shape(simulator: Callable[..., Sim], rule: str,
                                                      request_: dict[str, Any], status: int,
                                                      shape: Callable[[Any], bool]) -> None:
    sim = simulator()
    if "raw" in request_:
        ctype, raw = request_["raw"]
        r = httpx.post(sim.endpoint, content=raw, headers={**H, "Content-Type": ctype})
    else:
        r = sim.gql(request_.get("query", "{ shop { name } }"), request_.get("variables"),
                    headers=request_.get("headers"))
    assert r.status_code == status, r.text
    assert shape(r.json()), r.json()
    broken = {v.rule.id for v in sim.svc.recorder.violations()}
    assert rule in broken, broken
    assert sim.svc.stats_body()["writes_committed"] == 0  # a refused request changes nothing


def test_every_enforced_rule_has_a_refusal_test() -> None:
    svc = ShopifyService(SeedOptions(skus=1, locations=1, orders=0))
    enforced = {r.id for r in svc.book if r.refuse is not None}
    assert enforced == {r[0] for r in REFUSALS} | {"shopify.cost.bucket"}  # the bucket: its own test below


def test_an_unpinned_version_is_served_but_recorded(simulator: Callable[..., Sim]) -> None:
    sim = simulator()
    r = sim.gql("{ locations(first: 1) { nodes { id } } }", endpoint=f"{sim.url}/admin/api/2024-01/graphql.json")
    assert r.status_code == 200 and r.json()["data"]["locations"]["nodes"]
    assert [v.rule.id for v in sim.svc.recorder.violations()] == ["shopify.api.version"]


def test_unknown_fields_are_graphql_errors_not_guesses(simulator: Callable[..., Sim]) -> None:
    sim = simulator()
    body = sim.gql("{ orders(first: 1) { nodes { id fulfillmentStatusX } } }").json()
    assert body["errors"][0]["extensions"]["code"] == "undefinedField"
    assert body["errors"][0]["message"] == "Field 'fulfillmentStatusX' doesn't exist on type 'Order'"


def test_paging_reads_every_order_once_while_orders_arrive(simulator: Callable[..., Sim]) -> None:
    sim = simulator()

    def arrive() -> None:
        assert httpx.post(f"{sim.url}/_admin/shopify/orders", json={"count": 2}).status_code == 200

    ids = _read_orders(sim, "2026-01-01T00:00:01Z", between=arrive)
    assert len(ids) == len(set(ids))
    assert len(ids) == len(sim.svc.orders) > 40  # the 40 seeded and every one that arrived mid-read
    sim.svc.recorder.assert_clean(exercised=["shopify.connection.first_or_last"])


def test_cost_bucket_throttles_then_refills(simulator: Callable[..., Sim]) -> None:
    sim = simulator(bucket_size=100, restore_rate=20)
    query = "{ orders(first: 40) { nodes { id } } }"  # requests 42 points
    answers = [sim.gql(query).json() for _ in range(4)]
    throttled = [a for a in answers if "errors" in a]
    assert throttled, answers
    t = throttled[0]
    assert t["errors"][0]["message"] == "Throttled" and t["errors"][0]["extensions"]["code"] == "THROTTLED"
    status = t["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 100 and status["restoreRate"] == 20 and status["currentlyAvailable"] < 42
    assert t["extensions"]["cost"] == {**t["extensions"]["cost"], "requestedQueryCost": 42, "actualQueryCost": None}
    assert "shopify.cost.bucket" in {v.rule.id for v in sim.svc.recorder.violations()}
    time.sleep((42 - status["currentlyAvailable"]) / 20 + 0.2)  # the bucket restores 20 points a second
    again = sim.gql(query).json()
    assert "errors" not in again and again["extensions"]["cost"]["actualQueryCost"] == 42


def test_actual_cost_is_refunded_when_a_page_is_short(simulator: Callable[..., Sim]) -> None:
    sim = simulator()
    body = sim.gql('{ orders(first: 100, query: "updated_at:>=2026-01-01T00:00:31Z") { nodes { id } } }').json()
    assert len(body["data"]["orders"]["nodes"]) == 10
    assert (body["extensions"]["cost"]["requestedQueryCost"], body["extensions"]["cost"]["actualQueryCost"]) == (102, 12)


def test_commit_then_timeout_commits_the_set_and_drops_the_answer(simulator: Callable[..., Sim]) -> None:
    sim = simulator()
    before = sim.level("SKU-00002", 2)
    faults = httpx.post(f"{sim.url}/_admin/faults", json={"commit_then_timeout": {"rate": 1, "hold_seconds": 0.2},
                                                          "max_faults": 1})
    assert faults.status_code == 200
    write = _set([{"inventoryItemId": "gid://shopify/InventoryItem/2", "locationId": "gid://shopify/Location/2",
                   "quantity": before["available"] + 9, "compareQuantity": before["available"]}])
    with pytest.raises(httpx.RemoteProtocolError):
        sim.gql(SET_QTY, write, timeout=5)
    assert sim.level("SKU-00002", 2)["available"] == before["available"] + 9  # committed
    stats = httpx.get(f"{sim.url}/_admin/stats").json()
    assert stats["writes_committed"] == 1 and stats["faults_injected"]["commit_then_timeout"] == 1
    # a blind resend is stopped by the compare-and-set the rules make the client send
    resent = sim.gql(SET_QTY, write).json()["data"]["inventorySetQuantities"]
    assert [e["code"] for e in resent["userErrors"]] == ["COMPARE_QUANTITY_STALE"]
    assert sim.level("SKU-00002", 2)["available"] == before["available"] + 9


def test_an_idempotency_key_header_does_not_make_a_resend_safe(simulator: Callable[..., Sim]) -> None:
    """2025-10 has no Idempotency-Key header: a resent mutation runs again (the sandbox's own
    replay must not leak into the dialect and give an adapter a safety Shopify does not give)."""
    sim = simulator()
    write = _set([{"inventoryItemId": "gid://shopify/InventoryItem/5", "locationId": "gid://shopify/Location/1",
                   "quantity": 11}], ignoreCompareQuantity=True)
    for _ in range(2):
        body = sim.gql(SET_QTY, write, headers={**H, "Idempotency-Key": "k-1"}).json()
        assert body["data"]["inventorySetQuantities"]["userErrors"] == []
    stats = sim.svc.stats_body()
    assert (stats["writes_committed"], stats["idempotent_replays"]) == (2, 0)


FULFILLMENT_ORDERS = """query FO($q: String!) { orders(first: 1, query: $q) { nodes { id updatedAt displayFulfillmentStatus
  fulfillments { id status trackingInfo { company number url } }
  fulfillmentOrders(first: 5) { nodes { id status lineItems(first: 50) { nodes { id sku totalQuantity remainingQuantity } } } } } } }"""
FULFIL = """mutation F($f: FulfillmentInput!) { fulfillmentCreate(fulfillment: $f) {
  fulfillment { id status trackingInfo { company number url } } userErrors { field message } } }"""


def test_fulfillment_create_partial_then_rest_and_a_lost_answer_found_again(simulator: Callable[..., Sim]) -> None:
    sim = simulator()
    name = next(o["name"] for o in sim.svc.orders.values() if sum(ln["quantity"] for ln in o["lines"]) >= 2)
    order = sim.gql(FULFILLMENT_ORDERS, {"q": f"name:{name}"}).json()["data"]["orders"]["nodes"][0]
    assert order["displayFulfillmentStatus"] == "UNFULFILLED" and order["fulfillments"] == []
    fo = order["fulfillmentOrders"]["nodes"][0]
    first_line = fo["lineItems"]["nodes"][0]
    over = sim.gql(FULFIL, {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"],
        "fulfillmentOrderLineItems": [{"id": first_line["id"], "quantity": first_line["totalQuantity"] + 1}]}]}}).json()
    assert over["data"]["fulfillmentCreate"]["fulfillment"] is None
    assert "remain to fulfil" in over["data"]["fulfillmentCreate"]["userErrors"][0]["message"]
    part = sim.gql(FULFIL, {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"],
        "fulfillmentOrderLineItems": [{"id": first_line["id"], "quantity": 1}]}],
        "trackingInfo": {"company": "UPS", "number": "1Z1", "url": "https://ups.example/1Z1"}}}).json()
    assert part["data"]["fulfillmentCreate"]["userErrors"] == []
    assert part["data"]["fulfillmentCreate"]["fulfillment"]["trackingInfo"] == [
        {"company": "UPS", "number": "1Z1", "url": "https://ups.example/1Z1"}]
    after = sim.gql(FULFILLMENT_ORDERS, {"q": f"name:{name}"}).json()["data"]["orders"]["nodes"][0]
    assert after["updatedAt"] > order["updatedAt"]  # the next updated_at window sees the change
    assert after["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    # the rest, with the answer lost: committed, and found again on the order, not written twice
    httpx.post(f"{sim.url}/_admin/faults", json={"commit_then_timeout": {"rate": 1, "hold_seconds": 0.2},
                                                 "max_faults": 1})
    rest = {"f": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo["id"]}],
                  "trackingInfo": {"company": "UPS", "number": "1Z2"}}}
    with pytest.raises(httpx.RemoteProtocolError):
        sim.gql(FULFIL, rest, timeout=5)
    final = sim.gql(FULFILLMENT_ORDERS, {"q": f"name:{name}"}).json()["data"]["orders"]["nodes"][0]
    assert final["displayFulfillmentStatus"] == "FULFILLED"
    assert [f["trackingInfo"][0]["number"] for f in final["fulfillments"]] == ["1Z1", "1Z2"]
    assert final["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    again = sim.gql(FULFIL, rest).json()["data"]["fulfillmentCreate"]
    assert again["fulfillment"] is None and again["userErrors"][0]["message"] == "Fulfillment order is already closed."
    sim.svc.recorder.assert_clean(exercised=["shopify.connection.first_or_last", "shopify.input.max_array_size"])


def test_the_entry_point_serves_the_contract_to_another_process() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "erpsync.sandbox.contract", "shopify", "--port", "0",
                             "--skus", "5", "--orders", "3"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://" in line, line
        url = line.split("listening on ")[1].strip()
        r = httpx.post(f"{url}/admin/api/{VERSION}/graphql.json", json={"query": "{ orders { nodes { id } } }"},
                       headers=H)
        assert "errors" in r.json()
        contract = httpx.get(f"{url}/_admin/contract").json()
        assert [v["rule"] for v in contract["violations"]] == ["shopify.connection.first_or_last"]
        assert all(rule["cite"].startswith("https://shopify.dev/") for rule in contract["rules"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_simulator_page_lists_every_rule_with_its_cite() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "connectors" / "shopify-simulator.md").read_text()
    svc = ShopifyService(SeedOptions(skus=1, locations=1, orders=0))
    for rule in svc.book:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{rule.id}` |")), None)
        assert row is not None, f"{rule.id} is missing from docs/connectors/shopify-simulator.md"
        assert f"]({rule.cite})" in row, f"{rule.id}: the page does not cite {rule.cite}"
        assert ("enforced" if rule.refuse else "recorded") in row
