"""TLS certificates are verified by default (issue 7, security): a server whose certificate no
trusted CA signed is refused before anything is sent; trusting its CA makes the same call work."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.errors import TransientError


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.server.posts += 1  # type: ignore[attr-defined]
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = http.server.HTTPServer(("127.0.0.1", 0), _Ok)
    server.posts = 0  # type: ignore[attr-defined]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert, server
    server.shutdown()


def test_an_untrusted_certificate_is_refused_and_nothing_is_sent(https_server) -> None:
    url, _cert, server = https_server
    client = HttpClient(url, system="erp", retry=RetryPolicy.none())
    with pytest.raises(TransientError, match="TLS certificate not trusted"):
        client.request("POST", "/api/sales-orders", json={"id": "O1"}, idempotency_key="order:O1")
    assert server.posts == 0


def test_trusting_the_systems_ca_makes_the_call_work(https_server, monkeypatch: pytest.MonkeyPatch) -> None:
    url, cert, server = https_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    client = HttpClient(url, system="erp", retry=RetryPolicy.none())
    assert client.request("POST", "/api/sales-orders", json={"id": "O1"}).body == {"ok": True}
    assert server.posts == 1
