"""The webhook receiver over HTTP (issue 21): signed deliveries land in the state store's inbox
once, forged/stale/oversized ones are refused, and no 2xx is answered before the row is committed."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from erpsync import inbox
from erpsync.state import StateStore
from tests.fixtures.webhooks import serve_receiver

pytestmark = [pytest.mark.integration]

SECRET = "whsec-test-storefront"


def db_path() -> Path:
    """The state store's SQLite file: the default one (ERPSYNC_HOME, per test), which the
    trigger's StateStoreHook opens too."""
    return Path(os.environ["ERPSYNC_HOME"]) / "state.db"


@pytest.fixture
def store():
    s = StateStore.from_url()
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def receiver(store, monkeypatch):
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_STOREFRONT", SECRET)
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_ERP", "whsec-test-erp")
    monkeypatch.setenv("ERPSYNC_WEBHOOK_MAX_BYTES", "2048")
    with serve_receiver(store) as url:
        yield url


def event(event_id: str, kind: str = "order.paid", record: str = "1001") -> bytes:
    return json.dumps({"id": event_id, "type": kind, "occurred_at": "2026-12-07T14:00:00Z",
                       "data": {"id": record}}).encode()


def post(url: str, body: bytes, secret: str = SECRET, *, ts: int | None = None, headers=None) -> httpx.Response:
    h = inbox.signed_headers(secret, body, timestamp=ts) if headers is None else headers
    return httpx.post(url, content=body, headers=h, timeout=10)


def rows(store) -> list[tuple[str, str, str, str]]:
    return [(r.source, r.event_id, r.entity, r.record_id) for r in inbox.open_rows(store, "order")
            + inbox.open_rows(store, "stock") + inbox.open_rows(store, "shipment")]


def test_signed_events_stored_once_forged_stale_and_oversized_refused(receiver, store) -> None:
    url = receiver
    # good signature: stored; the same delivery again (a retry): 200, still one row
    first = post(f"{url}/storefront", event("evt-1"))
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": True, "duplicate": False, "event_id": "evt-1", "entity": "order"}
    again = post(f"{url}/storefront", event("evt-1"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # ERP events on the ERP's endpoint with the ERP's secret
    assert post(f"{url}/erp", event("e-9", "stock.changed", "SKU-1"), "whsec-test-erp").status_code == 200
    assert post(f"{url}/erp", event("e-10", "shipment.created", "SH-1"), "whsec-test-erp").status_code == 200
    assert rows(store) == [("storefront", "evt-1", "order", "1001"), ("erp", "e-9", "stock", "SKU-1"),
                           ("erp", "e-10", "shipment", "SH-1")]

    # forged: wrong secret, a tampered body, no signature, the other platform's secret
    body = event("evt-2")
    forged = [
        post(f"{url}/storefront", body, "not-the-secret"),
        post(f"{url}/storefront", event("evt-2", record="9999"), headers=inbox.signed_headers(SECRET, body)),
        post(f"{url}/storefront", body, headers={"Content-Type": "application/json"}),
        post(f"{url}/storefront", body, "whsec-test-erp"),
    ]
    assert [r.status_code for r in forged] == [401, 401, 401, 401]
    assert [r.json()["error"] for r in forged] == ["bad_signature", "bad_signature", "unsigned", "bad_signature"]
    # a captured delivery replayed after the tolerance (300 s): refused though the signature is right
    stale = post(f"{url}/storefront", event("evt-3"), ts=int(time.time()) - 301)
    assert stale.status_code == 401 and stale.json()["error"] == "stale_timestamp"
    # over ERPSYNC_WEBHOOK_MAX_BYTES (2048 here): refused before anything is parsed
    big = json.dumps({"id": "evt-4", "type": "order.paid", "data": {"id": "1", "pad": "x" * 3000}}).encode()
    assert post(f"{url}/storefront", big).status_code == 413
    # an event type erpsync does not read: a clear 422, nothing stored
    odd = post(f"{url}/storefront", event("evt-5", "order.exploded"))
    assert odd.status_code == 422 and "order.exploded" in odd.json()["message"]
    assert len(rows(store)) == 3  # none of the refused ones was stored

    stats = httpx.get(f"{url}/stats", timeout=5).json()
    assert stats["refused"] == {"storefront:bad_signature": 3, "storefront:unsigned": 1,
                                "storefront:stale_timestamp": 1, "storefront:too_large": 1,
                                "storefront:unknown_event_type": 1}
    assert stats["accepted"] == {"erp:stored": 2, "storefront:duplicate": 1, "storefront:stored": 1}
    assert stats["inbox"] == {"order": {"pending": 1}, "stock": {"pending": 1}, "shipment": {"pending": 1}}


def test_no_2xx_before_the_row_is_committed(receiver, store) -> None:
    """The database refuses the write (a trigger aborts it, as a full disk would): the sender gets
    a 503, nothing is stored; delivered again once the database is back, it is stored once."""
    db = sqlite3.connect(db_path())
    db.execute("CREATE TRIGGER inbox_down BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    db.commit()
    body = event("evt-crash", record="2002")
    down = post(f"{receiver}/storefront", body)
    assert down.status_code == 503 and down.json()["error"] == "not_stored"
    assert rows(store) == []
    db.execute("DROP TRIGGER inbox_down")
    db.commit()
    db.close()
    assert post(f"{receiver}/storefront", body).status_code == 200  # the sender's retry
    assert post(f"{receiver}/storefront", body).json()["duplicate"] is True
    assert rows(store) == [("storefront", "evt-crash", "order", "2002")]


def test_no_secret_configured_refuses_with_the_fix(store, monkeypatch) -> None:
    monkeypatch.delenv("ERPSYNC_WEBHOOK_SECRET_STOREFRONT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_STOREFRONT_DEFAULT", raising=False)
    with serve_receiver(store) as url:
        r = post(f"{url}/storefront", event("evt-x"), "anything")
    assert r.status_code == 503 and "ERPSYNC_WEBHOOK_SECRET_STOREFRONT" in r.json()["message"]
    assert rows(store) == []


def test_a_claim_no_run_consumed_is_fired_again(receiver, store) -> None:
    """The triggerer died after claiming (or the DAG was paused): nothing is lost. While the claim is
    young the trigger waits for its run (the burst stays one run); once older than
    ERPSYNC_INBOX_RECLAIM_SECONDS it fires again for the same rows plus what came since."""
    import asyncio

    from erpsync_airflow.triggers import InboxTrigger

    async def fired(seconds: float) -> list:
        out: list = []

        async def pump() -> None:
            async for ev in InboxTrigger(entity="order", poll_interval=0.05).run():
                out.append(ev.payload)

        task = asyncio.create_task(pump())
        await asyncio.sleep(seconds)
        task.cancel()
        return out

    for n in range(3):
        assert post(f"{receiver}/storefront", event(f"evt-r{n}", record=f"30{n}")).status_code == 200
    first = asyncio.run(fired(0.5))
    assert [p["rows"] for p in first] == [3]
    assert post(f"{receiver}/storefront", event("evt-r3", record="303")).status_code == 200
    assert asyncio.run(fired(0.3)) == []  # the claim waits for its run; the new row will ride along
    # no run came: the claim is older than the reclaim window (300 s by default)
    db = sqlite3.connect(db_path())
    db.execute("UPDATE inbox SET claimed_at = datetime(claimed_at, '-301 seconds') WHERE status = 'claimed'")
    db.commit()
    db.close()
    again = asyncio.run(fired(0.5))
    assert [p["rows"] for p in again] == [4]
    assert {r.record_id for r in inbox.open_rows(store, "order")} == {"300", "301", "302", "303"}
