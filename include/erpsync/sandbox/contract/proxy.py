"""A recording reverse proxy: put it in front of a real system (Tryton, Vendure) and point the
production adapter at it, and every request the adapter sends is checked against the vendor's
rules (:class:`~.rules.RuleBook`) while the real system answers it.

Why a proxy and not a fake: the rules are the vendor's, so the adapter's requests are checked
against them while the real server still decides what the answer is (a simulator would also
answer, by our reading of the vendor). The proxy never changes what passes through: the method,
path, query, headers (the session cookie, ``Authorization``, ``vendure-token``), body, status and
answer headers go through as they are. Only what a reverse proxy must change is changed: ``Host``
names the upstream, hop-by-hop headers (``Connection``, ``Transfer-Encoding``, ...) are not
forwarded, and an answer sent in chunks reaches the client whole, with its ``Content-Length``
(streaming is not needed by any adapter here).

Each exchange is recorded through a :class:`~.rules.Recorder`: request-stage rules when the
request arrives (before it is forwarded), answer-stage rules (``when="answer"``) once the answer
is known. JSON bodies are decoded for the rules (a gzip/deflate answer is decoded for the
recorder only; the client gets the bytes the server sent). A request the proxy cannot forward
(the upstream is down) is answered ``502`` with a JSON body naming the upstream and recorded with
no status, so a test sees it.

Use::

    with RecordingProxy("http://127.0.0.1:8000", tryton.rule_book()) as proxy:
        adapter = build_erp("tryton", proxy.url + "/mydb", ...)
        ...
    proxy.recorder.assert_clean(exercised=["tryton.rpc.session_header"])
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from erpsync.sandbox.contract.rules import Exchange, Recorder, RuleBook

#: headers that describe one connection, not the message (RFC 9110 7.6.1): never forwarded
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-connection"})


def decode_json(raw: bytes, content_type: str | None, content_encoding: str | None = None) -> Any:
    """The JSON a body carries, or None (not JSON, or an encoding the recorder cannot read)."""
    if not raw:
        return None
    encoding = (content_encoding or "").lower().strip()
    try:
        if encoding in ("gzip", "x-gzip"):
            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding not in ("", "identity"):
            return None
    except zlib.error:
        return None
    if content_type and "json" not in content_type.lower() and raw.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "erpsync-recording-proxy/1"
    proxy: RecordingProxy

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # the stdlib's naming
        self.proxy._forward(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class RecordingProxy:
    """A reverse proxy to ``upstream`` (``http://host:port``; a path on it is kept as a prefix)
    that records every exchange through ``recorder`` (default: a new one over ``book``). Bound to
    ``host`` on a free port; ``url`` is where to point the adapter. Start/stop it, or use it as a
    context manager."""

    def __init__(self, upstream: str, book: RuleBook | None = None, *, recorder: Recorder | None = None,
                 host: str = "127.0.0.1", timeout: float = 60.0) -> None:
        parts = urlsplit(upstream.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream must be an http(s)://host:port URL, got {upstream!r}")
        if recorder is None:
            if book is None:
                raise ValueError("give the rule book to check the exchanges against (or a recorder over it)")
            recorder = Recorder(book)
        self.recorder = recorder
        self.upstream = upstream.rstrip("/")
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path
        self.timeout = timeout
        self._host = host
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started: call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self) -> RecordingProxy:
        if self._server is not None:
            return self
        handler = type("RecordingProxyHandler", (_Handler,), {"proxy": self})
        self._server = _Server((self._host, 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"recording-proxy->{self.upstream}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ forwarding
    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        return cls(self._netloc, timeout=self.timeout)

    def _forward(self, h: _Handler) -> None:
        raw = self._read_body(h)
        split = urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        exchange = Exchange(
            method=h.command, path=split.path, query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=headers, body=decode_json(raw, headers.get("content-type"), headers.get("content-encoding")))
        self.recorder.on_request(exchange)

        out_headers = [(k, v) for k, v in h.headers.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() not in ("host", "content-length")]
        out_headers.append(("Host", self._netloc))
        if raw or "content-length" in headers:
            out_headers.append(("Content-Length", str(len(raw))))
        conn = self._connection()
        try:
            conn.putrequest(h.command, self._prefix + h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in out_headers:
                conn.putheader(k, v)
            conn.endheaders(raw if raw else None)
            resp = conn.getresponse()
            body = resp.read()
            status, reason, answer_headers = resp.status, resp.reason, resp.getheaders()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self.recorder.on_answer(exchange, None, None)
            payload = json.dumps({"error": "bad_gateway",
                                  "message": f"recording proxy: upstream {self.upstream} did not answer "
                                             f"{h.command} {h.path}: {exc}"}).encode()
            self._send(h, 502, "Bad Gateway",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))], payload)
            return
        conn.close()
        lowered = {k.lower(): v for k, v in answer_headers}
        self.recorder.on_answer(exchange, status,
                                decode_json(body, lowered.get("content-type"), lowered.get("content-encoding")))
        if h.command == "HEAD":  # no body: the upstream's Content-Length stands
            kept = [(k, v) for k, v in answer_headers if k.lower() not in HOP_BY_HOP]
        else:
            kept = [(k, v) for k, v in answer_headers if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            kept.append(("Content-Length", str(len(body))))
        self._send(h, status, reason, kept, b"" if h.command == "HEAD" else body)

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        """The request body, whole (a chunked body is de-chunked: it is forwarded with its length)."""
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length else b""

    @staticmethod
    def _send(h: _Handler, status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> None:
        try:
            h.send_response_only(status, reason)
            for k, v in headers:
                h.send_header(k, v)
            h.end_headers()
            if body:
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
