"""The toolkit a vendor simulator is built from: a :class:`DialectService` that checks every request
against the dialect's :class:`~.rules.RuleBook`, and the pieces dialects share (auth handshakes,
paging styles, rate-limit buckets, error shapes).

A simulator is the sandbox :class:`~erpsync.sandbox.server.Service` (routes, JSON, faults,
``Idempotency-Key`` replay, ``/_admin``) plus a rule book. On every request it:

1. builds an :class:`~.rules.Exchange` and lets the dialect :meth:`~DialectService.annotate` it
   (parse a GraphQL document once, for the rules and the handler);
2. runs the rules through its :class:`~.rules.Recorder`; the first broken rule that has a
   ``refuse`` answer is answered with it (the vendor's error shape) and the request goes no further;
3. charges the admitted request to the rate-limit buckets (:class:`Limit`), so a throttled request
   costs nothing;
4. runs the sandbox's faults (latency, errors, 429, outages, commit-then-timeout: the write commits
   and the answer is dropped), then the route;
5. records the answer (``Recorder.on_answer``).

``GET /_admin/contract`` reports the violations, the rules exercised and every rule with its cite,
so a test in another process asserts on them; ``DELETE /_admin/contract`` starts a new record.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from erpsync.sandbox.contract.rules import Exchange, Recorder, Rule, RuleBook, Violation
from erpsync.sandbox.data import SeedOptions
from erpsync.sandbox.faults import Decision
from erpsync.sandbox.server import WRITE_METHODS, HttpError, Request, Service, drop_answer

Answer = tuple[int, Any]


@dataclass
class DialectRequest(Request):
    """A request as a dialect's handler sees it: with the exchange its rules checked."""

    exchange: Exchange | None = None


# ---------------------------------------------------------------------------------------- limits
class Bucket:
    """A leaky bucket of ``capacity`` points refilled at ``restore_rate`` points a second.

    Shopify's calculated query cost is one (cost = the query's points); a request-count limit is
    another (cost = 1 per request). Thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, capacity: float, restore_rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if capacity <= 0 or restore_rate <= 0:
            raise ValueError(f"a bucket needs capacity > 0 and restore_rate > 0, got {capacity}, {restore_rate}")
        self.capacity, self.restore_rate, self.clock = float(capacity), float(restore_rate), clock
        self._lock = threading.Lock()
        self._level = float(capacity)
        self._at = clock()

    def available(self) -> float:
        with self._lock:
            return self._refill()

    def _refill(self) -> float:
        now = self.clock()
        self._level = min(self.capacity, self._level + (now - self._at) * self.restore_rate)
        self._at = now
        return self._level

    def take(self, cost: float) -> float:
        with self._lock:
            self._refill()
            self._level -= cost
            return self._level

    def refund(self, points: float) -> None:
        with self._lock:
            self._refill()
            self._level = min(self.capacity, self._level + points)

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` points are available (0 when they are now)."""
        return max(0.0, (cost - self.available()) / self.restore_rate)

    def reset(self) -> None:
        with self._lock:
            self._level, self._at = self.capacity, self.clock()


@dataclass
class Limit:
    """A bucket, what one exchange costs, and the rule that says so (id, says, cite, refuse).

    The rule's check only *reads* the bucket; :class:`DialectService` charges an admitted request
    (``meta["cost:<rule id>"]``) under one lock, so a refused or throttled request costs nothing."""

    bucket: Bucket
    cost: Callable[[Exchange], float]
    rule: Rule
    #: headers of the throttled answer (e.g. ``Retry-After``), where the vendor sends them
    headers: Callable[[Exchange], dict[str, str]] | None = None


def limit(bucket: Bucket, *, id: str, says: str, cite: str, cost: Callable[[Exchange], float],
          refuse: Callable[[Exchange, str], Answer], applies: Callable[[Exchange], bool] = lambda e: True,
          retry_after: bool = False) -> Limit:
    """A :class:`Limit` whose rule is broken when the exchange costs more than the bucket holds.
    ``retry_after``: answer the throttle with ``Retry-After`` (whole seconds until it fits)."""

    def check(exchange: Exchange) -> str | None:
        need, have = cost(exchange), bucket.available()
        if need > have:
            return f"costs {need:g} points, the bucket holds {have:.1f} of {bucket.capacity:g} (restores {bucket.restore_rate:g}/s)"
        return None

    def headers(exchange: Exchange) -> dict[str, str]:
        return {"Retry-After": f"{max(1, round(bucket.wait_for(cost(exchange)) + 0.5))}"}

    rule = Rule(id, says, cite, check, applies=applies, refuse=refuse)
    return Limit(bucket, cost, rule, headers if retry_after else None)


# ------------------------------------------------------------------------------------------ auth
class StaticToken:
    """A fixed access token in a header (Shopify's ``X-Shopify-Access-Token``, a Bearer API key)."""

    def __init__(self, header: str, tokens: Sequence[str], *, scheme: str | None = None) -> None:
        self.header, self.tokens, self.scheme = header.lower(), set(tokens), scheme

    def presented(self, exchange: Exchange) -> str | None:
        raw = exchange.header(self.header)
        if raw and self.scheme:
            prefix = f"{self.scheme} "
            return raw[len(prefix):] if raw.startswith(prefix) else None
        return raw

    def check(self, exchange: Exchange) -> str | None:
        """What is wrong with the exchange's credentials, or None (a rule's check)."""
        token = self.presented(exchange)
        if token is None:
            return f"no {self.header} header" + (f" with the {self.scheme} scheme" if self.scheme else "")
        return None if self.valid(token) else f"{self.header} carries a token this server did not issue or that expired"

    def rule(self, *, id: str, says: str, cite: str, refuse: Callable[[Exchange, str], Answer],
             applies: Callable[[Exchange], bool] = lambda e: True) -> Rule:
        return Rule(id, says, cite, self.check, applies=applies, refuse=refuse)

    def valid(self, token: str) -> bool:
        return token in self.tokens

    def expire_all(self) -> None:
        """Static tokens do not expire; the ``expire_sessions`` fault leaves them alone."""


class IssuedTokens(StaticToken):
    """Tokens the server issues with a lifetime (OAuth2 access tokens, login sessions)."""

    def __init__(self, header: str, *, ttl: float, scheme: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(header, (), scheme=scheme)
        self.ttl, self.clock = ttl, clock
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = self.clock() + self.ttl
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expires = self._issued.get(token)
        return expires is not None and self.clock() < expires

    def expire_all(self) -> None:
        with self._lock:
            self._issued.clear()


class OAuth2ClientCredentials(IssuedTokens):
    """RFC 6749 section 4.4: ``POST <token_path>`` (form or JSON) with ``grant_type=client_credentials``,
    ``client_id``, ``client_secret`` -> ``{"access_token", "token_type": "Bearer", "expires_in"}``;
    requests then carry ``Authorization: Bearer <token>`` until it expires."""

    def __init__(self, service: Service, token_path: str, clients: dict[str, str], *, ttl: float = 3600,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__("authorization", ttl=ttl, scheme="Bearer", clock=clock)
        self.clients = dict(clients)
        service.route("POST", token_path, self._token, auth=False)

    def _token(self, request: Request) -> Answer:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type",
                         "error_description": f"grant_type must be client_credentials, got {body.get('grant_type')!r}"}
        if self.clients.get(str(body.get("client_id"))) != body.get("client_secret"):
            return 401, {"error": "invalid_client", "error_description": "unknown client_id or wrong client_secret"}
        return 200, {"access_token": self.issue(), "token_type": "Bearer", "expires_in": int(self.ttl)}


class SessionLogin(IssuedTokens):
    """A login that opens a session: ``POST <login_path>`` with ``{"username", "password"}`` ->
    ``{"session": id}``; requests carry the id in ``header`` until the session expires."""

    def __init__(self, service: Service, login_path: str, users: dict[str, str], *, header: str = "x-session",
                 ttl: float = 1800, clock: Callable[[], float] = time.time) -> None:
        super().__init__(header, ttl=ttl, clock=clock)
        self.users = dict(users)
        service.route("POST", login_path, self._login, auth=False)

    def _login(self, request: Request) -> Answer:
        body = request.body if isinstance(request.body, dict) else {}
        if self.users.get(str(body.get("username"))) != body.get("password"):
            return 401, {"error": "invalid_credentials", "message": "wrong username or password"}
        return 200, {"session": self.issue(), "expires_in": int(self.ttl)}


# ---------------------------------------------------------------------------------------- paging
def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The key a cursor carries; ValueError when it is not one this server issued."""
    try:
        return json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the cursor {cursor!r} is not one this server returned") from exc


def graphql_connection(items: Sequence[Any], *, key: Callable[[Any], Any], first: int | None = None,
                       after: str | None = None, last: int | None = None, before: str | None = None,
                       node: Callable[[Any], Any] = lambda item: item) -> dict[str, Any]:
    """A Relay cursor connection over ``items`` sorted by ``key`` (a JSON-able, comparable value
    unique per item, e.g. ``[updated_at, id]``): ``edges{cursor node}``, ``nodes``, ``pageInfo``.

    A cursor carries the key of its item, not an offset, so records inserted while a client pages
    (they sort after the cursor, e.g. by ``updated_at``) are read once and none is skipped. The
    size limit is a rule of the dialect, checked before this runs."""
    ordered = sorted(items, key=lambda i: key(i))
    if after:
        k = decode_cursor(after)
        ordered = [i for i in ordered if key(i) > k]
    if before:
        k = decode_cursor(before)
        ordered = [i for i in ordered if key(i) < k]
    has_next = has_prev = False
    if first is not None:
        has_next, ordered = len(ordered) > first, ordered[:first]
        has_prev = bool(after)
    elif last is not None:
        has_prev, ordered = len(ordered) > last, ordered[-last:] if last else []
        has_next = bool(before)
    edges = [{"__typename": "Edge", "cursor": encode_cursor(key(i)), "node": node(i)} for i in ordered]
    return {"__typename": "Connection", "edges": edges, "nodes": [e["node"] for e in edges],
            "pageInfo": {"__typename": "PageInfo", "hasNextPage": has_next, "hasPreviousPage": has_prev,
                         "startCursor": edges[0]["cursor"] if edges else None,
                         "endCursor": edges[-1]["cursor"] if edges else None}}


def odata_page(items: Sequence[Any], *, key: Callable[[Any], Any], top: int, skiptoken: str | None,
               next_link: str, render: Callable[[Any], Any] = lambda i: i) -> dict[str, Any]:
    """OData v4 server-driven paging: ``{"value": [...], "@odata.nextLink": url}`` where the link
    carries ``$skiptoken`` (the last key read); no link on the last page."""
    ordered = sorted(items, key=lambda i: key(i))
    if skiptoken:
        k = decode_cursor(skiptoken)
        ordered = [i for i in ordered if key(i) > k]
    page, more = ordered[:top], len(ordered) > top
    body: dict[str, Any] = {"value": [render(i) for i in page]}
    if more and page:
        sep = "&" if "?" in next_link else "?"
        body["@odata.nextLink"] = f"{next_link}{sep}$top={top}&$skiptoken={encode_cursor(key(page[-1]))}"
    return body


def offset_page(items: Sequence[Any], *, offset: int, limit: int, render: Callable[[Any], Any] = lambda i: i,
                items_key: str = "items", more_key: str = "hasMore") -> dict[str, Any]:
    """Offset/limit paging with a has-more flag (NetSuite-, Acumatica-style). Offsets shift when
    records are inserted before them: that is the vendor's semantics, simulated as it is."""
    page = list(items[offset: offset + limit])
    return {items_key: [render(i) for i in page], more_key: offset + len(page) < len(items),
            "offset": offset, "limit": limit}


# ---------------------------------------------------------------------------------- error shapes
def graphql_error(message: str, *, code: str | None = None, line: int | None = None, column: int | None = None,
                  path: list[Any] | None = None, **extensions: Any) -> dict[str, Any]:
    """One entry of a GraphQL ``errors`` array (the GraphQL spec's shape, section 7.1.2)."""
    err: dict[str, Any] = {"message": message}
    if line is not None:
        err["locations"] = [{"line": line, "column": column or 1}]
    if path is not None:
        err["path"] = path
    ext = {**({"code": code} if code else {}), **extensions}
    if ext:
        err["extensions"] = ext
    return err


def graphql_errors(*errors: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"errors": list(errors), **top}


def odata_error(code: str, message: str) -> dict[str, Any]:
    """OData JSON format's error body: ``{"error": {"code", "message"}}``."""
    return {"error": {"code": code, "message": message}}


# ----------------------------------------------------------------------------------- the service
class DialectService(Service):
    """A sandbox service that speaks a vendor's dialect: every request meets the rule book first."""

    name = "dialect"
    #: whether the vendor replays a write resent with the same ``Idempotency-Key`` header (the
    #: sandbox does); a vendor that has no such header must not be simulated as if it had
    honours_idempotency_key_header = True

    def __init__(self, options: SeedOptions, book: RuleBook, *, limits: Sequence[Limit] = (),
                 auths: Sequence[StaticToken] = ()) -> None:
        self.book = book
        self.recorder = Recorder(book)
        self.limits = list(limits)
        self.auths = list(auths)
        self._gate = threading.Lock()
        ids = {r.id for r in book}
        missing = [lim.rule.id for lim in self.limits if lim.rule.id not in ids]
        if missing:
            raise ValueError(f"{book.dialect}: limits {missing} are not in the rule book; add limit.rule to it")
        super().__init__(options)
        self.admin("GET", "/_admin/contract", lambda r: (200, self.contract_body()))
        self.admin("DELETE", "/_admin/contract", self._clear_contract)

    # ------------------------------------------------------------------ dialect hooks
    def annotate(self, exchange: Exchange) -> None:
        """Read what the rules and the handler need off the request once (into ``exchange.meta``)."""

    def error_answer(self, status: int, code: str, message: str) -> Answer:
        """The vendor's shape for the sandbox's own errors (bad JSON, no such path, a handler's
        HttpError); default: the sandbox shape."""
        return status, {"error": code, "message": message}

    def fault_answer(self, decision: Decision) -> Answer:
        """The vendor's shape for an injected error/429/outage; default: the sandbox shape."""
        return int(decision.reject_status or 500), dict(decision.reject_body or {})

    def settle(self, exchange: Exchange, status: int, body: Any) -> Any:
        """Adjust an answer once the request ran (e.g. refund unused query cost, add cost info)."""
        return body

    def is_write(self, exchange: Exchange) -> bool:
        """Whether the request changes data (the faults' commit-then-timeout and Idempotency-Key
        replay apply to writes only); GraphQL dialects answer "a mutation", not "a POST"."""
        return exchange.method in WRITE_METHODS

    def on_fault_actions(self, actions: list[str]) -> None:
        if "expire_sessions" in actions:
            for auth in self.auths:
                auth.expire_all()

    def reseed(self, options: SeedOptions) -> None:
        super().reseed(options)
        for lim in getattr(self, "limits", ()):
            lim.bucket.reset()

    # ------------------------------------------------------------------ admin
    def contract_body(self) -> dict[str, Any]:
        return {
            "dialect": self.book.dialect,
            "exchanges": len(self.recorder.exchanges),
            "violations": [{"rule": v.rule.id, "detail": v.detail, "method": v.exchange.method,
                            "path": v.exchange.path, "cite": v.rule.cite} for v in self.recorder.violations()],
            "exercised": self.recorder.exercised(),
            "rules": [{"id": r.id, "says": r.says, "cite": r.cite, "enforced": r.refuse is not None, "when": r.when}
                      for r in self.book],
        }

    def _clear_contract(self, request: Request) -> Answer:
        self.recorder.clear()
        return 200, {"cleared": True}

    # ------------------------------------------------------------------ the request cycle
    def handle(self, h: BaseHTTPRequestHandler) -> None:  # type: ignore[override]
        split = urlsplit(h.path)
        path = split.path.rstrip("/") or "/"
        if path.startswith("/_admin"):
            super().handle(h)  # type: ignore[arg-type]
            return
        start = time.monotonic()
        method = h.command
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in h.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        exchange = Exchange(method, path, query, headers, None)
        route, params, path_known = self._match(method, path)
        template = route.template if route else "(unmatched)"
        try:
            exchange.body = _decode(raw, headers.get("content-type", ""))
        except ValueError as exc:  # the rules still see it (a dialect's body rule names the break)
            exchange.meta["body_error"] = str(exc)
        try:
            status, body, extra, dropped = self._run(h, exchange, route, params, path_known)
        except Exception as exc:  # a simulator bug must answer 500, not kill the thread
            status, body = self.error_answer(500, "internal", f"{type(exc).__name__}: {exc}")
            extra, dropped = {}, False
            if self.verbose:
                import traceback

                traceback.print_exc()
        if dropped:
            self.recorder.on_answer(exchange, None, None)
            self._record(method, template, 0)
            return
        self.recorder.on_answer(exchange, status, body)
        self._record(method, template, status)
        h.send_json(status, body, extra)  # type: ignore[attr-defined]
        if self.verbose:
            print(f"{self.name} {method} {h.path} -> {status} ({(time.monotonic() - start) * 1000:.1f} ms)",
                  file=sys.stderr, flush=True)

    def _run(self, h: BaseHTTPRequestHandler, exchange: Exchange, route: Any, params: dict[str, str],
             path_known: bool) -> tuple[int, Any, dict[str, str], bool]:
        self.annotate(exchange)
        with self._gate:  # check and charge at once: two requests cannot both spend the last points
            broken = self.recorder.on_request(exchange)
            refusal = next((v for v in broken if v.rule.refuse is not None), None)
            if refusal is None:
                for lim in self.limits:
                    if lim.rule.applies(exchange):
                        cost = lim.cost(exchange)
                        lim.bucket.take(cost)
                        exchange.meta[f"cost:{lim.rule.id}"] = cost
        if refusal is not None:
            return (*self._refuse(refusal), False)
        if "body_error" in exchange.meta:
            return (*self.error_answer(400, "invalid_json", exchange.meta["body_error"]), {}, False)
        if route is None:
            if path_known:
                return (*self.error_answer(405, "method_not_allowed", f"{exchange.method} is not allowed on {exchange.path}"), {}, False)
            return (*self.error_answer(404, "not_found", f"no endpoint {exchange.method} {exchange.path}"), {}, False)
        headers = exchange.headers if self.honours_idempotency_key_header else {
            k: v for k, v in exchange.headers.items() if k != "idempotency-key"}
        request = DialectRequest(exchange.method, exchange.path, exchange.query, headers, exchange.body,
                                 params, exchange=exchange)
        is_write = self.is_write(exchange)
        decision = self.faults.decide(exchange.method, exchange.path, is_write)
        if decision.delay:
            time.sleep(decision.delay)
        if decision.reject_status:
            status, body = self.fault_answer(decision)
            extra = {"Retry-After": f"{decision.retry_after:g}"} if decision.retry_after else {}
            return status, body, extra, False
        try:
            if decision.slot is not None:
                with decision.slot:
                    time.sleep(decision.service)
                    status, body, extra = self._handle_app(route, request, is_write)
            else:
                status, body, extra = self._handle_app(route, request, is_write)
        except HttpError as exc:
            status, body = self.error_answer(exc.status, str(exc.body.get("error")), str(exc.body.get("message")))
            extra = {}
        body = self.settle(exchange, status, body)
        if decision.commit_then_timeout is not None:  # the write committed; the answer never leaves
            drop_answer(h, decision.commit_then_timeout)
            return status, body, extra, True
        return status, body, extra, False

    def _refuse(self, violation: Violation) -> tuple[int, Any, dict[str, str]]:
        assert violation.rule.refuse is not None
        status, body = violation.rule.refuse(violation.exchange, violation.detail)
        extra: dict[str, str] = {}
        for lim in self.limits:
            if lim.rule.id == violation.rule.id and lim.headers:
                extra = lim.headers(violation.exchange)
        return status, body, extra


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("the request body is not valid JSON") from None
