"""The Tryton and Vendure rule books (erpsync.sandbox.contract.tryton/.vendure) and the recording
proxy, without the real systems: every rule is shown to catch a request that breaks it (so none
is vacuous) and to pass the request the adapter sends; the proxy passes everything through
unchanged and records it. The same rules checked over the real adapter against the real servers:
tests/conformance/test_adapter_requests.py."""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from erpsync.sandbox.contract import tryton, vendure
from erpsync.sandbox.contract.proxy import RecordingProxy
from erpsync.sandbox.contract.rules import Exchange, Recorder, RuleBook

SESSION = "Session " + base64.b64encode(b"admin:1:0123abcd").decode()
CONTEXT = {"company": 1, "language": "en"}


def rpc(method: str, params: list[Any], *, auth: str | None = SESSION, path: str = "/shop/rpc/",
        http_method: str = "POST", id_: int | None = 7) -> Exchange:
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = auth
    return Exchange(http_method, path, {}, headers, {"method": method, "params": params, "id": id_})


def gql(query: str, variables: dict[str, Any] | None = None, *, auth: str | None = "Bearer tok",
        path: str = "/admin-api", answer: Any = None, headers: dict[str, str] | None = None) -> Exchange:
    h = {"content-type": "application/json", **(headers or {})}
    if auth:
        h["authorization"] = auth
    ex = Exchange("POST", path, {}, h, {"query": query, "variables": variables or {}})
    ex.answer, ex.status = answer, (200 if answer is not None else None)
    return ex


FULFIL = ("mutation($i:FulfillOrderInput!){addFulfillmentToOrder(input:$i){__typename "
          "... on Fulfillment{id state} ... on ErrorResult{errorCode message}}}")
LIST = "query($o:CustomerListOptions){customers(options:$o){items{id} totalItems}}"

#: per rule: (an exchange the adapter sends that keeps it, one that breaks it)
TRYTON_CASES: dict[str, tuple[Exchange, Exchange]] = {
    "tryton.rpc.path": (rpc("model.party.party.read", [[1], ["code"], CONTEXT]),
                        rpc("model.party.party.read", [[1], ["code"], CONTEXT], path="/shop/")),
    "tryton.rpc.request": (rpc("model.party.party.read", [[1], ["code"], CONTEXT]),
                           rpc("model.party.party.read", [[1], ["code"], CONTEXT], id_=None)),
    "tryton.rpc.login_params": (rpc("common.db.login", ["admin", {"password": "x"}, "en"], auth=None),
                                rpc("common.db.login", ["admin", "x"], auth=None)),
    "tryton.rpc.logout_params": (rpc("common.db.logout", []), rpc("common.db.logout", [CONTEXT])),
    "tryton.rpc.session_header": (rpc("model.party.party.read", [[1], ["code"], CONTEXT]),
                                  rpc("model.party.party.read", [[1], ["code"], CONTEXT],
                                      auth="Session " + base64.b64encode(b"admin:0123abcd").decode())),
    "tryton.search.arguments": (
        rpc("model.sale.sale.search_read", [[], 0, 3, [["id", "ASC"]], ["number"], CONTEXT]),
        rpc("model.sale.sale.search_read", [[], 0, 3, [["id", "UP"]], ["number"], CONTEXT])),
    "tryton.search.paging": (
        rpc("model.sale.sale.search_read", [[], 3, 3, [["id", "ASC"]], ["number"], CONTEXT]),
        rpc("model.sale.sale.search_read", [[], 3, 3, None, ["number"], CONTEXT])),
    "tryton.records.integer_ids": (rpc("model.sale.sale.write", [[4], {"comment": "x"}, CONTEXT]),
                                   rpc("model.sale.sale.write", [["4"], {"comment": "x"}, CONTEXT])),
}

VENDURE_CASES: dict[str, tuple[Exchange, Exchange]] = {
    "vendure.api.admin_path": (gql(LIST, {"o": {"take": 3}}), gql(LIST, {"o": {"take": 3}}, path="/shop-api")),
    "vendure.graphql.query": (gql("{ activeAdministrator { id } }"),
                              Exchange("POST", "/admin-api", {}, {"authorization": "Bearer tok"},
                                       {"operationName": "x", "variables": {}})),
    "vendure.auth.session": (gql("{ activeAdministrator { id } }"),
                             gql("{ activeAdministrator { id } }", auth=None)),
    "vendure.channel.token_header": (gql(LIST, headers={"vendure-token": "chan-1"}),
                                     gql(LIST, headers={"vendure-token": "other"})),
    "vendure.list.take_limit": (gql(LIST, {"o": {"skip": 0, "take": 1000}}),
                                gql("query{order(id:1){history(options:{take:5000}){items{type}}}}")),
    "vendure.errors.error_result_selected": (
        gql(FULFIL), gql("mutation($i:FulfillOrderInput!){addFulfillmentToOrder(input:$i){"
                         "... on Fulfillment{id state}}}")),
    "vendure.errors.refusal_kept": (
        gql(FULFIL, answer={"data": {"addFulfillmentToOrder": {
            "__typename": "InsufficientStockOnHandError", "errorCode": "INSUFFICIENT_STOCK_ON_HAND_ERROR",
            "message": "Only 2 of Widget are available"}}}),
        gql(FULFIL, answer={"data": {"addFulfillmentToOrder": {}}})),
}


def _books() -> dict[str, tuple[RuleBook, dict[str, tuple[Exchange, Exchange]]]]:
    return {"tryton": (tryton.rule_book(database="shop"), TRYTON_CASES),
            "vendure": (vendure.rule_book(channel_token="chan-1"), VENDURE_CASES)}


def test_every_rule_has_a_case_and_cites_the_vendor() -> None:
    for name, (book, cases) in _books().items():
        assert sorted(r.id for r in book) == sorted(cases), f"{name}: a rule without a case (or a stale case)"
        host = {"tryton": "https://docs.tryton.org/", "vendure": "https://docs.vendure.io/"}[name]
        for r in book:
            assert r.cite.startswith(host), f"{r.id} cites {r.cite}, not the vendor's docs"
            assert r.id.startswith(f"{name}.") and r.says.endswith((".", ")")), r.id


@pytest.mark.parametrize(("dialect", "rule_id"), [(d, r) for d, (b, _) in _books().items() for r in (x.id for x in b)])
def test_rule_keeps_the_good_request_and_catches_the_bad_one(dialect: str, rule_id: str) -> None:
    book, cases = _books()[dialect]
    good, bad = cases[rule_id]
    rule = book[rule_id]
    for label, ex, want_broken in (("good", good, False), ("bad", bad, True)):
        applied, broken = book.check(ex, when=rule.when)
        assert rule in applied, f"{rule_id} does not apply to the {label} exchange"
        hit = [v for v in broken if v.rule.id == rule_id]
        assert bool(hit) is want_broken, f"{rule_id} on the {label} exchange: {[str(v) for v in hit]}"
        if hit:
            assert rule.cite in str(hit[0]) and hit[0].detail  # the violation names the value and the page


def test_vendure_scanner_reads_the_adapters_documents() -> None:
    doc = ('mutation($i:SettleRefundInput!){settleRefund(input:$i){__typename ... on Refund{id "}"} '
           '... on ErrorResult{errorCode message}}}')
    assert vendure.operation(doc) == "mutation"
    fields = vendure.root_fields(doc)
    assert [(k, n) for k, n, _ in fields] == [("settleRefund", "settleRefund")]
    assert "ErrorResult" in fields[0][2]
    assert vendure.operation("{ activeChannel { defaultCurrencyCode } }") == "query"
    assert [n for _, n, _ in vendure.root_fields("query{a:customers{items{id}} b:orders{totalItems}}")] == \
        ["customers", "orders"]
    ex = gql("query{order(id:1){history(options:{take:1000}){items{type}}}}", {"o": {"take": 3, "x": [{"take": 2}]}})
    assert sorted(vendure.takes(ex)) == [2, 3, 1000]


def test_vendure_login_needs_no_session_and_a_default_channel_book_skips_the_channel_rule() -> None:
    book = vendure.rule_book()
    login = gql("mutation($u:String!,$p:String!){login(username:$u,password:$p){__typename "
                "... on CurrentUser{id} ... on ErrorResult{errorCode message}}}", auth=None)
    applied, broken = book.check(login)
    assert not broken and "vendure.auth.session" not in {r.id for r in applied}
    assert "vendure.errors.error_result_selected" in {r.id for r in applied}
    assert "vendure.channel.token_header" not in {r.id for r in book.check(gql(LIST))[0]}
    cookie = gql("{ activeAdministrator { id } }", auth=None, headers={"cookie": "session=abc; session.sig=x"})
    assert not book.check(cookie)[1]


# --------------------------------------------------------------------------- the proxy


class _Upstream(BaseHTTPRequestHandler):
    """Echoes what it got (method, path, headers, body) as JSON, gzip-encoded when asked, with a
    Set-Cookie and an auth-token header, so the test can see exactly what went through."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # the stdlib's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        echo = json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                           "body": body.decode()}).encode()
        status = 418 if self.path.startswith("/teapot") else 200
        payload = gzip.compress(echo) if "gzip" in (self.headers.get("Accept-Encoding") or "") else echo
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if payload is not echo:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Set-Cookie", "session=s1; Path=/; HttpOnly")
        self.send_header("vendure-auth-token", "tok-123")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_proxy_passes_everything_through_and_records_it(upstream: str) -> None:
    book = vendure.rule_book()
    with RecordingProxy(upstream, book) as proxy, requests.Session() as s:
        body = {"query": "{ activeAdministrator { id } }", "variables": {}}
        r = s.post(proxy.url + "/admin-api?languageCode=en", json=body,
                   headers={"Authorization": "Bearer tok", "vendure-token": "chan", "Cookie": "session=abc"})
        assert r.status_code == 200
        assert r.headers["vendure-auth-token"] == "tok-123" and "session=s1" in r.headers["Set-Cookie"]
        echo = r.json()  # requests decoded the gzip the upstream sent: the bytes went through unchanged
        assert r.headers.get("Content-Encoding") == "gzip"
        assert echo["path"] == "/admin-api?languageCode=en" and json.loads(echo["body"]) == body
        sent = {k.lower(): v for k, v in echo["headers"].items()}
        assert sent["authorization"] == "Bearer tok" and sent["vendure-token"] == "chan"
        assert sent["cookie"] == "session=abc" and sent["host"] == upstream.split("//")[1]
        # a second request on the same (kept-alive) connection, and a status other than 200
        r2 = s.post(proxy.url + "/teapot", data=b"not json", headers={"Content-Type": "text/plain"})
        assert r2.status_code == 418 and r2.json()["body"] == "not json"
    rec = proxy.recorder
    assert [(e.method, e.path, e.status) for e in rec.exchanges] == [("POST", "/admin-api", 200),
                                                                     ("POST", "/teapot", 418)]
    first = rec.exchanges[0]
    assert first.query == {"languageCode": "en"} and first.body == body and first.header("vendure-token") == "chan"
    assert first.answer["path"] == "/admin-api?languageCode=en"  # the gzip answer decoded for the recorder
    assert rec.exchanges[1].body is None
    assert [v.rule.id for v in rec.violations()] == ["vendure.api.admin_path", "vendure.graphql.query"]
    with pytest.raises(AssertionError, match="vendure.api.admin_path"):
        rec.assert_clean()


def test_proxy_answers_502_naming_the_upstream_when_it_is_down() -> None:
    recorder = Recorder(tryton.rule_book())
    with RecordingProxy("http://127.0.0.1:9", recorder=recorder, timeout=2) as proxy:
        r = requests.post(proxy.url + "/db/rpc/", json={"method": "common.db.login", "params": ["a", {}], "id": 1},
                          timeout=10)
    assert r.status_code == 502 and "127.0.0.1:9" in r.json()["message"]
    assert recorder.exchanges[0].status is None and not recorder.violations()
    with pytest.raises(RuntimeError, match="not started"):
        proxy.url  # noqa: B018 - stopped: no URL to give out
