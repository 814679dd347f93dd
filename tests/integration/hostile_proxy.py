"""A man-in-the-middle for the sandbox: forwards every request to a sandbox service and splices
hostile records, as raw JSON text, into the first page of chosen list answers.

The records reach erpsync exactly as a broken remote would send them: over HTTP, decoded by
``erpsync.connectors.http`` (a value nested 1,000 levels deep, a 10 MB field, a time in the year
9999), with everything else the sandbox's own answer.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
#: list calls that look a record up (not a page of changes): nothing is spliced into them
_LOOKUPS = ("cursor", "external_ref", "email", "ids", "name", "postcode", "id")


def nested(depth: int, leaf: str = '"x"') -> str:
    """JSON text of a list nested ``depth`` levels deep (built as text: no encoder recursion)."""
    return "[" * depth + leaf + "]" * depth


class HostileProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        #: path -> raw JSON texts of records added to the first page of that list
        self.inject: dict[str, list[str]] = {}
        #: path -> function(record) -> record or None: rewrites records of the sandbox's answer
        self.rewrite: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {}
        self.session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                resp = proxy.session.request(self.command, proxy.upstream + self.path, data=body, headers=headers,
                                             timeout=30, allow_redirects=False)
                content = proxy._splice(self.command, self.path, resp)
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _splice(self, method: str, path: str, resp: requests.Response) -> bytes:
        parsed = urllib.parse.urlsplit(path)
        extra, fix = self.inject.get(parsed.path), self.rewrite.get(parsed.path)
        if method != "GET" or resp.status_code != 200 or not (extra or fix):
            return resp.content
        query = urllib.parse.parse_qs(parsed.query)
        body = resp.json()
        key = "items" if "items" in body else "data"
        records = [r for r in (fix(dict(r)) if fix else r for r in body[key]) if r is not None]
        texts = [json.dumps(r) for r in records]
        first = not any(q in query for q in _LOOKUPS) and query.get("page", ["1"]) == ["1"]
        if extra and first:
            texts += extra
        head = json.dumps({**body, key: "__SPLICE__"})
        return head.replace('"__SPLICE__"', "[" + ",".join(texts) + "]").encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.session.close()
