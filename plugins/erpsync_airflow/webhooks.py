"""The webhook receiver (issue 21): a FastAPI app of the erpsync Airflow plugin, on the API server.

``POST /erpsync-webhooks/{source}`` (``storefront`` or ``erp``) takes the events that system sends
(``erpsync.inbox.EVENTS``). Each delivery is checked (size, HMAC-SHA256 signature with the
platform's secret compared in constant time, timestamp within the tolerance), stored in the state
store's ``inbox`` table (deduplicated by event id), and only then answered 200. A store failure
answers 503 and the sender delivers again. Nothing of the payload is trusted: the row names the
record, the flow run re-reads it from the API.

Why on the API server (``plugins/erpsync_webhooks.py``): it is already running and reachable
wherever Airflow's UI is, with the same TLS/proxy set-up, and no extra process to start, watch and
restart; the app only commits a row, so it does not load the API server. It is not behind
Airflow's login: senders authenticate by signature. Its own rate of refusals is counted
(``GET /erpsync-webhooks/stats``) and logged.

The secret per source: ``ERPSYNC_WEBHOOK_SECRET_STOREFRONT`` / ``_ERP``, else ``webhook_secret``
in the extra of the Connection ``storefront_default`` / ``erp_default``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from erpsync import inbox

log = logging.getLogger("erpsync_airflow.webhooks")

PREFIX = "/erpsync-webhooks"
CONNECTIONS = {"storefront": "storefront_default", "erp": "erp_default"}
#: seconds a secret read from a Connection is kept (a rotated secret is used within this time)
SECRET_TTL = 30.0

app = FastAPI(title="erpsync webhooks", docs_url=None, redoc_url=None, openapi_url=None)

#: deliveries refused, by (source, reason): forged signatures show up here
REFUSED: Counter[tuple[str, str]] = Counter()
ACCEPTED: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()
_secrets: dict[str, tuple[float, str | None]] = {}


def _connection_secret(source: str) -> str | None:
    conn_id = CONNECTIONS.get(source)
    if conn_id is None:
        return None
    try:
        from airflow.models.connection import Connection

        conn = Connection.get_connection_from_secrets(conn_id)
    except Exception:  # not defined: no secret from there
        return None
    try:
        extra = json.loads(conn.extra or "{}")
    except ValueError:
        return None
    value = extra.get("webhook_secret") if isinstance(extra, dict) else None
    return str(value) if value else None


def secret_for(source: str) -> str | None:
    env = inbox.env_secret(source)
    if env:
        return env
    now = time.monotonic()
    with _lock:
        hit = _secrets.get(source)
        if hit and now - hit[0] < SECRET_TTL:
            return hit[1]
    value = _connection_secret(source)
    with _lock:
        _secrets[source] = (now, value)
    return value


def _default_store() -> Any:
    from erpsync_airflow.hooks import StateStoreHook

    return StateStoreHook().get_conn()


#: the state store the receiver writes to (tests point it at their own)
store_factory: Callable[[], Any] = _default_store


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit`` (Content-Length or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise inbox.Refused(413, "too_large", f"body of {declared} bytes is over ERPSYNC_WEBHOOK_MAX_BYTES={limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise inbox.Refused(413, "too_large", f"body over ERPSYNC_WEBHOOK_MAX_BYTES={limit}")
        chunks.append(chunk)
    return b"".join(chunks)


@app.post("/{source}")
async def receive(source: str, request: Request) -> JSONResponse:
    source = source[:32]
    try:
        body = await _read_body(request, inbox.max_bytes())
        secret = await run_in_threadpool(secret_for, source)
        status, answer = await run_in_threadpool(
            inbox.receive, store_factory(), source, dict(request.headers), body, secret)
    except inbox.Refused as exc:
        REFUSED[(source, exc.reason)] += 1
        log.warning("webhook from %s refused (%s): %s", source, exc.reason, exc)
        return JSONResponse({"error": exc.reason, "message": str(exc)}, status_code=exc.status)
    except Exception as exc:  # the row is not committed: no 2xx, the sender delivers again
        REFUSED[(source, "store_failed")] += 1
        log.error("webhook from %s not stored: %s: %s", source, type(exc).__name__, exc)
        return JSONResponse({"error": "not_stored", "message": f"{type(exc).__name__}: event not stored, "
                             "deliver again"}, status_code=503)
    ACCEPTED[(source, "duplicate" if answer["duplicate"] else "stored")] += 1
    return JSONResponse(answer, status_code=status)


@app.get("/stats")
async def stats() -> dict[str, Any]:
    """Deliveries accepted and refused by reason since this API server started, and the inbox."""
    counts = await run_in_threadpool(inbox.counts, store_factory())
    return {
        "accepted": {f"{s}:{r}": n for (s, r), n in sorted(ACCEPTED.items())},
        "refused": {f"{s}:{r}": n for (s, r), n in sorted(REFUSED.items())},
        "inbox": counts,
    }
