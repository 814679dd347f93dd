"""The contract-simulator toolkit (erpsync.sandbox.contract.dialect, .graphql, .rules) on its own:
the rule core refuses a rule without a cite and a test that checks nothing; the GraphQL reader,
the buckets and the paging helpers; and a toy dialect served over HTTP, showing a refused request
gets the dialect's own error shape, the auth handshakes, a request-count bucket with Retry-After,
and the sandbox's faults (commit-then-timeout, expired sessions) working through the kit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from erpsync.sandbox.contract import graphql as gql
from erpsync.sandbox.contract.dialect import (
    Bucket,
    DialectService,
    OAuth2ClientCredentials,
    SessionLogin,
    StaticToken,
    decode_cursor,
    graphql_connection,
    limit,
    odata_error,
    odata_page,
    offset_page,
)
from erpsync.sandbox.contract.rules import Exchange, Recorder, Rule, RuleBook
from erpsync.sandbox.data import SeedOptions
from erpsync.sandbox.server import Request, make_server

CITE = "https://example.test/docs/api"


def _ex(path: str = "/x", headers: dict[str, str] | None = None, body: Any = None) -> Exchange:
    return Exchange("GET", path, {}, headers or {}, body)


# ----------------------------------------------------------------------------- the rule core
def test_a_rule_without_an_https_cite_is_rejected() -> None:
    with pytest.raises(ValueError, match="cite must be the vendor's reference page"):
        Rule("toy.x", "says", "docs/api.md", lambda e: None)
    with pytest.raises(ValueError, match="cite"):
        Rule("toy.x", "says", "http://example.test/plain-http", lambda e: None)


def test_a_typo_in_exercised_fails_and_a_rule_that_never_applied_fails() -> None:
    book = RuleBook("toy", [
        Rule("toy.header", "a header", CITE, lambda e: None if e.header("x-key") else "no x-key"),
        Rule("toy.writes", "writes only", CITE, lambda e: None, applies=lambda e: e.method == "POST"),
    ])
    rec = Recorder(book)
    rec.on_request(_ex(headers={"x-key": "1"}))
    rec.assert_clean(exercised=["toy.header"])  # kept and applied: clean
    with pytest.raises(KeyError, match="toy.headr"):
        rec.assert_clean(exercised=["toy.headr"])
    with pytest.raises(AssertionError, match="toy.writes: never applied"):
        rec.assert_clean(exercised=["toy.writes"])
    rec.on_request(_ex())
    with pytest.raises(AssertionError, match="toy.header: no x-key"):
        rec.assert_clean()


def test_a_limit_must_be_in_the_rule_book() -> None:
    lim = limit(Bucket(10, 1), id="toy.limit", says="s", cite=CITE, cost=lambda e: 1, refuse=lambda e, d: (429, {}))
    with pytest.raises(ValueError, match="toy.limit"):
        DialectService(SeedOptions(skus=1, orders=0, customers=0), RuleBook("toy", []), limits=[lim])


# ----------------------------------------------------------------------------- GraphQL reader
def test_graphql_reader_reads_variables_aliases_and_values() -> None:
    doc = '''query Orders($after: String, $n: Int = 5) {
      recent: orders(first: $n, after: $after, query: "updated_at:>=2026-01-01", sortKey: UPDATED_AT,
                     filter: {tags: ["a", "b"], ok: true, none: null, f: 1.5}) {
        nodes { id } pageInfo { hasNextPage endCursor }
      }
    }'''
    (op,) = gql.parse(doc)
    assert (op.kind, op.name, op.variables["n"]) == ("query", "Orders", ("Int", 5))
    (f,) = op.selections
    assert (f.name, f.key) == ("orders", "recent")
    args = f.arguments({"after": "c1", "n": 3})
    assert args == {"first": 3, "after": "c1", "query": "updated_at:>=2026-01-01", "sortKey": "UPDATED_AT",
                    "filter": {"tags": ["a", "b"], "ok": True, "none": None, "f": 1.5}}


@pytest.mark.parametrize("doc, message", [
    ("{ orders(first: 1) { nodes { id }", "Unexpected end of document"),
    ("query { ...Frag }", "Fragments are not supported"),
    ("fragment F on Order { id }", "Fragments are not supported"),
    ("subscription { x }", "Unsupported operation type 'subscription'"),
    ("{ a @include(if: true) }", "Directive @include is not supported"),
    ("{ a(x: %) }", "Unexpected character '%'"),
])
def test_graphql_reader_refuses_what_it_does_not_understand_with_a_position(doc: str, message: str) -> None:
    with pytest.raises(gql.GraphQLSyntaxError, match=message) as info:
        gql.parse(doc)
    assert info.value.line >= 1 and info.value.column >= 1


def test_graphql_operation_name_picks_one_of_several() -> None:
    ops = gql.parse("query A { a } query B { b }")
    assert gql.pick_operation(ops, "B").selections[0].name == "b"
    with pytest.raises(gql.GraphQLSyntaxError, match="operationName is required"):
        gql.pick_operation(ops, None)


def test_projection_keeps_the_selection_and_names_an_unknown_field() -> None:
    (op,) = gql.parse("{ o { x: id total { amount } } }")
    value = {"__typename": "Order", "id": "1", "other": 2, "total": {"__typename": "Money", "amount": "1.00", "c": 1}}
    assert gql.project(value, op.selections[0].selections) == {"x": "1", "total": {"amount": "1.00"}}
    (bad,) = gql.parse("{ o { nope } }")
    with pytest.raises(gql.FieldError, match="Field 'nope' doesn't exist on type 'Order'"):
        gql.project(value, bad.selections[0].selections, ["o"])


def test_requested_cost_follows_the_documented_defaults() -> None:
    # connection: 2 + first x (node object 1 + nested object 1 + nested connection 2 + 5 x 1)
    (op,) = gql.parse("{ orders(first: 10) { nodes { id total { amount } lines(first: 5) { nodes { sku } } } "
                      "pageInfo { hasNextPage } } }")
    assert gql.requested_cost(op.selections, {}) == 2 + 10 * (1 + 1 + 2 + 5)
    assert gql.requested_cost(op.selections, {}, sizes={"orders": 3}) == 2 + 3 * 9  # the actual cost
    (m,) = gql.parse("mutation { a { x } b { y } }")
    assert gql.requested_cost(m.selections, {}, mutation=True) == 20


# ----------------------------------------------------------------------------- buckets, paging
def test_bucket_leaks_refills_and_refunds() -> None:
    now = [0.0]
    b = Bucket(100, 10, clock=lambda: now[0])
    assert b.take(80) == 20
    assert b.wait_for(50) == pytest.approx(3.0)
    now[0] = 2.0
    assert b.available() == pytest.approx(40)
    b.refund(30)
    assert b.available() == pytest.approx(70)
    now[0] = 100.0
    assert b.available() == 100  # never above capacity


def test_connection_reads_every_item_once_while_items_are_added() -> None:
    items = [{"id": i, "t": i} for i in range(1, 11)]
    seen: list[int] = []
    after = None
    while True:
        if after is not None and len(items) < 16:  # a record arrives between two pages
            items.append({"id": 100 + len(items), "t": 1000 + len(items)})
        page = graphql_connection(items, key=lambda i: [i["t"], i["id"]], first=3, after=after)
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(items) > 10  # records did arrive mid-read
    assert sorted(seen) == sorted(i["id"] for i in items) and len(seen) == len(set(seen))
    back = graphql_connection(items, key=lambda i: [i["t"], i["id"]], last=2)
    assert [n["id"] for n in back["nodes"]] == [i["id"] for i in items[-2:]] and back["pageInfo"]["hasPreviousPage"]
    with pytest.raises(ValueError, match="not one this server returned"):
        decode_cursor("%%%")


def test_odata_and_offset_pages() -> None:
    items = list(range(5))
    first = odata_page(items, key=lambda i: i, top=2, skiptoken=None, next_link="http://h/Items?$filter=x")
    assert first["value"] == [0, 1] and "$skiptoken=" in first["@odata.nextLink"]
    token = first["@odata.nextLink"].split("$skiptoken=")[1]
    last = odata_page(items, key=lambda i: i, top=3, skiptoken=token, next_link="http://h/Items")
    assert last == {"value": [2, 3, 4]}
    assert offset_page(items, offset=3, limit=2) == {"items": [3, 4], "hasMore": False, "offset": 3, "limit": 2}
    assert odata_error("BadRequest", "no") == {"error": {"code": "BadRequest", "message": "no"}}


# ----------------------------------------------------------------------------- a toy dialect
class ToyService(DialectService):
    """A dialect with each auth piece, a request-count bucket with Retry-After and one write."""

    name = "toy"

    def __init__(self) -> None:
        self.api_key = StaticToken("x-api-key", ["k1"])
        self.count = Bucket(3, 1)  # 3 requests, 1 restored per second
        self.rate = limit(self.count, id="toy.rate", says="3 requests, then 1 a second", cite=CITE,
                          cost=lambda e: 1, applies=lambda e: e.path.startswith("/api/"), retry_after=True,
                          refuse=lambda e, d: (429, {"fault": {"code": "TooManyRequests", "detail": d}}))
        self.stock: dict[str, int] = {}
        super().__init__(SeedOptions(skus=1, orders=0, customers=0), RuleBook("toy", [
            Rule("toy.auth.api_key", "x-api-key on /api/key/*", CITE,
                 lambda e: self.api_key.check(e),
                 applies=lambda e: e.path.startswith("/api/key/"),
                 refuse=lambda e, d: (401, {"fault": {"code": "Unauthorized", "detail": d}})),
            Rule("toy.auth.bearer", "OAuth2 bearer on /api/oauth/*", CITE,
                 lambda e: self.oauth.check(e),
                 applies=lambda e: e.path.startswith("/api/oauth/"),
                 refuse=lambda e, d: (401, {"fault": {"code": "InvalidToken", "detail": d}})),
            Rule("toy.auth.session", "session on /api/session/*", CITE,
                 lambda e: self.session.check(e),
                 applies=lambda e: e.path.startswith("/api/session/"),
                 refuse=lambda e, d: (401, {"fault": {"code": "SessionExpired", "detail": d}})),
            self.rate.rule,
        ]), limits=[self.rate], auths=[self.api_key])
        self.oauth = OAuth2ClientCredentials(self, "/oauth/token", {"client": "secret"}, ttl=60)
        self.session = SessionLogin(self, "/login", {"ann": "pw"}, header="x-session")
        self.auths += [self.oauth, self.session]
        for prefix in ("key", "oauth", "session"):
            self.route("GET", f"/api/{prefix}/ping", lambda r: (200, {"pong": True}))
        self.route("POST", "/api/key/stock", self._set_stock)

    def _set_stock(self, request: Request) -> tuple[int, Any]:
        body = request.json_object()
        self.stock[body["sku"]] = body["qty"]
        return 200, {"sku": body["sku"], "qty": body["qty"]}

    def error_answer(self, status: int, code: str, message: str) -> tuple[int, Any]:
        return status, {"fault": {"code": code, "detail": message}}


@pytest.fixture
def toy() -> Iterator[tuple[ToyService, str]]:
    svc = ToyService()
    server = make_server(svc, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield svc, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_refused_request_gets_the_dialects_shape_and_is_recorded(toy: tuple[ToyService, str]) -> None:
    svc, url = toy
    r = httpx.get(f"{url}/api/key/ping")
    assert r.status_code == 401 and r.json() == {"fault": {"code": "Unauthorized", "detail": "no x-api-key header"}}
    assert httpx.get(f"{url}/api/key/ping", headers={"x-api-key": "k1"}).json() == {"pong": True}
    assert httpx.get(f"{url}/nowhere").json() == {"fault": {"code": "not_found", "detail": "no endpoint GET /nowhere"}}
    contract = httpx.get(f"{url}/_admin/contract").json()
    assert [v["rule"] for v in contract["violations"]] == ["toy.auth.api_key"]
    assert contract["exercised"]["toy.auth.api_key"] == 2
    assert {r["id"]: r["cite"] for r in contract["rules"]}["toy.rate"] == CITE
    assert [x.status for x in svc.recorder.exchanges] == [401, 200, 404]  # on_answer recorded each answer
    httpx.delete(f"{url}/_admin/contract")
    svc.recorder.assert_clean()


def test_oauth2_client_credentials_and_session_login(toy: tuple[ToyService, str]) -> None:
    svc, url = toy
    bad = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": "client",
                                                 "client_secret": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    tok = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": "client",
                                                 "client_secret": "secret"}).json()
    assert tok["token_type"] == "Bearer" and tok["expires_in"] == 60
    assert httpx.get(f"{url}/api/oauth/ping", headers={"authorization": f"Bearer {tok['access_token']}"}).status_code == 200
    assert httpx.get(f"{url}/api/oauth/ping", headers={"authorization": "Bearer forged"}).status_code == 401
    sid = httpx.post(f"{url}/login", json={"username": "ann", "password": "pw"}).json()["session"]
    time_ok = httpx.get(f"{url}/api/session/ping", headers={"x-session": sid})
    assert time_ok.status_code == 200
    # the sandbox's expire_sessions fault ends every issued session and token, through the kit
    httpx.post(f"{url}/_admin/faults", json={"expire_sessions": True})
    gone = httpx.get(f"{url}/api/session/ping", headers={"x-session": sid})
    assert gone.status_code == 401 and gone.json()["fault"]["code"] == "SessionExpired"
    assert httpx.get(f"{url}/api/oauth/ping",
                     headers={"authorization": f"Bearer {tok['access_token']}"}).status_code == 401
    assert httpx.get(f"{url}/api/key/ping", headers={"x-api-key": "k1"}).status_code == 200  # static keys stay


def test_request_count_bucket_answers_429_with_retry_after_and_refills(toy: tuple[ToyService, str]) -> None:
    svc, url = toy
    h = {"x-api-key": "k1"}
    with httpx.Client() as client:
        statuses = [client.get(f"{url}/api/key/ping", headers=h) for _ in range(6)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited, [r.status_code for r in statuses]
    assert limited[0].headers["Retry-After"] in ("1", "2") and limited[0].json()["fault"]["code"] == "TooManyRequests"
    assert "toy.rate" in {v.rule.id for v in svc.recorder.violations()}
    import time

    time.sleep(1.1)  # 1/s restores one request
    assert httpx.get(f"{url}/api/key/ping", headers=h).status_code == 200


def test_commit_then_timeout_commits_the_write_and_drops_the_answer(toy: tuple[ToyService, str]) -> None:
    svc, url = toy
    httpx.post(f"{url}/_admin/faults", json={"commit_then_timeout": {"rate": 1, "hold_seconds": 0.2},
                                             "max_faults": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{url}/api/key/stock", json={"sku": "A", "qty": 4}, headers={"x-api-key": "k1"}, timeout=5)
    assert svc.stock == {"A": 4}
    stats = httpx.get(f"{url}/_admin/stats").json()
    assert stats["writes_committed"] == 1 and stats["faults_injected"] == {"commit_then_timeout": 1}
    dropped = [x for x in svc.recorder.exchanges if x.path == "/api/key/stock"]
    assert [x.status for x in dropped] == [None]  # recorded as an answer that never left
