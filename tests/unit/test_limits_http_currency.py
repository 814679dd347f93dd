"""Issue 17 items 3 and 5 at the adapter boundary: the HTTP client decodes an answer nested 1,000
levels deep without crashing (the rest of the page intact) and refuses an answer over the size
limit with a clear error; minor units come from one currency table (babel) for every currency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.errors import ConfigError, PermanentError
from erpsync.limits import raw_problem
from erpsync.rules.rounding import rounding_policy

DEEP_PAGE = ('{"items": [{"id": "A"}, {"id": "B", "note": ' + "[" * 1000 + "1" + "]" * 1000
             + '}, {"id": "C"}], "next_cursor": null}').encode()


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = DEEP_PAGE if self.path == "/deep" else b'{"items": ["' + b"x" * 5000 + b'"]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_a_page_with_a_record_nested_1000_levels_decodes_and_the_record_is_over_the_limit(server: str) -> None:
    client = HttpClient(server, system="storefront", retry=RetryPolicy.none())
    body = client.request("GET", "/deep").body
    assert [r["id"] for r in body["items"]] == ["A", "B", "C"]  # the page is read, not lost
    reason, kept = raw_problem(body["items"][1])
    assert reason.startswith("record_too_deep:") and len(kept["excerpt"]) <= 2000
    assert raw_problem(body["items"][0]) is None


def test_an_answer_over_the_size_limit_is_a_clear_error(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERPSYNC_MAX_RESPONSE_BYTES", "1000")
    client = HttpClient(server, system="storefront", retry=RetryPolicy.none())
    with pytest.raises(PermanentError, match=r"over the limit of 1,000 \(ERPSYNC_MAX_RESPONSE_BYTES\)"):
        client.request("GET", "/big")


def test_minor_units_come_from_one_currency_table_for_every_currency() -> None:
    policy = rounding_policy()
    # babel's CLDR table: not a hand-kept list of the currencies someone expected
    assert {c: policy.minor_units(c) for c in ("USD", "JPY", "KWD", "VND", "TWD", "CLP", "BHD", "UGX")} == {
        "USD": 2, "JPY": 0, "KWD": 3, "VND": 0, "TWD": 2, "CLP": 0, "BHD": 3, "UGX": 0}
    with pytest.raises(ConfigError, match="XTS"):  # a code without minor units is never guessed
        policy.rule("XTS")
    assert rounding_policy({"EUR": {"mode": "half_even"}}).minor_units("EUR") == 2
