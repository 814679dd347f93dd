"""The console's routes (``erpsync_airflow.console``, ``console_reports``) in-process, on a real
SQLite state store, with Airflow's login stood in for (a user who may read and act):

* a dead letter that is not open (resolved, ignored, replayed) shows what happened to it instead
  of its action buttons, and every action posted on it anyway (a stale page, a script) is refused
  with 409 and a clear message: nothing changed, nothing audited, no 500;
* a report's page reads its items a page at a time: following "next" to the end shows every item
  once, each read once, never all of them in one go.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from erpsync.state import StateStore, records  # noqa: E402
from erpsync_airflow import console, console_reports  # noqa: E402

BEARER = {"Authorization": "Bearer test"}  # a bearer request needs no form token (console._may_act)
ACTIONS = ("preview", "replay", "ignore", "bind", "bind-replay", "payload")
FORM = {"note": "try again", "sku": "SKU-9", "item_code": "ITEM-9", "payload": '{"id": "O-1"}'}


class _User:
    def get_name(self) -> str:
        return "admin"


@pytest.fixture
def store(tmp_path: Any) -> Iterator[StateStore]:
    s = StateStore.from_url(f"sqlite:///{tmp_path}/state.db")
    s.migrate()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def client(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    async def user(request: Any) -> _User:
        return _User()

    monkeypatch.setattr(console, "_user", user)
    monkeypatch.setattr(console, "_allowed", lambda u, method: True)
    monkeypatch.setattr(console, "_store", lambda: store)
    monkeypatch.setattr(console_reports, "_store", lambda: store)
    with TestClient(console.app, raise_server_exceptions=True) as c:
        yield c


def _letter(store: StateStore, external_id: str) -> int:
    return store.add_dead_letter("orders_sync", "order", external_id, {"id": external_id, "lines": []},
                                 "unknown_sku: SKU-9", correlation_id="scheduled__2026-12-07T10:00:00+00:00")


def _state(store: StateStore, dl_id: int) -> tuple[Any, ...]:
    dl = store.get_dead_letter(dl_id)
    assert dl is not None
    return (dl.status, dl.payload, dl.attempts, store.get_xref("erp", "item", "SKU-9"),
            len(store.list_audit(correlation_id=f"dead_letter:{dl_id}", limit=1000)))


def test_an_ignored_letter_shows_who_ignored_it_and_refuses_every_action(store: StateStore,
                                                                           client: TestClient) -> None:
    dl_id = _letter(store, "O-1")
    page = client.get(f"/dead-letters/{dl_id}", headers=BEARER).text
    assert all(f"id='{b}'" in page for b in ("preview", "replay", "ignore", "edit"))  # open: the actions
    assert "form class='inline bind'" in page and "closed-note" not in page

    done = client.post(f"/dead-letters/{dl_id}/ignore", data={"note": "test order, not real"}, headers=BEARER,
                       follow_redirects=False)
    assert done.status_code == 303 and store.get_dead_letter(dl_id).status == "ignored"

    page = client.get(f"/dead-letters/{dl_id}", headers=BEARER).text
    assert not re.search(r"id='(preview|replay|ignore|edit|edit-payload|save-payload)'", page)
    assert "class='inline bind'" not in page and "bind-replay" not in page
    note = re.search(r"<p id='closed-note'[^>]*>(.*?)</p>", page).group(1)
    assert re.fullmatch(r"ignored at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by admin from the console: "
                        r"test order, not real\.", note), note
    assert "erpsync dead-letters replay --id" in page  # the way back, said

    before = _state(store, dl_id)
    for action in ACTIONS:
        resp = client.post(f"/dead-letters/{dl_id}/{action}", data=FORM, headers=BEARER, follow_redirects=False)
        assert resp.status_code == 409, (action, resp.status_code, resp.text[:300])
        assert "data-result='refused'" in resp.text and f"dead letter #{dl_id} is ignored" in resp.text
        assert "nothing was done" in resp.text and "by admin from the console: test order, not real" in resp.text
        assert _state(store, dl_id) == before, action  # status, payload, xref, audit: as they were


def test_a_letter_a_flow_run_resolved_says_when_and_by_which_run(store: StateStore, client: TestClient) -> None:
    dl_id = _letter(store, "O-2")
    last_seen = store.get_dead_letter(dl_id).last_seen
    store.audit(flow="orders_sync", system="erp", operation="create_sales_order", entity="order", external_id="O-2",
                request={}, response={"name": "SO-7"}, duration_ms=12, result="ok",
                run_id="scheduled__2026-12-07T11:00:00+00:00", correlation_id="O-2")
    assert store.dead_letters.resolve("orders_sync", "order", "O-2") == 1  # as a flow run closes it

    page = client.get(f"/dead-letters/{dl_id}", headers=BEARER).text
    note = re.search(r"<p id='closed-note'[^>]*>(.*?)</p>", page).group(1)
    assert note.startswith("resolved at ") and "run scheduled__2026-12-07T11:00:00+00:00 of orders_sync wrote " in note
    assert "to erp (create_sales_order)" in note and console._fmt_time(last_seen) in note
    assert not re.search(r"id='(preview|replay|ignore|edit)'", page)

    before = _state(store, dl_id)
    resp = client.post(f"/dead-letters/{dl_id}/replay", headers=BEARER, follow_redirects=False)
    assert resp.status_code == 409 and f"dead letter #{dl_id} is resolved" in resp.text
    assert "only an open dead letter can be replayed; nothing was done" in resp.text
    assert _state(store, dl_id) == before


def test_closed_note_without_a_trace_says_what_the_status_means() -> None:
    seen = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)
    dl = records.DeadLetter(id=5, flow="stock_sync", entity="stock", external_id="SKU-1", payload={}, reason="r",
                            error_kind="permanent", attempts=2, status="resolved", correlation_id=None,
                            first_seen=seen, last_seen=seen)
    note = console.closed_note(dl, [], [])
    assert note.startswith("resolved: a later run of stock_sync synced the record")
    assert note.endswith("it last failed at 2026-12-07 09:30:00 UTC")
    ignored = console.closed_note(dl.__class__(**{**_fields(dl), "status": "ignored"}), [], [])
    assert "ignored outside the console" in ignored


def _fields(dl: Any) -> dict[str, Any]:
    return {f: getattr(dl, f) for f in dl.__dataclass_fields__}


def test_a_long_report_is_paged_and_each_item_read_once(store: StateStore, client: TestClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_reports, "ITEMS_PER_PAGE", 7)
    report_id = store.add_drift_report("inventory_drift_check", "scheduled__r1", {"compared": 30},
                                       [{"kind": "quantity_mismatch", "entity": "stock", "external_id": f"SKU-{i:02d}"}
                                        for i in range(30)])
    read: list[int] = []
    original = records.DriftItem.from_row.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(records.DriftItem, "from_row",
                        classmethod(lambda cls, row, **kw: read.append(row["id"]) or original(cls, row, **kw)))

    shown: list[str] = []
    url, wheres = f"/reports/{report_id}", []
    while url:
        page = client.get(url, headers=BEARER)
        assert page.status_code == 200
        shown += re.findall(r"<tr data-item='\d+'><td>quantity_mismatch</td><td>stock</td><td>(SKU-\d\d)</td>",
                            page.text)
        wheres.append(re.search(r"<span class='where'>(.*?)</span>", page.text).group(1))
        nxt = re.search(r"id='items-next' href='/erpsync(/reports/\d+\?after=\d+)'", page.text)
        url = nxt.group(1) if nxt else ""
    assert shown == [f"SKU-{i:02d}" for i in range(30)]
    assert wheres == ["items 1-7 of 30", "items 8-14 of 30", "items 15-21 of 30", "items 22-28 of 30",
                      "items 29-30 of 30"]
    assert sorted(read) == sorted(set(read)) and len(read) == 30  # each item read once, none read ahead

    prev = re.search(r"id='items-previous' href='/erpsync(/reports/\d+\?before=\d+)'", page.text).group(1)
    back = client.get(prev, headers=BEARER).text
    assert "items 22-28 of 30" in back and "id='items-next'" in back and "id='items-first'" in back
    assert "id='items-previous'" not in client.get(f"/reports/{report_id}", headers=BEARER).text


def test_data_docs_pages_say_they_load_from_public_cdns(client: TestClient, tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "data_docs"
    (site / "validations").mkdir(parents=True)
    (site / "index.html").write_text(
        "<html><head><link rel='stylesheet' href='https://maxcdn.bootstrapcdn.com/bootstrap.min.css'>"
        "<script src=\"https://code.jquery.com/jquery-3.7.1.min.js\"></script></head>"
        "<body class='x'><a href='https://greatexpectations.io'>GX</a><h1>Validations</h1></body></html>")
    (site / "validations" / "local.html").write_text("<html><body><h1>self-contained</h1></body></html>")
    monkeypatch.setenv("ERPSYNC_GX_DATA_DOCS_DIR", str(site))

    page = client.get("/data-docs/index.html", headers=BEARER).text
    notice = re.search(r"<body class='x'><div id='erpsync-cdn-notice'[^>]*>(.*?) <a ", page).group(1)
    assert notice == ("These Great Expectations pages load their styles and scripts from public CDNs "
                      "(code.jquery.com, maxcdn.bootstrapcdn.com): without internet access they show unstyled, "
                      "and those sites see each visit.")  # a plain link (greatexpectations.io) is not an asset
    assert "<h1>Validations</h1>" in page
    assert "erpsync-cdn-notice" not in client.get("/data-docs/validations/local.html", headers=BEARER).text
    listing = client.get("/reports", headers=BEARER).text
    assert "id='data-docs'" in listing and "public CDNs (code.jquery.com, maxcdn.bootstrapcdn.com)" in listing
