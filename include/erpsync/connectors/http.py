"""One HTTP client for every REST connector: timeouts, retries, and errors that say what to do next.

The retry rules are pure functions (:func:`decide`, :func:`backoff_delay`, :func:`parse_retry_after`)
so they are unit-tested without a server. The rules:

* 2xx/3xx: done. Other 4xx (not 408/429): :class:`PermanentError` at once (401/403: :class:`AuthError`, which stops the run).
* 408, 429, 503 and "could not connect": the request was not processed, so any request may be
  retried, waiting ``Retry-After`` when the server sends one.
* other 5xx, read timeouts, dropped connections: the request may have been processed. Reads and
  writes that carry an ``Idempotency-Key`` are retried (the server replays the stored answer);
  a write without a key raises :class:`UnknownOutcomeError` so the caller looks the record up first.
* attempts are capped; the delay grows exponentially with jitter up to ``max_delay``. A
  ``Retry-After`` longer than ``max_retry_after`` is not slept through: the error carries it so
  the scheduler retries the task later.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions

from erpsync.errors import AuthError, PermanentError, TransientError, UnknownOutcomeError
from erpsync.limits import max_response_bytes

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_PROCESSED_STATUSES = frozenset({408, 429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5  # share of each delay that is randomised (0 = none, 1 = full jitter)
    max_retry_after: float = 60.0

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(max_attempts=1)


class Failure(enum.Enum):
    """Why no HTTP status came back."""

    NOT_SENT = "not_sent"  # could not connect: the server never saw the request
    NO_RESPONSE = "no_response"  # sent, then timeout or dropped connection: outcome unknown


class Action(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    PERMANENT = "permanent"
    TRANSIENT = "transient"  # give up for now; retrying later may help
    UNKNOWN = "unknown"  # a write may have been committed


def is_transient_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def decide(
    *, method: str, attempt: int, policy: RetryPolicy, status: int | None = None, failure: Failure | None = None,
    has_idempotency_key: bool = False, retry_after: float | None = None,
) -> Action:
    """What to do after ``attempt`` attempts (1-based) ended with ``status`` or ``failure``."""
    safe = method.upper() in SAFE_METHODS or has_idempotency_key
    more = attempt < policy.max_attempts
    if status is not None and failure is None:
        if status < 400:
            return Action.OK
        if not is_transient_status(status):
            return Action.PERMANENT
        if retry_after is not None and retry_after > policy.max_retry_after:
            return Action.TRANSIENT
        if status in NOT_PROCESSED_STATUSES:
            return Action.RETRY if more else Action.TRANSIENT
        if not safe:
            return Action.UNKNOWN
        return Action.RETRY if more else Action.TRANSIENT
    if failure is Failure.NOT_SENT:
        return Action.RETRY if more else Action.TRANSIENT
    if not safe:
        return Action.UNKNOWN
    if more:
        return Action.RETRY
    return Action.TRANSIENT if method.upper() in SAFE_METHODS else Action.UNKNOWN


def backoff_delay(
    attempt: int, policy: RetryPolicy, *, retry_after: float | None = None, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    Exponential (``base * multiplier**(attempt-1)``, capped at ``max_delay``) with the top
    ``jitter`` share randomised so clients that failed together do not retry together. A server's
    ``Retry-After`` wins when longer, plus up to 10% jitter.
    """
    exp = min(policy.max_delay, policy.base_delay * policy.multiplier ** max(0, attempt - 1))
    delay = exp * (1 - policy.jitter * rand())
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after) * (1 + 0.1 * rand()))
    return delay


def classify_exception(exc: requests.RequestException) -> tuple[Failure, str]:
    """(failure kind, short reason) of a ``requests`` exception."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure.NOT_SENT, "connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Failure.NO_RESPONSE, "read timeout"
    if isinstance(exc, requests.exceptions.SSLError):  # the handshake failed: nothing was sent
        return Failure.NOT_SENT, (
            "TLS certificate not trusted (certificates are verified; give the system's CA with "
            "REQUESTS_CA_BUNDLE, never turn verification off)")
    if isinstance(exc, requests.exceptions.ConnectionError):
        for arg in exc.args:
            reason = getattr(arg, "reason", arg)
            if isinstance(reason, urllib3.exceptions.NameResolutionError):
                return Failure.NOT_SENT, "host not found"
            if isinstance(reason, urllib3.exceptions.NewConnectionError):
                text = str(reason).lower()
                return Failure.NOT_SENT, "connection refused" if "refused" in text else "cannot connect"
        return Failure.NO_RESPONSE, "connection dropped"
    return Failure.NO_RESPONSE, type(exc).__name__


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Any
    headers: Mapping[str, str]


class HttpClient:
    """A ``requests.Session`` per remote system with the retry rules above.

    ``system`` ("erp", "storefront") names the remote in errors and logs.
    """

    def __init__(
        self, base_url: str, *, system: str, timeout: tuple[float, float] = (3.05, 10.0),
        retry: RetryPolicy | None = None, headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.system = system
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "erpsync/0.1"})
        self.session.headers.update(dict(headers or {}))
        self._sleep = sleep
        self._rand = rand
        #: circuit breaker hooks (``before()`` may raise CircuitOpenError, ``success()``,
        #: ``failure(reason)``), set by ``erpsync.reliability.protect``; None = no breaker
        self.guard: Any = None
        #: rate budget (``acquire()`` blocks until a request may go; see ``erpsync.reliability.budget``)
        self.throttle: Any = None
        #: the remote is known to replay a keyed write (a repeat gets the stored answer, header
        #: ``Idempotent-Replayed``): only then is a keyed write whose answer was lost resent here.
        #: Never assumed (default False): the write raises UnknownOutcomeError and the caller looks
        #: the record up by its external reference before writing again (``flows.base.idempotent_write``).
        self.key_replay = False

    def close(self) -> None:
        self.session.close()

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
        headers: Mapping[str, str] | None = None, idempotency_key: str | None = None,
        allow_statuses: tuple[int, ...] = (), retry: RetryPolicy | None = None,
        decode: Callable[[bytes], Any] | None = None,
    ) -> HttpResponse:
        """Send with retries; returns 2xx/3xx answers and those in ``allow_statuses`` (e.g. 404).

        ``decode`` turns the body's bytes into the answer instead of ``json.loads`` (the bulk exports
        decode with msgspec); a ValueError from it (msgspec's errors are ValueErrors) falls back on
        the body's text, as for any body that is not JSON."""
        policy = retry or self.retry
        method = method.upper()
        url = f"{self.base_url}{path}"
        hdrs = dict(headers or {})
        if idempotency_key:
            hdrs["Idempotency-Key"] = idempotency_key
        what = f"{self.system} {method} {path}"
        if self.guard is not None:
            self.guard.before()  # an open circuit raises here: nothing is sent
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            failure: Failure | None = None
            reason = ""
            body: Any = None
            retry_after: float | None = None
            resp_headers: Mapping[str, str] = {}
            if self.throttle is not None:
                self.throttle.acquire()
            try:
                resp = self.session.request(method, url, params=params, json=json, headers=hdrs, timeout=self.timeout)
            except requests.RequestException as exc:
                failure, reason = classify_exception(exc)
            else:
                status, resp_headers = resp.status_code, resp.headers
                limit = max_response_bytes()
                if len(resp.content) > limit:
                    self._report(status, None, "")
                    raise PermanentError(
                        f"{what}: the answer is {len(resp.content):,} bytes, over the limit of {limit:,} "
                        "(ERPSYNC_MAX_RESPONSE_BYTES); ask for smaller pages or raise the limit",
                        system=self.system, status=status)
                body = _body(resp, decode)
                if status in allow_statuses:
                    self._report(status, None, "")
                    return HttpResponse(status, body, resp_headers)
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                reason = f"HTTP {status}{_error_text(body)}"
            action = decide(method=method, attempt=attempt, policy=policy, status=status, failure=failure,
                            has_idempotency_key=bool(idempotency_key) and self.key_replay, retry_after=retry_after)
            if action is Action.OK:
                self._report(status, None, "")
                return HttpResponse(status or 0, body, resp_headers)
            if action is Action.RETRY:
                delay = backoff_delay(attempt, policy, retry_after=retry_after, rand=self._rand)
                log.warning("%s: %s; retry %d/%d in %.2fs", what, reason, attempt, policy.max_attempts - 1, delay)
                self._sleep(delay)
                continue
            kwargs = {"system": self.system, "status": status, "body": body, "retry_after": retry_after}
            self._report(status, failure, f"{what}: {reason}")
            if action is Action.PERMANENT:
                cls = AuthError if status in (401, 403) else PermanentError
                raise cls(f"{what} failed: {reason}", **kwargs)
            if action is Action.UNKNOWN:
                raise UnknownOutcomeError(
                    f"{what}: {reason} after the request was sent; it may have been committed: look the record "
                    "up before writing again", **kwargs)
            raise TransientError(f"{what} failed after {attempt} attempt(s): {reason}", **kwargs)

    def _report(self, status: int | None, failure: Failure | None, reason: str) -> None:
        """Tell the breaker how the call ended: an answer (even a 4xx) means the system is up; a
        429 means it is up but busy (the rate budget's business, not the breaker's)."""
        if self.guard is None or status == 429:
            return
        if failure is None and status is not None and (status < 500 and status != 408):
            self.guard.success()
        else:
            self.guard.failure(reason)


def _body(resp: requests.Response, decode: Callable[[bytes], Any] | None = None) -> Any:
    if not resp.content:
        return None
    try:
        return decode(resp.content) if decode is not None else decode_json(resp.content)
    except ValueError:
        return resp.text[:2000]


#: nesting kept when an answer is too deep for the JSON decoder: deeper values are replaced by a
#: marker object one level below it, so the record stays over ``erpsync.limits``' depth limit and
#: becomes a dead letter (``record_too_deep``) while the rest of the page is read
DECODE_DEPTH = 200
TOO_DEEP = {"erpsync_truncated": "nested too deep to decode"}
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def decode_json(content: bytes) -> Any:
    """``json.loads`` that does not crash on a value nested ~1000 levels deep (the decoder
    recurses per level): such an answer is decoded with every value below ``DECODE_DEPTH`` levels
    replaced by :data:`TOO_DEEP`. Raises ValueError when the body is not JSON."""
    try:
        return json.loads(content)
    except RecursionError:
        pass
    text = content.decode("utf-8", errors="replace")
    return json.loads(_cut_deep(text, DECODE_DEPTH))


def _cut_deep(text: str, limit: int) -> str:
    """``text`` with each array or object opened below ``limit`` levels replaced by TOO_DEEP (a
    scan of strings and brackets only: C speed over megabytes of strings)."""
    marker = json.dumps(TOO_DEEP)
    out: list[str] = []
    depth = 0
    last = 0  # text[last:] not yet copied
    skip_from: int | None = None  # start of the span being cut, at depth ``limit``
    for m in _TOKENS.finditer(text):
        tok = m.group()
        if tok[0] == '"':
            continue
        if tok in "[{":
            depth += 1
            if depth == limit + 1 and skip_from is None:
                skip_from = m.start()
        else:
            if depth == limit + 1 and skip_from is not None:
                out.append(text[last:skip_from])
                out.append(marker)
                last, skip_from = m.end(), None
            depth -= 1
    out.append(text[last:] if skip_from is None else text[last:skip_from] + marker)
    return "".join(out)


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        code, message = body.get("error"), body.get("message")
        if code or message:
            return f" {code}: {message}" if message and message != code else f" {code}"
    elif isinstance(body, str) and body:
        return f" {body[:200]}"
    return ""
