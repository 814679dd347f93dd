"""The sandbox sends signed webhooks (issue 21) into the real receiver over HTTP: every event it
emits and does not drop lands in the inbox exactly once, through duplicates, delays and reordering."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from erpsync import inbox
from erpsync.state import StateStore
from tests.fixtures.webhooks import serve_receiver

pytestmark = [pytest.mark.integration]

SF_SECRET, ERP_SECRET = "whsec-sf", "whsec-erp"


@pytest.fixture
def wired(clean_sandbox, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_STOREFRONT", SF_SECRET)
    monkeypatch.setenv("ERPSYNC_WEBHOOK_SECRET_ERP", ERP_SECRET)
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    with serve_receiver(store) as url:
        yield clean_sandbox, store, url
    for base in (clean_sandbox.storefront_url, clean_sandbox.erp_url):
        httpx.delete(f"{base}/_admin/webhooks", timeout=5)
    store.close()


def configure(base: str, url: str, secret: str, **body) -> dict:
    r = httpx.post(f"{base}/_admin/webhooks", json={"url": url, "secret": secret, **body}, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def settle(base: str, timeout: float = 20) -> dict:
    """The sender's counts once nothing is queued any more."""
    deadline = time.monotonic() + timeout
    while True:
        snap = httpx.get(f"{base}/_admin/webhooks", timeout=5).json()
        c = snap["counts"]
        done = c.get("delivered", 0) + c.get("failed", 0) + c.get("dropped", 0) - c.get("duplicated", 0)
        if snap["queued"] == 0 and done >= c.get("emitted", 0):
            return snap
        assert time.monotonic() < deadline, snap
        time.sleep(0.1)


def inbox_rows(store, entity: str) -> list[inbox.InboxRow]:
    return inbox.open_rows(store, entity)


def test_storefront_events_with_faults_land_once_and_drops_are_counted(wired) -> None:
    sb, store, url = wired
    configure(sb.storefront_url, f"{url}/storefront", SF_SECRET, seed=3,
              faults={"duplicate": 0.3, "out_of_order": 0.2, "delay": 0.2, "delay_seconds": 0.5, "drop": 0.15})
    made = httpx.post(f"{sb.storefront_url}/_admin/orders/generate", json={"count": 20, "seed": 11}, timeout=10)
    assert made.status_code == 201
    counts = settle(sb.storefront_url)["counts"]
    # every kind of fault happened, and nothing failed to deliver
    assert all(counts.get(k, 0) > 0 for k in ("duplicated", "reordered", "delayed", "dropped")), counts
    assert counts.get("failed", 0) == 0
    rows = inbox_rows(store, "order") + inbox_rows(store, "customer_redact")
    # each event not dropped is stored once (duplicates deduped by event id)
    assert len(rows) == counts["emitted"] - counts["dropped"]
    assert len({r.event_id for r in rows}) == len(rows)
    assert {r.record_id for r in rows} <= set(made.json()["orders"])
    assert {r.event_type for r in rows} <= {"order.created", "order.paid"}
    stats = httpx.get(f"{url}/stats", timeout=5).json()
    assert stats["accepted"]["storefront:duplicate"] == counts["duplicated"]
    assert "refused" not in stats or not stats["refused"]


def test_erp_sends_shipment_stock_and_price_events_and_a_wrong_secret_is_refused(wired) -> None:
    sb, store, url = wired
    configure(sb.erp_url, f"{url}/erp", ERP_SECRET)
    r = httpx.post(f"{sb.erp_url}/_admin/stock", json={"item_code": "ITEM-000003", "warehouse": "MAIN",
                                                       "on_hand": 77}, timeout=5)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{sb.erp_url}/_admin/prices", json={"set": [{"item_code": "ITEM-000004", "price_list": "BASE",
                                                                "currency": "USD", "price": "12.00"}]}, timeout=5)
    assert r.status_code == 200, r.text
    settle(sb.erp_url)
    assert [(x.event_type, x.record_id) for x in inbox_rows(store, "stock")] == [("stock.changed", "ITEM-000003")]
    assert [(x.event_type, x.record_id) for x in inbox_rows(store, "price")] == [("price.changed", "ITEM-000004")]

    # a sender with the wrong secret: every attempt refused (401, counted), retried, then failed
    configure(sb.erp_url, f"{url}/erp", "not-the-erp-secret", attempts=3)
    httpx.post(f"{sb.erp_url}/_admin/stock", json={"item_code": "ITEM-000005", "warehouse": "MAIN", "on_hand": 5},
               timeout=5)
    counts = settle(sb.erp_url, timeout=30)["counts"]
    assert counts["failed"] == 1 and counts.get("delivered", 0) == 0 and counts["sent"] == 3
    assert Counter(httpx.get(f"{url}/stats", timeout=5).json()["refused"])["erp:bad_signature"] == counts["sent"]
    assert [x.record_id for x in inbox_rows(store, "stock")] == ["ITEM-000003"]
