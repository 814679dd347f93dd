"""A Shopify Admin GraphQL API simulator (API version 2025-10), built on the contract toolkit.

Enough of the dialect to test a Shopify adapter's flows: ``POST /admin/api/2025-10/graphql.json``
with ``X-Shopify-Access-Token``; queries ``orders`` (cursor paging, ``query: "updated_at:>=..."``,
``sortKey: UPDATED_AT``), ``productVariants`` and ``products`` (``query: "sku:..."``), ``locations``,
``inventoryItem`` with its ``inventoryLevels``; the mutation ``inventorySetQuantities`` (its 2025-10
input: ``name``, ``reason``, ``quantities[{inventoryItemId, locationId, quantity, compareQuantity}]``,
``ignoreCompareQuantity``; answered with ``userErrors``) and ``fulfillmentCreate`` (fulfillment orders'
line items, tracking). Every rule below cites shopify.dev.

What it is not: the real schema. Fields it does not model answer GraphQL's ``undefinedField`` error;
fragments and variables' types are not checked; the query cost is Shopify's documented default
formula, not the per-field costs of the live schema. 2026-04 changed ``inventorySetQuantities``
(``changeFromQuantity``, a required ``@idempotent`` key): not simulated here.
"""

from __future__ import annotations

import random
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from erpsync.sandbox.contract import graphql as gql
from erpsync.sandbox.contract.dialect import (
    Answer,
    Bucket,
    DialectRequest,
    DialectService,
    StaticToken,
    graphql_connection,
    graphql_error,
    limit,
)
from erpsync.sandbox.contract.rules import Exchange, Rule, RuleBook
from erpsync.sandbox.data import SeedOptions
from erpsync.sandbox.faults import Decision
from erpsync.sandbox.server import Request

VERSION = "2025-10"
DOCS = "https://shopify.dev/docs/api"
REF = f"{DOCS}/admin-graphql/{VERSION}"
CITE_AUTH = f"{DOCS}/admin-graphql#authentication"
CITE_CODES = f"{DOCS}/usage/response-codes"
CITE_VERSIONS = f"{DOCS}/usage/versioning"
CITE_PAGING = f"{DOCS}/usage/pagination-graphql"
CITE_LIMITS = f"{DOCS}/usage/limits"
CITE_COST = "https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits"
CITE_SET_QTY = f"{REF}/mutations/inventorySetQuantities"
CITE_SET_QTY_INPUT = f"{REF}/input-objects/InventorySetQuantitiesInput"
CITE_SET_QTY_CODES = f"{REF}/enums/InventorySetQuantitiesUserErrorCode"
CITE_REASONS = "https://shopify.dev/docs/apps/build/orders-fulfillment/inventory-management-apps/manage-quantities-states"

DEFAULT_TOKEN = "shpat_sandbox"
MAX_PAGE = 250  # pagination-graphql: "You can retrieve up to a maximum of 250 resources."
MAX_INPUT_ARRAY = 250  # limits: "Input arguments that accept an array have a maximum size of 250"
MAX_QUERY_COST = 1000  # rate-limits: a single query may cost at most 1,000 points
#: reasons InventorySetQuantitiesInput.reason accepts ("one of the possible reasons": the reasons
#: table of CITE_REASONS; the list was written from that table, not fetched by the simulator)
REASONS = {"correction", "cycle_count_available", "damaged", "movement_created", "movement_updated",
           "movement_received", "movement_canceled", "other", "promotion", "quality_control", "received",
           "reservation_created", "reservation_deleted", "reservation_updated", "restock", "safety_stock",
           "shrinkage"}
GRAPHQL_PATH = re.compile(r"^/admin/api/(?P<version>[^/]+)/graphql\.json$")


# ------------------------------------------------------------------------------- error shapes
def _errors(*errors: dict[str, Any]) -> Answer:
    """GraphQL errors: HTTP 200 with a top-level ``errors`` array (response-codes page: GraphQL
    answers 200 where REST would answer 4xx)."""
    return 200, {"errors": list(errors)}


def _user_errors(mutation: str, errors: list[dict[str, Any]]) -> Answer:
    """A mutation's own validation: ``data.<mutation>.userErrors[{field, message, code}]``, HTTP 200."""
    return 200, {"data": {mutation: {"inventoryAdjustmentGroup": None, "userErrors": errors}}}


def _op(exchange: Exchange) -> gql.Operation | None:
    op = exchange.meta.get("operation")
    return op if isinstance(op, gql.Operation) else None


def _variables(exchange: Exchange) -> dict[str, Any]:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    v = body.get("variables")
    return v if isinstance(v, dict) else {}


def _is_graphql(exchange: Exchange) -> bool:
    return exchange.method == "POST" and bool(GRAPHQL_PATH.match(exchange.path))


def _has_op(exchange: Exchange) -> bool:
    return _is_graphql(exchange) and _op(exchange) is not None


def _connections(fields: list[gql.Field], path: list[str]) -> list[tuple[gql.Field, list[str]]]:
    """Every connection field selected (one that selects edges or nodes), with its path."""
    out = []
    for f in fields:
        p = [*path, f.key]
        if any(s.name in ("edges", "nodes") for s in f.selections):
            out.append((f, p))
        out.extend(_connections(f.selections, p))
    return out


def _set_qty_input(exchange: Exchange) -> dict[str, Any] | None:
    op = _op(exchange)
    if op is None or op.kind != "mutation":
        return None
    for f in op.selections:
        if f.name == "inventorySetQuantities":
            value = f.arguments(_variables(exchange)).get("input")
            return value if isinstance(value, dict) else {}
    return None


# ------------------------------------------------------------------------------------- rules
def _check_json_body(exchange: Exchange) -> str | None:
    if not (exchange.header("content-type") or "").startswith("application/json"):
        return f"Content-Type is {exchange.header('content-type')!r}, not application/json"
    body = exchange.body
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return "the body is not a JSON object with a string 'query'"
    return None


def _check_parse(exchange: Exchange) -> str | None:
    err = exchange.meta.get("parse_error")
    return f"{err} (line {err.line}, column {err.column})" if isinstance(err, gql.GraphQLSyntaxError) else None


def _refuse_parse(exchange: Exchange, detail: str) -> Answer:
    err = exchange.meta.get("parse_error")
    if isinstance(err, gql.GraphQLSyntaxError):
        return _errors(graphql_error(str(err), line=err.line, column=err.column))
    return _errors(graphql_error(detail))


def _check_first_or_last(exchange: Exchange) -> str | None:
    op = _op(exchange)
    assert op is not None
    for f, path in _connections(op.selections, []):
        args = f.arguments(_variables(exchange))
        if args.get("first") is None and args.get("last") is None:
            return f"{'.'.join(path)} has neither first nor last"
    return None


def _check_page_size(exchange: Exchange) -> str | None:
    op = _op(exchange)
    assert op is not None
    for f, path in _connections(op.selections, []):
        args = f.arguments(_variables(exchange))
        for name in ("first", "last"):
            n = args.get(name)
            if isinstance(n, int) and not 0 <= n <= MAX_PAGE:
                return f"{'.'.join(path)}({name}: {n}) asks for more than {MAX_PAGE}"
    return None


def _connection_refusal(exchange: Exchange, detail: str) -> Answer:
    return _errors(graphql_error(detail, code="argumentOutOfRange" if "more than" in detail else "missingRequiredArguments"))


def _requested(exchange: Exchange) -> int:
    op = _op(exchange)
    if op is None:
        return 0
    if "cost" not in exchange.meta:
        exchange.meta["cost"] = gql.requested_cost(op.selections, _variables(exchange), mutation=op.kind == "mutation")
    return int(exchange.meta["cost"])


def _check_max_cost(exchange: Exchange) -> str | None:
    cost = _requested(exchange)
    return f"the query costs {cost} points, over {MAX_QUERY_COST}" if cost > MAX_QUERY_COST else None


def _refuse_max_cost(exchange: Exchange, detail: str) -> Answer:
    cost = _requested(exchange)
    return _errors(graphql_error(
        f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).",
        code="MAX_COST_EXCEEDED", cost=cost, maxCost=MAX_QUERY_COST))


def _check_array_size(exchange: Exchange) -> str | None:
    def walk(value: Any, path: str) -> str | None:
        if isinstance(value, list):
            if len(value) > MAX_INPUT_ARRAY:
                return f"{path} has {len(value)} items, over {MAX_INPUT_ARRAY}"
            return next((w for i, v in enumerate(value) if (w := walk(v, f"{path}[{i}]"))), None)
        if isinstance(value, dict):
            return next((w for k, v in value.items() if (w := walk(v, f"{path}.{k}" if path else k))), None)
        return None
    op = _op(exchange)
    assert op is not None
    variables = _variables(exchange)
    return walk(variables, "variables") or next(
        (w for f in op.selections if (w := walk(f.arguments(variables), f.key))), None)


def _check_set_qty(exchange: Exchange) -> str | None:
    errors = _set_qty_errors(_set_qty_input(exchange) or {})
    return "; ".join(f"{e['code']}: {e['message']}" for e in errors) or None


def _set_qty_errors(value: dict[str, Any]) -> list[dict[str, Any]]:
    """The input checks the 2025-10 page and its error codes document (no store state needed)."""
    errors: list[dict[str, Any]] = []
    if value.get("name") not in ("available", "on_hand"):
        errors.append({"field": ["input", "name"], "code": "INVALID_NAME",
                       "message": "The quantity name must be either 'available' or 'on_hand'."})
    if value.get("reason") not in REASONS:
        errors.append({"field": ["input", "reason"], "code": "INVALID_REASON",
                       "message": "The specified reason is invalid."})
    quantities = value.get("quantities")
    if not isinstance(quantities, list) or not quantities:
        errors.append({"field": ["input", "quantities"], "code": "INVALID_INVENTORY_ITEM",
                       "message": "quantities must list at least one {inventoryItemId, locationId, quantity}"})
        return errors
    seen: set[tuple[Any, Any]] = set()
    for i, q in enumerate(quantities):
        q = q if isinstance(q, dict) else {}
        pair = (q.get("inventoryItemId"), q.get("locationId"))
        if pair in seen:
            errors.append({"field": ["input", "quantities", str(i)], "code": "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
                           "message": "The combination of inventoryItemId and locationId must be unique."})
        seen.add(pair)
        qty = q.get("quantity")
        if not isinstance(qty, int) or isinstance(qty, bool):
            errors.append({"field": ["input", "quantities", str(i), "quantity"], "code": "INVALID_QUANTITY_NEGATIVE",
                           "message": f"quantity must be an Int, got {qty!r}"})
        elif qty < 0 and value.get("name") == "on_hand":
            errors.append({"field": ["input", "quantities", str(i), "quantity"], "code": "INVALID_QUANTITY_NEGATIVE",
                           "message": "The quantity can't be negative."})
        elif qty > 1_000_000_000:
            errors.append({"field": ["input", "quantities", str(i), "quantity"], "code": "INVALID_QUANTITY_TOO_HIGH",
                           "message": "The total quantity can't be higher than 1,000,000,000."})
        if "compareQuantity" not in q and not value.get("ignoreCompareQuantity"):
            errors.append({"field": ["input", "quantities", str(i), "compareQuantity"], "code": "COMPARE_QUANTITY_REQUIRED",
                           "message": "The compareQuantity argument must be given to each quantity or ignored using "
                                      "ignoreCompareQuantity."})
    return errors


def _refuse_set_qty(exchange: Exchange, detail: str) -> Answer:
    return _user_errors("inventorySetQuantities", _set_qty_errors(_set_qty_input(exchange) or {}))


def _throttled(exchange: Exchange, detail: str, bucket: Bucket) -> Answer:
    return 200, {"errors": [graphql_error("Throttled", code="THROTTLED",
                                          documentation="https://shopify.dev/api/usage/rate-limits")],
                 "extensions": {"cost": {"requestedQueryCost": _requested(exchange), "actualQueryCost": None,
                                         "throttleStatus": _throttle_status(bucket)}}}


def _throttle_status(bucket: Bucket) -> dict[str, float]:
    return {"maximumAvailable": bucket.capacity, "currentlyAvailable": round(max(0.0, bucket.available()), 1),
            "restoreRate": bucket.restore_rate}


def rule_book(token: StaticToken, bucket: Bucket) -> tuple[RuleBook, Any]:
    """The 2025-10 rules, in the order Shopify applies them to a request, and the cost limit."""
    cost_limit = limit(
        bucket, id="shopify.cost.bucket", cite=CITE_COST,
        says="Calls are limited by calculated query cost with a leaky bucket: a query whose requested cost exceeds "
             "the points currently available is answered Throttled (extensions.cost.throttleStatus), and the "
             "bucket restores at the plan's rate (Standard: 100 points/second).",
        cost=_requested, applies=_has_op, refuse=lambda e, d: _throttled(e, d, bucket))
    rules = [
        token.rule(id="shopify.auth.access_token", cite=CITE_AUTH, applies=_is_graphql,
                   says="Every GraphQL Admin API request carries a valid access token in the X-Shopify-Access-Token "
                        "header; without one the API answers 401.",
                   refuse=lambda e, d: (401, {"errors": "[API] Invalid API key or access token (unrecognized login "
                                                        "or wrong password)"})),
        Rule("shopify.api.version", cite=CITE_VERSIONS, applies=_is_graphql,
             says=f"The request URL names the API version the client was built for (this simulator speaks {VERSION}); "
                  "a version Shopify no longer supports is served by the oldest supported one.",
             check=lambda e: None if GRAPHQL_PATH.match(e.path)["version"] == VERSION  # type: ignore[index]
             else f"the URL names version {GRAPHQL_PATH.match(e.path)['version']!r}, not {VERSION}"),  # type: ignore[index]
        Rule("shopify.http.json_body", cite=CITE_CODES, applies=_is_graphql,
             says="A GraphQL request is a POST with Content-Type application/json and a JSON body holding 'query' "
                  "(and optionally 'variables', 'operationName'); otherwise the API answers 400 Bad Request.",
             check=_check_json_body,
             refuse=lambda e, d: (400, {"errors": {"query": "Required parameter missing or invalid"}})),
        Rule("shopify.graphql.parse", cite=CITE_CODES,
             applies=lambda e: _is_graphql(e) and _check_json_body(e) is None,
             says="A document that is not valid GraphQL is answered with HTTP 200 and a top-level errors array "
                  "(message, locations), not a 4xx.",
             check=_check_parse, refuse=_refuse_parse),
        Rule("shopify.connection.first_or_last", cite=CITE_PAGING, applies=_has_op,
             says="A connection is read with a first or last argument (pages of at most 250), paging on with "
                  "after/before and pageInfo { hasNextPage endCursor }.",
             check=_check_first_or_last, refuse=_connection_refusal),
        Rule("shopify.connection.max_page_size", cite=CITE_PAGING, applies=_has_op,
             says=f"You can retrieve up to a maximum of {MAX_PAGE} resources per page (first/last <= {MAX_PAGE}).",
             check=_check_page_size, refuse=_connection_refusal),
        Rule("shopify.input.max_array_size", cite=CITE_LIMITS, applies=_has_op,
             says=f"Input arguments that accept an array have a maximum size of {MAX_INPUT_ARRAY}; a larger one is "
                  "an error.",
             check=_check_array_size,
             refuse=lambda e, d: _errors(graphql_error(f"Input array too large: {d}", code="MAX_INPUT_SIZE_EXCEEDED"))),
        Rule("shopify.cost.max_single_query", cite=CITE_COST, applies=_has_op,
             says=f"A single query may cost at most {MAX_QUERY_COST} points; a costlier one is refused "
                  "(MAX_COST_EXCEEDED) whatever the bucket holds.",
             check=_check_max_cost, refuse=_refuse_max_cost),
        Rule("shopify.inventory.set_quantities_input", cite=CITE_SET_QTY_CODES,
             applies=lambda e: _set_qty_input(e) is not None,
             says="inventorySetQuantities(input) takes name 'available' or 'on_hand', a documented reason, and "
                  "quantities[{inventoryItemId, locationId, quantity, compareQuantity}] (compareQuantity unless "
                  "ignoreCompareQuantity: true); a broken input is answered with userErrors[{field, message, code}].",
             check=_check_set_qty, refuse=_refuse_set_qty),
        cost_limit.rule,
    ]
    return RuleBook("shopify", rules), cost_limit


# ------------------------------------------------------------------------------------ the store
def _gid(kind: str, n: int) -> str:
    return f"gid://shopify/{kind}/{n}"


def _num(gid: Any) -> int | None:
    m = re.fullmatch(r"gid://shopify/\w+/(\d+)", gid) if isinstance(gid, str) else None
    return int(m.group(1)) if m else None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifyService(DialectService):
    """The Admin GraphQL API of one store; its world is seeded from ``SeedOptions`` (skus, locations,
    orders), deterministic per seed."""

    name = "shopify"
    #: 2025-10 has no Idempotency-Key header (2026-01 added an ``@idempotent`` directive instead):
    #: a resent mutation runs again, as on Shopify
    honours_idempotency_key_header = False

    def __init__(self, options: SeedOptions, *, token: str = DEFAULT_TOKEN, bucket_size: float = 2000,
                 restore_rate: float = 100) -> None:
        self.token = StaticToken("X-Shopify-Access-Token", [token])
        self.bucket = Bucket(bucket_size, restore_rate)
        book, cost_limit = rule_book(self.token, self.bucket)
        self.store_lock = threading.RLock()
        super().__init__(options, book, limits=[cost_limit], auths=[self.token])
        self.route("POST", "/admin/api/{version}/graphql.json", self._graphql)
        self.admin("POST", "/_admin/shopify/orders", self._admin_orders)

    # ------------------------------------------------------------------ world
    def reseed(self, options: SeedOptions) -> None:
        super().reseed(options)
        rng = random.Random(options.seed)
        self.clock_base = datetime(2026, 1, 1, tzinfo=UTC)
        self.locations = {i: {"__typename": "Location", "id": _gid("Location", i), "name": f"Warehouse {i}",
                              "isActive": True} for i in range(1, max(1, options.locations) + 1)}
        self.variants: dict[int, dict[str, Any]] = {}
        self.levels: dict[tuple[int, int], dict[str, int]] = {}  # (item, location) -> {available, on_hand}
        for n in range(1, options.skus + 1):
            self.variants[n] = {"sku": f"SKU-{n:05d}", "title": f"Product {n}", "price": f"{rng.randint(100, 9999) / 100:.2f}"}
            for loc in self.locations:
                qty = rng.randint(0, 50)
                self.levels[(n, loc)] = {"available": qty, "on_hand": qty}
        self.orders: dict[int, dict[str, Any]] = {}
        self._tick = 0
        for _ in range(options.orders):
            self.add_order(rng)

    def now(self) -> str:
        """Store time: strictly increasing, one second per change (repeatable, and `updated_at`
        windows are exact)."""
        self._tick += 1
        return _iso(self.clock_base + timedelta(seconds=self._tick))

    def add_order(self, rng: random.Random | None = None) -> dict[str, Any]:
        rng = rng or random.Random(len(self.orders))
        with self.store_lock:
            n = 1000 + len(self.orders) + 1
            stamp = self.now()
            lines = [{"sku": self.variants[v]["sku"], "quantity": rng.randint(1, 3), "variant": v, "fulfilled": 0}
                     for v in rng.sample(sorted(self.variants), k=min(len(self.variants), rng.randint(1, 3)))]
            order = {"n": n, "name": f"#{n}", "createdAt": stamp, "updatedAt": stamp, "lines": lines, "fulfillments": [],
                     "total": sum(int(round(float(self.variants[ln["variant"]]["price"]) * 100)) * ln["quantity"]
                                  for ln in lines)}
            self.orders[n] = order
            return order

    def _admin_orders(self, request: Request) -> Answer:
        body = request.body if isinstance(request.body, dict) else {}
        count = body.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= 1000:
            return 422, {"error": "invalid_count", "message": f"count must be a whole number 1..1000, got {count!r}"}
        made = [self.add_order() for _ in range(count)]
        return 200, {"created": [_gid("Order", o["n"]) for o in made]}

    # ------------------------------------------------------------------ rendering
    def _order(self, o: dict[str, Any]) -> dict[str, Any]:
        money = {"__typename": "MoneyV2", "amount": f"{o['total'] / 100:.2f}", "currencyCode": "USD"}
        lines = [{"__typename": "LineItem", "id": _gid("LineItem", o["n"] * 100 + i), "sku": ln["sku"],
                  "quantity": ln["quantity"], "variant": self._variant(ln["variant"])}
                 for i, ln in enumerate(o["lines"])]
        return {"__typename": "Order", "id": _gid("Order", o["n"]), "name": o["name"], "createdAt": o["createdAt"],
                "updatedAt": o["updatedAt"], "currencyCode": "USD",
                "totalPriceSet": {"__typename": "MoneyBag", "shopMoney": money, "presentmentMoney": money},
                "lineItems": self._nested(lines, lambda li: [li["id"]]),
                "displayFulfillmentStatus": _fulfillment_status(o),
                "fulfillments": [{"__typename": "Fulfillment", **f} for f in o["fulfillments"]],
                "fulfillmentOrders": self._nested([self._fulfillment_order(o)], lambda fo: [fo["id"]])}

    def _fulfillment_order(self, o: dict[str, Any]) -> dict[str, Any]:
        """One fulfillment order per order, assigned to the first location (the simulator's
        simplification: Shopify splits an order by the locations that stock its items)."""
        lines = [{"__typename": "FulfillmentOrderLineItem", "id": _gid("FulfillmentOrderLineItem", o["n"] * 100 + i),
                  "totalQuantity": ln["quantity"], "remainingQuantity": ln["quantity"] - ln["fulfilled"],
                  "sku": ln["sku"], "lineItem": {"__typename": "LineItem", "id": _gid("LineItem", o["n"] * 100 + i),
                                                 "sku": ln["sku"], "quantity": ln["quantity"]}}
                 for i, ln in enumerate(o["lines"])]
        status = "CLOSED" if all(ln["fulfilled"] >= ln["quantity"] for ln in o["lines"]) else "OPEN"
        return {"__typename": "FulfillmentOrder", "id": _gid("FulfillmentOrder", o["n"]), "status": status,
                "orderId": _gid("Order", o["n"]),
                "assignedLocation": {"__typename": "FulfillmentOrderAssignedLocation",
                                     "location": self.locations[min(self.locations)]},
                "lineItems": self._nested(lines, lambda li: [li["id"]])}

    def _variant(self, n: int) -> dict[str, Any]:
        v = self.variants[n]
        item = {"__typename": "InventoryItem", "id": _gid("InventoryItem", n), "sku": v["sku"], "tracked": True,
                "inventoryLevels": self._nested([self._level(n, loc) for loc in self.locations], lambda lv: [lv["id"]])}
        return {"__typename": "ProductVariant", "id": _gid("ProductVariant", n), "sku": v["sku"], "title": "Default Title",
                "price": v["price"], "inventoryItem": item,
                "product": {"__typename": "Product", "id": _gid("Product", n), "title": v["title"]}}

    def _level(self, item: int, loc: int) -> dict[str, Any]:
        q = self.levels[(item, loc)]

        def quantities(f: gql.Field) -> list[dict[str, Any]]:
            names = f.arguments(self._vars).get("names") or []
            return [{"__typename": "InventoryQuantity", "name": nm, "quantity": q.get(nm, 0)} for nm in names]
        return {"__typename": "InventoryLevel", "id": f"gid://shopify/InventoryLevel/{item}?inventory_item_id={loc}",
                "location": self.locations[loc], "quantities": quantities}

    def _nested(self, items: list[dict[str, Any]], key: Any) -> Any:
        def connection(f: gql.Field) -> dict[str, Any]:
            a = f.arguments(self._vars)
            return graphql_connection(items, key=key, first=a.get("first"), after=a.get("after"), last=a.get("last"),
                                      before=a.get("before"))
        return connection

    # ------------------------------------------------------------------ the endpoint
    def annotate(self, exchange: Exchange) -> None:
        if not _is_graphql(exchange) or _check_json_body(exchange):
            return
        body = exchange.body
        try:
            exchange.meta["operation"] = gql.pick_operation(gql.parse(body["query"]), body.get("operationName"))
        except gql.GraphQLSyntaxError as exc:
            exchange.meta["parse_error"] = exc

    def is_write(self, exchange: Exchange) -> bool:
        op = _op(exchange)
        return op is not None and op.kind == "mutation"

    def _graphql(self, request: Request) -> Answer:
        exchange = request.exchange if isinstance(request, DialectRequest) else None
        op = _op(exchange) if exchange else None
        if exchange is None or op is None:
            return _errors(graphql_error("no operation"))
        self._vars = _variables(exchange)
        data: dict[str, Any] = {}
        sizes: dict[str, int] = {}
        with self.store_lock:
            for f in op.selections:
                resolver = getattr(self, f"_{op.kind}_{f.name}", None)
                if resolver is None:
                    root = "QueryRoot" if op.kind == "query" else "Mutation"
                    return _errors(graphql_error(f"Field '{f.name}' doesn't exist on type '{root}'", line=f.line,
                                                 column=f.column, path=[op.kind, f.key], code="undefinedField",
                                                 typeName=root, fieldName=f.name))
                try:
                    value = resolver(f.arguments(self._vars))
                    data[f.key] = gql.project(value, f.selections, [f.key])
                except gql.FieldError as exc:
                    return _errors(graphql_error(str(exc), line=exc.field.line, column=exc.field.column,
                                                 path=exc.path, code="undefinedField", typeName=exc.type_name,
                                                 fieldName=exc.field.name))
                except ValueError as exc:  # a cursor this server did not issue, a filter it does not read
                    return _errors(graphql_error(str(exc), line=f.line, column=f.column, path=[f.key]))
                if isinstance(value, dict) and "edges" in value:
                    sizes[f.key] = len(value["edges"])
        exchange.meta["actual_cost"] = gql.requested_cost(op.selections, self._vars, mutation=op.kind == "mutation",
                                                          sizes=sizes)
        return 200, {"data": data}

    def settle(self, exchange: Exchange, status: int, body: Any) -> Any:
        """Refund the requested cost the query did not use, and say so in ``extensions.cost``, as
        every Shopify GraphQL answer does."""
        requested = exchange.meta.get("cost:shopify.cost.bucket")
        if requested is None or not isinstance(body, dict):
            return body
        actual = int(exchange.meta.get("actual_cost", requested))
        self.bucket.refund(max(0, requested - actual))
        return {**body, "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                                "throttleStatus": _throttle_status(self.bucket)}}}

    def error_answer(self, status: int, code: str, message: str) -> Answer:
        return status, {"errors": message if status != 404 else "Not Found"}

    def fault_answer(self, decision: Decision) -> Answer:
        status = int(decision.reject_status or 500)
        if status == 429:  # the REST-style answer of a Retry-After fault; GraphQL throttles are the bucket's
            return 429, {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                                   "uninterrupted service."}
        return status, {"errors": "Internal Server Error" if status >= 500 else (decision.reject_body or {}).get("message")}

    # ------------------------------------------------------------------ resolvers (query root)
    def _search(self, query: Any, allowed: set[str]) -> list[tuple[str, str, str]]:
        """Shopify search syntax, the part a sync uses: ``field:value`` and ``field:>=value`` terms
        joined by spaces or AND. Anything else is refused (a simulator limitation, said so)."""
        terms = []
        for term in re.split(r"\s+(?:AND\s+)?", str(query or "").strip()) if query else []:
            m = re.fullmatch(r"(\w+):(<=|>=|<|>)?'?\"?([^'\"]*)'?\"?", term)
            if not m or m.group(1) not in allowed:
                raise ValueError(f"this simulator reads only {sorted(allowed)} in query, got {term!r}")
            terms.append((m.group(1), m.group(2) or "=", m.group(3)))
        return terms

    def _query_orders(self, a: dict[str, Any]) -> dict[str, Any]:
        terms = self._search(a.get("query"), {"updated_at", "created_at", "name"})
        ops = {"=": str.__eq__, ">=": str.__ge__, ">": str.__gt__, "<=": str.__le__, "<": str.__lt__}
        field_of = {"updated_at": "updatedAt", "created_at": "createdAt", "name": "name"}
        rows = [o for o in self.orders.values()
                if all(ops[op](o[field_of[f]], _normal_time(v) if f != "name" else v) for f, op, v in terms)]
        sort = a.get("sortKey") or "ID"
        if sort not in ("ID", "UPDATED_AT", "CREATED_AT"):
            raise ValueError(f"this simulator sorts orders by ID, UPDATED_AT or CREATED_AT, got {sort!r}")
        sort_field = {"UPDATED_AT": "updatedAt", "CREATED_AT": "createdAt"}.get(sort)

        def key(o: dict[str, Any]) -> list[Any]:
            return [o[sort_field], o["n"]] if sort_field else [o["n"]]
        if a.get("reverse"):
            return self._reversed(rows, key, a, self._order)
        return graphql_connection(rows, key=key, first=a.get("first"), after=a.get("after"), last=a.get("last"),
                                  before=a.get("before"), node=self._order)

    def _reversed(self, rows: list[Any], key: Any, a: dict[str, Any], node: Any) -> dict[str, Any]:
        def neg(o: Any) -> list[Any]:  # reverse order: negate numbers, invert strings by sorting descending
            return [[-ord(c) for c in k] if isinstance(k, str) else -k for k in key(o)]
        return graphql_connection(rows, key=neg, first=a.get("first"), after=a.get("after"), last=a.get("last"),
                                  before=a.get("before"), node=node)

    def _query_productVariants(self, a: dict[str, Any]) -> dict[str, Any]:
        terms = self._search(a.get("query"), {"sku", "product_id"})
        rows = [n for n, v in self.variants.items()
                if all((v["sku"] == val) if f == "sku" else (str(n) == val) for f, _, val in terms)]
        return graphql_connection(rows, key=lambda n: [n], first=a.get("first"), after=a.get("after"),
                                  last=a.get("last"), before=a.get("before"), node=self._variant)

    def _query_products(self, a: dict[str, Any]) -> dict[str, Any]:
        terms = self._search(a.get("query"), {"sku", "title"})
        rows = [n for n, v in self.variants.items()
                if all(v["sku" if f == "sku" else "title"] == val for f, _, val in terms)]

        def product(n: int) -> dict[str, Any]:
            return {"__typename": "Product", "id": _gid("Product", n), "title": self.variants[n]["title"],
                    "variants": self._nested([self._variant(n)], lambda v: [v["id"]])}
        return graphql_connection(rows, key=lambda n: [n], first=a.get("first"), after=a.get("after"),
                                  last=a.get("last"), before=a.get("before"), node=product)

    def _query_locations(self, a: dict[str, Any]) -> dict[str, Any]:
        return graphql_connection(list(self.locations.values()), key=lambda loc: [_num(loc["id"])],
                                  first=a.get("first"), after=a.get("after"), last=a.get("last"),
                                  before=a.get("before"))

    def _query_inventoryItem(self, a: dict[str, Any]) -> dict[str, Any] | None:
        n = _num(a.get("id"))
        return self._variant(n)["inventoryItem"] if n in self.variants else None

    # ------------------------------------------------------------------ resolvers (mutations)
    def _mutation_fulfillmentCreate(self, a: dict[str, Any]) -> dict[str, Any]:
        """Fulfil fulfillment order line items (all of a fulfillment order's when none are named),
        with tracking; nothing is written when any pair is wrong. Refusals are ``userErrors
        [{field, message}]`` (UserError has no code); their messages are the simulator's words."""
        raw = a.get("fulfillment")
        value: dict[str, Any] = raw if isinstance(raw, dict) else {}
        pairs = value.get("lineItemsByFulfillmentOrder")
        errors: list[dict[str, Any]] = []
        plan: list[tuple[dict[str, Any], int, int]] = []  # (order, line index, quantity)
        order = None
        if not isinstance(pairs, list) or not pairs:
            errors.append({"field": ["fulfillment", "lineItemsByFulfillmentOrder"],
                           "message": "lineItemsByFulfillmentOrder must name at least one fulfillment order"})
        for i, pair in enumerate(pairs if isinstance(pairs, list) else []):
            path = ["fulfillment", "lineItemsByFulfillmentOrder", str(i)]
            o = self.orders.get(_num((pair or {}).get("fulfillmentOrderId")) or -1)
            if o is None:
                errors.append({"field": [*path, "fulfillmentOrderId"], "message": "Fulfillment order does not exist."})
                continue
            if order is not None and o is not order:
                errors.append({"field": [*path, "fulfillmentOrderId"],
                               "message": "All fulfillment orders must belong to the same order."})
                continue
            order = o
            wanted = pair.get("fulfillmentOrderLineItems")
            items = ([{"id": _gid("FulfillmentOrderLineItem", o["n"] * 100 + j), "quantity": ln["quantity"] - ln["fulfilled"]}
                      for j, ln in enumerate(o["lines"]) if ln["quantity"] > ln["fulfilled"]] if not wanted else wanted)
            if not items:
                errors.append({"field": [*path, "fulfillmentOrderId"], "message": "Fulfillment order is already closed."})
            for k, item in enumerate(items):
                num = _num(item.get("id"))
                j = num - o["n"] * 100 if num is not None else -1
                if not 0 <= j < len(o["lines"]):
                    errors.append({"field": [*path, "fulfillmentOrderLineItems", str(k), "id"],
                                   "message": "Fulfillment order line item does not exist on this fulfillment order."})
                    continue
                qty, line = item.get("quantity"), o["lines"][j]
                if not isinstance(qty, int) or not 0 < qty <= line["quantity"] - line["fulfilled"]:
                    errors.append({"field": [*path, "fulfillmentOrderLineItems", str(k), "quantity"],
                                   "message": f"Invalid quantity {qty!r}: {line['quantity'] - line['fulfilled']} "
                                              "remain to fulfil."})
                    continue
                plan.append((o, j, qty))
        if errors or order is None:
            return {"__typename": "FulfillmentCreatePayload", "fulfillment": None,
                    "userErrors": [{"__typename": "UserError", **e} for e in errors]}
        for o, j, qty in plan:
            o["lines"][j]["fulfilled"] += qty
        raw_tracking = value.get("trackingInfo")
        tracking: dict[str, Any] = raw_tracking if isinstance(raw_tracking, dict) else {}
        stamp = self.now()
        fulfillment = {"id": _gid("Fulfillment", order["n"] * 100 + len(order["fulfillments"]) + 1), "status": "SUCCESS",
                       "createdAt": stamp, "trackingInfo": [{"__typename": "FulfillmentTrackingInfo",
                                                             "company": tracking.get("company"),
                                                             "number": tracking.get("number"), "url": tracking.get("url")}]}
        order["fulfillments"].append(fulfillment)
        order["updatedAt"] = stamp  # a fulfilment changes the order: the next updated_at window sees it
        return {"__typename": "FulfillmentCreatePayload", "fulfillment": {"__typename": "Fulfillment", **fulfillment},
                "userErrors": []}

    def _mutation_inventorySetQuantities(self, a: dict[str, Any]) -> dict[str, Any]:
        """Compare-and-set: every quantity's compareQuantity must match the stored one (unless
        ignoreCompareQuantity), else nothing is written and COMPARE_QUANTITY_STALE names it."""
        value = a.get("input") or {}
        name = value["name"]
        errors: list[dict[str, Any]] = []
        targets = []
        for i, q in enumerate(value["quantities"]):
            item, loc = _num(q.get("inventoryItemId")), _num(q.get("locationId"))
            path = ["input", "quantities", str(i)]
            if item not in self.variants:
                errors.append({"field": [*path, "inventoryItemId"], "code": "INVALID_INVENTORY_ITEM",
                               "message": "The specified inventory item could not be found."})
            elif loc not in self.locations:
                errors.append({"field": [*path, "locationId"], "code": "INVALID_LOCATION",
                               "message": "The specified location could not be found."})
            elif not value.get("ignoreCompareQuantity") and q.get("compareQuantity") != self.levels[(item, loc)][name]:
                errors.append({"field": [*path, "compareQuantity"], "code": "COMPARE_QUANTITY_STALE",
                               "message": "The compareQuantity value does not match persisted value."})
            else:
                targets.append((item, loc, q["quantity"]))
        if errors:
            return {"__typename": "InventorySetQuantitiesPayload", "inventoryAdjustmentGroup": None,
                    "userErrors": [{"__typename": "InventorySetQuantitiesUserError", **e} for e in errors]}
        changes = []
        for item, loc, qty in targets:
            level = self.levels[(item, loc)]
            delta = qty - level[name]
            level[name] = qty
            if name == "available":
                level["on_hand"] += delta
            else:
                level["available"] += delta
            changes.append({"__typename": "InventoryChange", "name": name, "delta": delta, "quantityAfterChange": qty,
                            "item": {"__typename": "InventoryItem", "id": _gid("InventoryItem", item),
                                     "sku": self.variants[item]["sku"]},
                            "location": self.locations[loc]})
        group = {"__typename": "InventoryAdjustmentGroup", "id": _gid("InventoryAdjustmentGroup", self._tick),
                 "createdAt": self.now(), "reason": value["reason"],
                 "referenceDocumentUri": value.get("referenceDocumentUri"), "changes": changes}
        return {"__typename": "InventorySetQuantitiesPayload", "inventoryAdjustmentGroup": group, "userErrors": []}


def _fulfillment_status(o: dict[str, Any]) -> str:
    done = sum(min(ln["fulfilled"], ln["quantity"]) for ln in o["lines"])
    return "UNFULFILLED" if done == 0 else "FULFILLED" if done == sum(ln["quantity"] for ln in o["lines"]) \
        else "PARTIALLY_FULFILLED"


def _normal_time(value: str) -> str:
    """A search value as the store's ``YYYY-MM-DDTHH:MM:SSZ`` (a date alone is its midnight UTC)."""
    v = value.strip()
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"updated_at/created_at must be an ISO 8601 time, got {value!r}") from None
    return _iso(t if t.tzinfo else t.replace(tzinfo=UTC))
