"""StateStore behaviour, on SQLite and PostgreSQL (the `store` fixture is parametrised)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from erpsync.model import Money
from erpsync.state import StateStore
from erpsync.state.redact import MASK
from tests.state._support import FakeClock, truncate_pg

UTC = dt.UTC


def _aware_utc(value: dt.datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


# -- cursors ------------------------------------------------------------------------------


def test_cursors(store: StateStore) -> None:
    assert store.get_cursor("orders") is None
    store.set_cursor("orders", "100")
    store.set_cursor("orders", "200")
    store.set_cursor("orders", "2026-11-23T10:00:00Z", name="modified")
    store.set_cursor("customers", "7")
    assert store.get_cursor("orders") == "200"
    assert store.get_cursor("orders", name="modified") == "2026-11-23T10:00:00Z"
    assert store.get_cursor("customers") == "7"


# -- cross references ---------------------------------------------------------------------


def test_xref_round_trip_and_rebind(store: StateStore) -> None:
    assert store.get_xref("storefront", "customer", "C1") is None
    x = store.upsert_xref("storefront", "customer", "C1", "CUST-000001", content_hash="h1")
    assert (x.system, x.entity, x.external_id, x.internal_id, x.content_hash) == (
        "storefront",
        "customer",
        "C1",
        "CUST-000001",
        "h1",
    )
    assert _aware_utc(x.last_synced_at)
    assert store.get_xref("storefront", "customer", "C1") == x
    assert store.get_xref_by_internal("storefront", "customer", "CUST-000001") == x
    assert store.get_xref("erp", "customer", "C1") is None  # systems are separate

    again = store.upsert_xref("storefront", "customer", "C1", "CUST-000002", content_hash="h2")
    assert again.id == x.id
    assert (again.internal_id, again.content_hash) == ("CUST-000002", "h2")
    assert store.get_xref_by_internal("storefront", "customer", "CUST-000001") is None


def test_xref_list_filters_and_delete(store: StateStore) -> None:
    store.upsert_xref("erp", "item", "SKU-0055", "ITEM-15")
    store.upsert_xref("erp", "item", "SKU-0056", "Item-16")
    store.upsert_xref("erp", "warehouse", "LOC-1", "WH-1")
    store.upsert_xref("storefront", "variant", "SKU-0055", "v-9")
    assert [x.external_id for x in store.list_xrefs(system="erp", entity="item")] == ["SKU-0055", "SKU-0056"]
    assert {(x.system, x.entity) for x in store.list_xrefs(search="sku-0055")} == {
        ("erp", "item"), ("storefront", "variant")}
    assert [x.external_id for x in store.list_xrefs(search="item-16")] == ["SKU-0056"]  # either id, any case
    assert len(store.list_xrefs(limit=2)) == 2
    removed = store.delete_xref("erp", "warehouse", "LOC-1")
    assert removed is not None and removed.internal_id == "WH-1"
    assert store.get_xref("erp", "warehouse", "LOC-1") is None
    assert store.delete_xref("erp", "warehouse", "LOC-1") is None


def test_xref_map_bulk(store: StateStore) -> None:
    for i in range(0, 1200, 2):  # every other id bound; > one IN chunk
        store.upsert_xref("erp", "item", f"ITEM-{i:06d}", f"SKU-{i:06d}")
    wanted = [f"ITEM-{i:06d}" for i in range(1200)] + ["ITEM-000000"]
    found = store.xref_map("erp", "item", wanted)
    assert len(found) == 600
    assert found["ITEM-000010"].internal_id == "SKU-000010"
    assert "ITEM-000011" not in found
    assert store.xref_map("erp", "item", []) == {}


# -- idempotency ledger -------------------------------------------------------------------


def test_ledger_begin_twice_returns_existing_row(store: StateStore) -> None:
    first = store.ledger_begin("orders:O1:create", "orders", "erp", request_hash="abc")
    assert first.status == "pending" and first.request_hash == "abc"
    second = store.ledger_begin("orders:O1:create", "orders", "erp", request_hash="other")
    assert second == first

    store.ledger_complete("orders:O1:create", "SO-1", response={"total": Decimal("19.990"), "ok": True})
    done = store.ledger_begin("orders:O1:create", "orders", "erp")
    assert done.id == first.id and done.status == "done" and done.result_ref == "SO-1"
    assert done.response == {"total": "19.990", "ok": True}  # Decimal kept exact, as a string
    assert store.ledger_get("orders:O1:create") == done
    assert store.ledger_get("nope") is None


def test_ledger_fail_and_unknown_key(store: StateStore) -> None:
    store.ledger_begin("k", "orders", "erp")
    store.ledger_fail("k", "422 invalid customer")
    entry = store.ledger_get("k")
    assert entry is not None and entry.status == "failed" and entry.error == "422 invalid customer"
    with pytest.raises(KeyError):
        store.ledger_complete("missing", "x")


# -- dead letters -------------------------------------------------------------------------


def test_dead_letter_re_add_bumps_attempts_and_keeps_one_open_row(
    store: StateStore, clock: FakeClock
) -> None:
    store.clock = clock
    first_id = store.add_dead_letter(
        "orders", "order", "O1", {"total": Decimal("1.50")}, "unknown SKU", correlation_id="c1"
    )
    clock.advance(minutes=5)
    again = store.add_dead_letter(
        "orders", "order", "O1", {"total": Decimal("2.50")}, "unknown SKU X", error_kind="mapping"
    )
    assert again == first_id
    (dl,) = store.list_dead_letters(flow="orders")
    assert dl.attempts == 2 and dl.status == "open"
    assert dl.payload == {"total": "2.50"} and dl.reason == "unknown SKU X" and dl.error_kind == "mapping"
    assert dl.correlation_id == "c1"  # kept when the retry has none
    assert dl.last_seen - dl.first_seen == dt.timedelta(minutes=5)

    assert store.resolve_dead_letters("orders", "order", "O1") == 1
    assert store.list_dead_letters() == []
    new_id = store.add_dead_letter("orders", "order", "O1", {}, "fails again")
    assert new_id != first_id  # a resolved letter is history; a new failure opens a new one
    assert len(store.list_dead_letters(status=None)) == 2


def test_dead_letter_listing_and_status(store: StateStore, clock: FakeClock) -> None:
    store.clock = clock
    a = store.add_dead_letter("orders", "order", "O1", {}, "Unknown SKU SKU-9")
    clock.advance(days=1)
    b = store.add_dead_letter("orders", "order", "O2", {}, "customer missing")
    c = store.add_dead_letter("customers", "customer", "C1", {}, "bad email", error_kind="mapping")
    assert [d.id for d in store.list_dead_letters()] == [a, b, c]
    assert [d.id for d in store.list_dead_letters(flow="orders")] == [a, b]
    assert [d.id for d in store.list_dead_letters(reason_like="sku")] == [a]
    assert [d.id for d in store.list_dead_letters(reason_like="customer%")] == [b]
    assert [d.id for d in store.list_dead_letters(since=clock.now)] == [b, c]
    assert [d.id for d in store.list_dead_letters(until=clock.now)] == [a]
    assert [d.id for d in store.list_dead_letters(limit=1)] == [a]

    assert store.set_dead_letter_status([a, b], "replayed") == 2
    assert store.set_dead_letter_status([a], "replayed") == 0  # already there
    assert [d.id for d in store.list_dead_letters(status="replayed")] == [a, b]
    assert store.get_dead_letter(a).status == "replayed"
    with pytest.raises(ValueError, match="status"):
        store.set_dead_letter_status([a], "deleted")

    store.add_dead_letter("orders", "order", "O1", {}, "again")  # new open letter for O1
    with pytest.raises(ValueError, match="another open dead letter"):
        store.set_dead_letter_status([a], "open")


# -- audit --------------------------------------------------------------------------------


def test_audit_is_redacted(store: StateStore) -> None:
    store.redactor = type(store.redactor)(extra_keys=["tax_id"])
    audit_id = store.audit(
        flow="customers",
        system="erp",
        operation="create",
        entity="customer",
        external_id="C1",
        request={
            "name": "Ann",
            "email": "a@b.c",
            "tax_id": "DE1",
            "credit_limit": Decimal("5000.00"),
            "headers": {"Authorization": "Basic xyz"},
        },
        response={"customer_no": "CUST-1", "token": "t"},
        duration_ms=12.6,
        result="ok",
        run_id="r1",
        correlation_id="c1",
    )
    (entry,) = store.list_audit(flow="customers")
    assert entry.id == audit_id
    assert entry.request == {
        "name": MASK,
        "email": MASK,
        "tax_id": MASK,
        "credit_limit": "5000.00",
        "headers": {"Authorization": MASK},
    }
    assert entry.response == {"customer_no": "CUST-1", "token": MASK}
    assert (entry.duration_ms, entry.result, entry.run_id, entry.correlation_id) == (13, "ok", "r1", "c1")
    assert _aware_utc(entry.at)


def test_purge_audit_retention(store: StateStore, clock: FakeClock, monkeypatch) -> None:
    store.clock = clock
    kwargs = dict(
        flow="f",
        system="erp",
        operation="get",
        entity="item",
        external_id=None,
        request=None,
        response=None,
        duration_ms=None,
        result="ok",
    )
    store.audit(**kwargs)  # 100 days old by the time we purge
    clock.advance(days=50)
    store.audit(**kwargs)  # 50 days old
    clock.advance(days=50)
    store.audit(**kwargs)  # new
    assert store.purge_audit(90) == 1
    assert len(store.list_audit()) == 2
    monkeypatch.setenv("ERPSYNC_AUDIT_RETENTION_DAYS", "30")
    assert store.purge_audit() == 1
    assert len(store.list_audit()) == 1


def test_housekeeping_purges_old_history_but_keeps_open_work(store: StateStore, clock: FakeClock) -> None:
    from erpsync.housekeeping import purge

    store.clock = clock
    old_closed = store.add_dead_letter("orders_sync", "order", "O1", {"email": "a@example.com"}, "unknown_sku: X")
    old_open = store.add_dead_letter("orders_sync", "order", "O2", {"email": "b@example.com"}, "unknown_sku: X")
    store.set_dead_letter_status([old_closed], "resolved")
    store.audit(flow="f", system="erp", operation="get", entity="order", external_id="O1", request={"x": 1},
                response=None, duration_ms=1, result="ok")
    clock.advance(days=100)
    new_closed = store.add_dead_letter("orders_sync", "order", "O3", {"email": "c@example.com"}, "unknown_sku: X")
    store.set_dead_letter_status([new_closed], "ignored")
    store.audit(flow="f", system="erp", operation="get", entity="order", external_id="O3", request={"x": 1},
                response=None, duration_ms=1, result="ok")

    done = purge(store, 90)
    assert (done.audit_rows, done.dead_letters, done.retention_days) == (1, 1, 90)
    kept = {d.id for d in store.list_dead_letters(status=None, limit=100)}
    assert store.get_dead_letter(old_closed) is None  # closed and past the retention: its payload is gone
    assert store.get_dead_letter(old_open) is not None  # open work is never purged, whatever its age
    assert store.get_dead_letter(new_closed) is not None
    assert kept == {old_open, new_closed}
    assert [a.external_id for a in store.list_audit()] == ["O3"]
    assert purge(store, 90).to_dict() == {"retention_days": 90, "audit_rows": 0, "dead_letters": 0, "outbox_rows": 0,
                                        "channel_sales_rows": 0}


# -- approvals ----------------------------------------------------------------------------


def test_approvals_decide(store: StateStore) -> None:
    a = store.add_approval(
        "prices", "price", "SKU-1", "price_drop", {"price": "5.00"}, {"price": "10.00"}, "drop of 50%"
    )
    same = store.add_approval(
        "prices",
        "price",
        "SKU-1",
        "price_drop",
        {"price": Decimal("4.00")},
        {"price": "10.00"},
        "drop of 60%",
    )
    assert same == a  # one pending approval per change, refreshed
    b = store.add_approval("prices", "price", "SKU-2", "price_drop", {}, {}, "x")
    c = store.add_approval("stock", "stock", "SKU-3", "zero_out", {}, {}, "y")
    pending = store.list_approvals()
    assert [p.id for p in pending] == [a, b, c]
    assert pending[0].proposed == {"price": "4.00"} and pending[0].reason == "drop of 60%"
    assert [p.id for p in store.list_approvals(flow="stock")] == [c]

    store.decide_approval(a, "approved", "maria", note="ok for sale")
    store.decide_approval(b, "reject", "maria")
    got = store.get_approval(a)
    assert got.status == "approved" and got.decided_by == "maria" and got.note == "ok for sale"
    assert _aware_utc(got.decided_at)
    with pytest.raises(ValueError, match="is approved"):
        store.decide_approval(a, "rejected", "bob")
    store.decide_approval(a, "published", "flow")
    assert store.get_approval(a).status == "published" and store.get_approval(a).decided_by == "maria"
    with pytest.raises(ValueError, match="is rejected"):
        store.decide_approval(b, "published", "flow")
    with pytest.raises(ValueError, match="decision"):
        store.decide_approval(c, "maybe", "bob")
    with pytest.raises(KeyError):
        store.decide_approval(999, "approved", "bob")
    assert [p.id for p in store.list_approvals()] == [c]
    assert [p.id for p in store.list_approvals(status=None)] == [a, b, c]
    # a decided change may come back: it gets a new pending approval
    assert store.add_approval("prices", "price", "SKU-1", "price_drop", {}, {}, "again") not in (a, b, c)


# -- drift reports ------------------------------------------------------------------------


def test_drift_report_replaced_on_rerun(store: StateStore) -> None:
    items = [
        {"entity": "stock", "external_id": "SKU-1", "kind": "mismatch", "erp": Decimal("5"), "storefront": 3},
        {"entity": "stock", "external_id": "SKU-2", "kind": "missing_in_storefront"},
    ]
    rid = store.add_drift_report("reconcile", "run-1", {"checked": 2, "drift": 2}, items)
    report = store.get_drift_report(rid)
    assert report.summary == {"checked": 2, "drift": 2} and report.item_count == 2
    assert [(i.external_id, i.kind) for i in report.items] == [
        ("SKU-1", "mismatch"),
        ("SKU-2", "missing_in_storefront"),
    ]
    assert report.items[0].detail["erp"] == "5"

    again = store.add_drift_report("reconcile", "run-1", {"checked": 2, "drift": 1}, items[:1])
    assert again == rid
    report = store.get_drift_report(rid)
    assert report.item_count == 1 and len(report.items) == 1
    store.add_drift_report("reconcile", "run-2", {"checked": 0}, [])
    assert [r.run_id for r in store.list_drift_reports("reconcile")] == ["run-2", "run-1"]
    assert store.get_drift_report(999) is None


# -- run metrics --------------------------------------------------------------------------


def test_run_metrics(store: StateStore) -> None:
    cet = dt.timezone(dt.timedelta(hours=2))
    start = dt.datetime(2026, 11, 23, 12, 0, tzinfo=cet)
    store.record_run("orders", "r1", start, start + dt.timedelta(minutes=1), 10, 1, 0, 2, extra={"pages": 3})
    store.record_run("orders", "r2", start + dt.timedelta(hours=1), None, 0, 0, 0, 0)
    store.record_run("orders", "r1", start, start + dt.timedelta(minutes=2), 11, 0, 0, 2)  # retried task
    store.record_run("customers", "r1", start, None, 1, 0, 0, 0)
    runs = store.last_runs("orders")
    assert [r.run_id for r in runs] == ["r2", "r1"]
    r1 = runs[1]
    assert (r1.done, r1.failed, r1.skipped, r1.extra) == (11, 0, 2, None)
    assert r1.started_at == start and r1.started_at.tzinfo == UTC and r1.started_at.hour == 10
    assert r1.finished_at - r1.started_at == dt.timedelta(minutes=2)
    assert runs[0].finished_at is None
    assert len(store.last_runs("orders", limit=1)) == 1


def test_naive_datetimes_are_refused(store: StateStore) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.record_run("orders", "r1", dt.datetime(2026, 1, 1), None, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="naive datetime"):
        store.list_dead_letters(since=dt.datetime(2026, 1, 1))


# -- types --------------------------------------------------------------------------------


def test_json_round_trip(store: StateStore) -> None:
    payload = {
        "price": Decimal("19.99"),
        "qty": 3,
        "ratio": 0.5,
        "nested": [{"amount": Decimal("-0.01")}, None, True],
        "when": dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "day": dt.date(2026, 11, 23),
        "unicode": "Zürich €",
        "money": Money(Decimal("5.00"), "EUR"),
    }
    approval_id = store.add_approval("f", "item", "k", "price", payload, None, "json")
    approval = store.get_approval(approval_id)
    assert approval is not None
    assert approval.proposed == {
        "price": "19.99",
        "qty": 3,
        "ratio": 0.5,
        "nested": [{"amount": "-0.01"}, None, True],
        "when": "2026-11-23T10:00:00Z",
        "day": "2026-11-23",
        "unicode": "Zürich €",
        "money": {"amount": "5.00", "currency": "EUR"},
    }


def test_unknown_types_are_refused_in_state_but_kept_as_repr_in_audit(store: StateStore) -> None:
    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    with pytest.raises(Exception, match="cannot store Odd"):
        store.add_approval("f", "item", "k", "price", {"x": Odd()}, None, "odd")
    store.audit(
        flow="f",
        system="erp",
        operation="get",
        entity="item",
        external_id="1",
        request={"x": Odd()},
        response=None,
        duration_ms=1,
        result="ok",
    )
    assert store.list_audit()[0].request == {"x": "<odd>"}


def test_records_are_frozen(store: StateStore) -> None:
    x = store.upsert_xref("erp", "item", "I1", "S1")
    with pytest.raises(AttributeError):
        x.internal_id = "other"  # type: ignore[misc]


@pytest.mark.postgres
def test_postgres_session_time_zone_does_not_leak(_pg_store_url: str) -> None:
    truncate_pg(_pg_store_url)
    with StateStore.from_url(_pg_store_url + "?options=-c%20timezone%3DAsia/Tokyo") as tokyo:
        start = dt.datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
        tokyo.record_run("orders", "tz", start, None, 0, 0, 0, 0)
        (run,) = tokyo.last_runs("orders")
        assert run.started_at == start and run.started_at.tzinfo == UTC


def test_transaction_commits_together_or_not_at_all(store: StateStore) -> None:
    store.ledger_begin("order:T1", "orders_sync", "erp")
    with pytest.raises(RuntimeError, match="crash"), store.transaction():
        store.ledger_complete("order:T1", "SO-1")
        store.upsert_xref("erp", "sales_order", "T1", "SO-1")
        assert store.get_xref("erp", "sales_order", "T1") is not None  # seen inside, on its thread
        raise RuntimeError("crash between the ledger and the xref")
    # neither landed: the ledger row is still pending, so a rerun looks the order up by its key
    assert store.ledger_get("order:T1").status == "pending"
    assert store.get_xref("erp", "sales_order", "T1") is None

    with store.transaction():
        store.ledger_complete("order:T1", "SO-1")
        with store.transaction():  # a nested block joins the outer one
            store.upsert_xref("erp", "sales_order", "T1", "SO-1")
    assert store.ledger_get("order:T1").result_ref == "SO-1"
    assert store.get_xref("erp", "sales_order", "T1").internal_id == "SO-1"


def test_concurrent_writer_threads_all_commit(store: StateStore) -> None:
    """24 threads writing at once (write_concurrency): every write lands, none meets 'locked'."""
    import threading

    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                key = f"order:{n}-{i}"
                store.ledger_begin(key, "orders_sync", "erp")
                with store.transaction():
                    store.ledger_complete(key, f"SO-{n}-{i}")
                    store.upsert_xref("erp", "sales_order", f"{n}-{i}", f"SO-{n}-{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(24)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    bound = store.xref_map("erp", "sales_order", [f"{n}-{i}" for n in range(24) for i in range(25)])
    assert len(bound) == 600 and all(store.ledger_get(f"order:{k}").status == "done" for k in ("0-0", "23-24"))
