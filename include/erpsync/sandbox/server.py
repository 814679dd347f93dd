"""A small HTTP framework for the simulated services, on the standard library's ThreadingHTTPServer.

Why stdlib: no extra dependency, starts in milliseconds, and it gives direct control of the socket,
which the ``commit_then_timeout`` fault needs (commit the write, hold the connection, then drop it
without a response). Each service declares routes; this module adds what every service shares:
JSON in and out, fault injection, ``Idempotency-Key`` replay, request statistics and the
``/_admin`` API.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from erpsync.sandbox.data import Dataset, SeedOptions
from erpsync.sandbox.faults import FaultConfigError, Faults

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class Encoded(bytes):
    """An answer body its handler encoded as JSON already (the bulk exports, with msgspec): sent as
    it is."""


class HttpError(Exception):
    """Raised by a handler to answer with an error body ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, error: str, message: str = "", **extra: Any) -> None:
        super().__init__(message or error)
        self.status = status
        self.body = {"error": error, "message": message or error, **extra}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)

    def int_arg(self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise HttpError(400, "invalid_parameter", f"{name} must be a whole number, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise HttpError(422, "invalid_parameter", f"{name} must be {bounds}, got {value}", parameter=name,
                            max=maximum)
        return value

    def json_object(self) -> dict[str, Any]:
        if not isinstance(self.body, dict):
            raise HttpError(400, "invalid_body", "the request body must be a JSON object")
        return self.body


Handler = Callable[[Request], "tuple[int, Any] | tuple[int, Any, dict[str, str]]"]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Handler
    auth: bool
    admin: bool


class Service:
    """Routes plus the shared machinery; subclasses register routes and implement :meth:`authorize`."""

    name = "service"

    def __init__(self, options: SeedOptions) -> None:
        self.lock = threading.RLock()
        self.faults = Faults()
        self.routes: list[Route] = []
        self.options = options
        self.verbose = False
        self._idempotency: dict[tuple[str, str, str], tuple[str, int, Any]] = {}
        self.stats: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.counters: Counter[str] = Counter()
        self.admin("GET", "/_admin/health", lambda r: (200, {"status": "ok", "service": self.name}))
        self.admin("GET", "/_admin/faults", lambda r: (200, self.faults.snapshot()))
        self.admin("POST", "/_admin/faults", self._set_faults)
        self.admin("DELETE", "/_admin/faults", self._clear_faults)
        self.admin("GET", "/_admin/stats", lambda r: (200, self.stats_body()))
        self.admin("POST", "/_admin/reset", self._reset)
        self.admin("GET", "/_admin/seed", lambda r: (200, self.options.to_dict()))
        from erpsync.sandbox.webhooks import WebhookSender  # signed webhooks (issue 21), off until configured

        self.webhooks = WebhookSender(self.name)
        self.webhooks.install(self)
        self.reseed(options)

    # ------------------------------------------------------------------ subclass hooks
    def reseed(self, options: SeedOptions) -> None:
        """Rebuild the seeded world and forget every change, key and counter."""
        self.options = options
        self.data = Dataset(options)
        self._idempotency.clear()
        self.stats.clear()
        self.counters.clear()

    def authorize(self, request: Request) -> None:
        """Raise HttpError(401) unless the request carries valid credentials."""

    def on_fault_actions(self, actions: list[str]) -> None:
        """One-shot fault actions (e.g. ``expire_sessions``)."""

    def extra_stats(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ routing
    def route(self, method: str, template: str, handler: Handler, *, auth: bool = True, admin: bool = False) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
        self.routes.append(Route(method, re.compile(regex), template, handler, auth, admin))

    def admin(self, method: str, template: str, handler: Handler) -> None:
        self.route(method, template, handler, auth=False, admin=True)

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        path_known = False
        for r in self.routes:
            m = r.pattern.match(path)
            if m:
                path_known = True
                if r.method == method:
                    return r, m.groupdict(), True
        return None, {}, path_known

    # ------------------------------------------------------------------ admin handlers
    def _set_faults(self, request: Request) -> tuple[int, Any]:
        try:
            actions = self.faults.update(request.json_object())
        except FaultConfigError as exc:
            raise HttpError(422, "invalid_faults", str(exc)) from None
        self.on_fault_actions(actions)
        return 200, {**self.faults.snapshot(), "actions": actions}

    def _clear_faults(self, request: Request) -> tuple[int, Any]:
        self.faults.clear()
        return 200, self.faults.snapshot()

    def _reset(self, request: Request) -> tuple[int, Any]:
        body = request.body if isinstance(request.body, dict) else {}
        allowed = set(SeedOptions().to_dict())
        if set(body) - allowed:
            raise HttpError(422, "invalid_reset", f"reset accepts {sorted(allowed)}")
        merged = {**self.options.to_dict(), **body}
        self.faults.clear()
        self.webhooks.clear()
        with self.lock:
            self.reseed(SeedOptions(**{k: int(v) for k, v in merged.items()}))
        return 200, {"reset": True, "seed": self.options.to_dict()}

    def stats_body(self) -> dict[str, Any]:
        with self.lock:
            return {
                "service": self.name,
                "requests": {k: dict(v) for k, v in sorted(self.stats.items())},
                "requests_total": sum(sum(v.values()) for v in self.stats.values()),
                "writes_committed": self.counters["writes_committed"],
                "idempotent_replays": self.counters["idempotent_replays"],
                "faults_injected": dict(self.faults.injected),
                **self.extra_stats(),
            }

    # ------------------------------------------------------------------ the request cycle
    def handle(self, h: _RequestHandler) -> None:
        start = time.monotonic()
        method = h.command
        split = urlsplit(h.path)
        path = split.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        route, params, path_known = self._match(method, path)
        template = route.template if route else "(unmatched)"
        status, body = 500, {"error": "internal"}
        extra_headers: dict[str, str] = {}
        try:
            try:
                body_obj = json.loads(raw) if raw else None
            except ValueError:
                raise HttpError(400, "invalid_json", "the request body is not valid JSON") from None
            if route is None:
                if path_known:
                    raise HttpError(405, "method_not_allowed", f"{method} is not allowed on {path}")
                raise HttpError(404, "not_found", f"no endpoint {method} {path}")
            request = Request(method, path, query, headers, body_obj, params)
            if route.admin:
                status, body, extra_headers = _unpack(route.handler(request))
            else:
                is_write = method in WRITE_METHODS and not route.template.endswith("/session")
                decision = self.faults.decide(method, path, is_write)
                if decision.delay:
                    time.sleep(decision.delay)
                if decision.reject_status:
                    extra = {"Retry-After": f"{decision.retry_after:g}"} if decision.retry_after else {}
                    raise HttpError(decision.reject_status, **decision.reject_body or {}, headers=extra)
                if decision.slot is not None:  # a server with `limit` workers, each busy `service` s per request
                    with decision.slot:
                        time.sleep(decision.service)
                        status, body, extra_headers = self._handle_app(route, request, is_write)
                else:
                    status, body, extra_headers = self._handle_app(route, request, is_write)
                if decision.commit_then_timeout is not None:
                    self._record(method, template, 0)
                    drop_answer(h, decision.commit_then_timeout)
                    return
        except HttpError as exc:
            status, body = exc.status, dict(exc.body)
            headers_of_error = body.pop("headers", None)
            extra_headers = dict(headers_of_error) if isinstance(headers_of_error, dict) else {}
        except Exception as exc:  # a sandbox bug must answer 500, not kill the thread
            status, body = 500, {"error": "internal", "message": f"{type(exc).__name__}: {exc}"}
            if self.verbose:
                import traceback

                traceback.print_exc()
        self._record(method, template, status)
        h.send_json(status, body, extra_headers)
        if self.verbose:
            print(f"{self.name} {method} {h.path} -> {status} ({(time.monotonic() - start) * 1000:.1f} ms)",
                  file=sys.stderr, flush=True)

    def _handle_app(self, route: Route, request: Request, is_write: bool) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            if route.auth:
                self.authorize(request)
            # fault ignore_idempotency_keys: a remote that drops the header (every resend writes again)
            honour = is_write and not self.faults.config.get("ignore_idempotency_keys")
            key = request.headers.get("idempotency-key") if honour else None
            if key:
                scope = (request.method, request.path, key)
                body_hash = hashlib.sha256(json.dumps(request.body, sort_keys=True).encode()).hexdigest()
                if scope in self._idempotency:
                    stored_hash, status, body = self._idempotency[scope]
                    if stored_hash != body_hash:
                        raise HttpError(422, "idempotency_key_reused",
                                        "this Idempotency-Key was used with a different request body")
                    self.counters["idempotent_replays"] += 1
                    return status, body, {"Idempotent-Replayed": "true"}
            status, body, headers = _unpack(route.handler(request))
            if is_write and status < 300:
                self.counters["writes_committed"] += 1
            if key and status < 500:
                self._idempotency[scope] = (body_hash, status, body)
            return status, body, headers

    def _record(self, method: str, template: str, status: int) -> None:
        with self.lock:
            self.stats[f"{method} {template}"][str(status) if status else "dropped"] += 1

    def malformed(self, key: str, record: dict[str, Any], breaker: Callable[[dict[str, Any], int], None]) -> dict[str, Any]:
        """The record, broken by ``breaker`` when the malformed fault picks its key."""
        if not self.faults.is_malformed(key):
            return record
        broken = json.loads(json.dumps(record))
        breaker(broken, int(hashlib.sha256(key.encode()).hexdigest()[:8], 16))
        self.faults.note_malformed()
        return broken


def drop_answer(h: BaseHTTPRequestHandler, hold: float) -> None:
    """The ``commit_then_timeout`` fault: the write is committed, the connection is held ``hold``
    seconds, then closed without an answer (the client cannot know whether it was written)."""
    time.sleep(hold)
    h.close_connection = True
    try:
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _unpack(result: Any) -> tuple[int, Any, dict[str, str]]:
    if len(result) == 3:
        return result
    status, body = result
    return status, body, {}


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    service: Service
    server_version = "erpsync-sandbox/1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes: without NODELAY, Nagle + delayed ACK add ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # the stdlib's naming
        self.service.handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
        payload = body if isinstance(body, Encoded) else json.dumps(body, separators=(",", ":")).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def make_server(service: Service, host: str, port: int) -> ThreadingHTTPServer:
    handler = type(f"{service.name.title()}Handler", (_RequestHandler,), {"service": service})
    return _Server((host, port), handler)


def serve(service: Service, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; the first stdout line names the bound URL (the launcher reads it)."""
    server = make_server(service, host, port)
    bound_host, bound_port = server.server_address[:2]
    if isinstance(bound_host, bytes):
        bound_host = bound_host.decode()
    print(f"erpsync-sandbox {service.name} listening on http://{bound_host}:{bound_port}", flush=True)

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
