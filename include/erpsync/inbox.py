"""Webhooks into a durable inbox (issue 21): signatures, the event catalogue, the inbox table.

A webhook is a hint, never the truth: an event only *names* a record (``data.id``); the flow run
re-reads that record from the system's API. What is stored is one ``inbox`` row per delivery that
passed its signature check, unique per (source, event id), so a redelivered event is stored once.

Life of a row: ``pending`` (the receiver committed it, then answered 2xx) -> ``claimed`` (the
triggerer's ``InboxTrigger`` fired one Asset event for every pending row of an entity) -> ``done``
(a flow run read the named records and synced them; what failed is in the dead letters).

Signature (every platform here; the sandbox sends it): ``X-Erpsync-Timestamp: <unix seconds>`` and
``X-Erpsync-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``, one secret per
platform. Timestamps further than the tolerance from now are refused, so a captured delivery cannot
be replayed later; within the tolerance the event id dedupes it.

Settings (read when called; docs/configuration.md#webhooks-and-the-inbox):
``ERPSYNC_WEBHOOK_SECRET_STOREFRONT`` / ``_ERP``, ``ERPSYNC_WEBHOOK_TOLERANCE_SECONDS`` (300),
``ERPSYNC_WEBHOOK_MAX_BYTES`` (65536), ``ERPSYNC_INBOX_RECLAIM_SECONDS`` (300).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from erpsync.errors import ConfigError
from erpsync.state import schema

UTC = dt.UTC
SIGNATURE_HEADER = "X-Erpsync-Signature"
TIMESTAMP_HEADER = "X-Erpsync-Timestamp"

#: the events each system sends -> the entity whose flow reads the named record
EVENTS: dict[str, dict[str, str]] = {
    "storefront": {
        "order.created": "order",
        "order.paid": "order",
        "order.updated": "order",
        "order.cancelled": "order",
        "refund.created": "return",
        "return.requested": "return",
        "return.updated": "return",
        "customer.redact_requested": "customer_redact",
    },
    "erp": {
        "shipment.created": "shipment",
        "stock.changed": "stock",
        "price.changed": "price",
    },
}
#: the flow (DAG) that consumes each entity's inbox rows
ENTITY_FLOWS = {
    "order": "orders_sync",
    "return": "returns_sync",
    "customer_redact": "customer_erasure",
    "shipment": "shipments_sync",
    "stock": "inventory_fast_lane",
    "price": "pricing_sync",
}


def _int_env(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} must be between {low} and {high}")
    return value


def tolerance_seconds() -> int:
    """``ERPSYNC_WEBHOOK_TOLERANCE_SECONDS`` (default 300, as Stripe): the replay window."""
    return _int_env("ERPSYNC_WEBHOOK_TOLERANCE_SECONDS", 300, 1, 86_400)


def max_bytes() -> int:
    """``ERPSYNC_WEBHOOK_MAX_BYTES`` (default 65536): an event names one record; more is refused (413)."""
    return _int_env("ERPSYNC_WEBHOOK_MAX_BYTES", 65_536, 256, 10_485_760)


def reclaim_seconds() -> int:
    """``ERPSYNC_INBOX_RECLAIM_SECONDS`` (default 300): a claim no run consumed (triggerer or run lost)
    is fired again after this long."""
    return _int_env("ERPSYNC_INBOX_RECLAIM_SECONDS", 300, 5, 86_400)


def env_secret(source: str) -> str | None:
    """``ERPSYNC_WEBHOOK_SECRET_<SOURCE>``, or None."""
    return os.environ.get(f"ERPSYNC_WEBHOOK_SECRET_{source.upper()}", "").strip() or None


# --------------------------------------------------------------------------- signatures


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Erpsync-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body),
            "Content-Type": "application/json"}


class Refused(Exception):
    """A delivery refused: ``status`` is the HTTP answer, the message says why (one line)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None,
           tolerance: int | None = None) -> None:
    """Raise :class:`Refused` (401) unless the signature is right and the timestamp recent."""
    lower = {k.lower(): v for k, v in headers.items()}
    ts_raw = (lower.get(TIMESTAMP_HEADER.lower()) or "").strip()
    given = (lower.get(SIGNATURE_HEADER.lower()) or "").strip()
    if not ts_raw or not given:
        raise Refused(401, "unsigned", f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise Refused(401, "bad_timestamp", f"{TIMESTAMP_HEADER} is not unix seconds") from None
    # the signature first: an unsigned sender learns nothing about the clock check
    if not hmac.compare_digest(sign(secret, ts_raw, body).encode(), given.encode()):
        raise Refused(401, "bad_signature", "signature does not match")
    window = tolerance_seconds() if tolerance is None else tolerance
    age = (time.time() if now is None else now) - ts
    if abs(age) > window:
        raise Refused(401, "stale_timestamp", f"timestamp {age:.0f} s away from now (tolerance {window} s)")


# --------------------------------------------------------------------------- events


@dataclasses.dataclass(frozen=True)
class InboxEvent:
    source: str
    event_id: str
    event_type: str
    entity: str
    record_id: str
    occurred_at: dt.datetime | None


def parse(source: str, body: bytes) -> InboxEvent:
    """The event of a verified body; :class:`Refused` (422) says what is wrong with it."""
    catalogue = EVENTS.get(source)
    if catalogue is None:
        raise Refused(404, "unknown_source", f"no webhooks from {source!r} (known: {', '.join(EVENTS)})")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(422, "not_json", "body is not JSON") from None
    if not isinstance(doc, dict):
        raise Refused(422, "not_an_event", "body is not a JSON object")
    event_id = doc.get("id")
    event_type = doc.get("type")
    given = doc.get("data")
    data = given if isinstance(given, dict) else {}
    record_id = data.get("id")
    for name, value in (("id", event_id), ("type", event_type), ("data.id", record_id)):
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise Refused(422, "missing_field", f"event field {name} is missing or empty")
        if len(str(value)) > 255:
            raise Refused(422, "field_too_long", f"event field {name} is longer than 255 characters")
    entity = catalogue.get(str(event_type))
    if entity is None:
        raise Refused(422, "unknown_event_type",
                      f"{source} event type {str(event_type)[:64]!r} is not one erpsync reads "
                      f"(known: {', '.join(sorted(catalogue))})")
    occurred = None
    if isinstance(doc.get("occurred_at"), str):
        try:
            occurred = dt.datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00"))
            occurred = occurred.astimezone(UTC) if occurred.tzinfo else None
        except ValueError:
            occurred = None  # the time is information only; the record is re-read anyway
    return InboxEvent(source, str(event_id).strip(), str(event_type), entity, str(record_id).strip(), occurred)


# --------------------------------------------------------------------------- the table


@dataclasses.dataclass(frozen=True)
class InboxRow:
    id: int
    source: str
    event_id: str
    event_type: str
    entity: str
    record_id: str
    status: str
    received_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def add(store: Any, event: InboxEvent) -> bool:
    """Store the event (committed when this returns); False when its id was stored before."""
    t = schema.inbox
    with store.db.begin() as conn:
        stmt = store.db.insert(t).values(
            source=event.source, event_id=event.event_id, event_type=event.event_type, entity=event.entity,
            record_id=event.record_id, occurred_at=event.occurred_at, received_at=_now(), status="pending",
        ).on_conflict_do_nothing(index_elements=["source", "event_id"]).returning(t.c.id)
        # the row it returns says whether it was stored: the rowcount of this INSERT is -1 on
        # PostgreSQL (psycopg 3 through SQLAlchemy), which counted every duplicate as stored
        return conn.execute(stmt).first() is not None


def claim(store: Any, entity: str, *, reclaim: int | None = None) -> tuple[str, int] | None:
    """Claim the entity's pending rows (and claims older than ``reclaim`` seconds that no run
    consumed) for one Asset event; None when there is nothing to claim, or when a younger claim
    still waits for its run (the run reads every pending row too: a burst becomes one run)."""
    t = schema.inbox
    now = _now()
    stale = now - dt.timedelta(seconds=reclaim_seconds() if reclaim is None else reclaim)
    with store.db.begin(write=False) as conn:
        waiting = conn.execute(sa.select(sa.func.count()).select_from(t).where(
            t.c.entity == entity, t.c.status == "claimed", t.c.claimed_at >= stale)).scalar_one()
        pending = conn.execute(sa.select(sa.func.count()).select_from(t).where(
            t.c.entity == entity, sa.or_(t.c.status == "pending",
                                         sa.and_(t.c.status == "claimed", t.c.claimed_at < stale)))).scalar_one()
    if waiting or not pending:
        return None
    token = uuid.uuid4().hex
    with store.db.begin() as conn:
        n = conn.execute(t.update().where(t.c.id.in_(_in_id_order(sa.select(t.c.id).where(
            t.c.entity == entity, sa.or_(t.c.status == "pending",
                                         sa.and_(t.c.status == "claimed", t.c.claimed_at < stale))))))
                         .values(status="claimed", claim=token, claimed_at=now)).rowcount
    return (token, n) if n else None


def _in_id_order(ids: sa.Select) -> Any:
    """The rows of ``ids`` locked in id order (PostgreSQL ``SELECT ... ORDER BY id FOR UPDATE``;
    SQLite has one writer at a time and ignores it). Without it a claim and a run's ``mark_done``
    updating the same rows at once took their row locks in different orders and deadlocked
    (found by tests/integration/test_inbox_postgres.py); now one waits for the other."""
    return ids.order_by(schema.inbox.c.id).with_for_update().scalar_subquery()


def open_rows(store: Any, entity: str, limit: int = 10_000) -> list[InboxRow]:
    """The entity's rows not done yet (pending or claimed), oldest first."""
    t = schema.inbox
    with store.db.begin(write=False) as conn:
        rows = conn.execute(sa.select(t).where(t.c.entity == entity, t.c.status != "done")
                            .order_by(t.c.id).limit(limit)).mappings().all()
    return [InboxRow(r["id"], r["source"], r["event_id"], r["event_type"], r["entity"], r["record_id"],
                     r["status"], r["received_at"]) for r in rows]


def mark_done(store: Any, ids: Iterable[int], run_id: str) -> int:
    t = schema.inbox
    ids = list(ids)
    if not ids:
        return 0
    with store.db.begin() as conn:
        return int(conn.execute(t.update().where(t.c.id.in_(_in_id_order(sa.select(t.c.id).where(
            t.c.id.in_(ids), t.c.status != "done")))).values(status="done", done_at=_now(),
                                                           run_id=run_id[:255])).rowcount)


def counts(store: Any) -> dict[str, dict[str, int]]:
    """{entity: {status: rows}}."""
    t = schema.inbox
    with store.db.begin(write=False) as conn:
        rows = conn.execute(sa.select(t.c.entity, t.c.status, sa.func.count()).group_by(t.c.entity, t.c.status))
        out: dict[str, dict[str, int]] = {}
        for entity, status, n in rows:
            out.setdefault(entity, {})[status] = int(n)
    return out


# --------------------------------------------------------------------------- one delivery


def receive(store: Any, source: str, headers: Mapping[str, str], body: bytes, secret: str | None) -> tuple[int, dict]:
    """Handle one delivery: (HTTP status, JSON answer). 200 only once the row is committed; a
    store failure propagates (the web app answers 5xx and the sender delivers again)."""
    if source not in EVENTS:
        raise Refused(404, "unknown_source", f"no webhooks from {source!r} (known: {', '.join(EVENTS)})")
    if not secret:
        raise Refused(503, "not_configured",
                      f"no webhook secret for {source}: set ERPSYNC_WEBHOOK_SECRET_{source.upper()} or "
                      f"webhook_secret in the extra of its Airflow connection")
    if len(body) > max_bytes():
        raise Refused(413, "too_large", f"body of {len(body)} bytes is over ERPSYNC_WEBHOOK_MAX_BYTES={max_bytes()}")
    verify(secret, headers, body)
    event = parse(source, body)
    stored = add(store, event)
    return 200, {"stored": stored, "duplicate": not stored, "event_id": event.event_id, "entity": event.entity}
