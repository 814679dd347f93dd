"""orders_sync against in-memory doubles of the ERP and storefront and a real SQLite state store."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from flow_doubles import FakeErp, FakeStorefront, make_ctx
from test_flows_customers import sf_customer

from erpsync.errors import ConfigError, PermanentError, TransientError
from erpsync.flows import orders
from erpsync.state import StateStore

FLOW = "orders_sync"


def sf_order(
    n: int, *, customer: dict | None = None, updated: str = "2026-11-23T10:05:00Z", **change: object
) -> dict:
    """A consistent order: 2 x 10.00 (1.00 off) + 5.00, 10% tax, 4.95 shipping (0.50 tax)."""
    address = {
        "address1": "1 Main Street",
        "address2": "",
        "city": "Berlin",
        "province": "BE",
        "zip": "10115",
        "country_code": "DE",
        "name": "Guest Shopper",
        "company": "",
        "phone": "",
    }
    tax = {"title": "DE-VAT", "code": "DE-VAT", "rate": "0.10", "jurisdiction": "DE"}
    rec = {
        "id": f"O{100000 + n}",
        "name": f"#{100000 + n}",
        "customer": {"id": customer["id"], "email": customer["email"]} if customer else None,
        "email": customer["email"] if customer else f"guest.{n}@example.org",
        "currency": "EUR",
        "created_at": "2026-11-23T10:00:00Z",
        "updated_at": updated,
        "financial_status": "paid",
        "cancelled_at": None,
        "line_items": [
            {
                "id": f"L{n}-1",
                "sku": "SKU-000001",
                "title": "Widget",
                "quantity": 2,
                "price": "10.00",
                "total_discount": "1.00",
                "tax_lines": [{**tax, "price": "1.90"}],
            },
            {
                "id": f"L{n}-2",
                "sku": "SKU-000002",
                "title": "Gadget",
                "quantity": 1,
                "price": "5.00",
                "total_discount": "0.00",
                "tax_lines": [{**tax, "price": "0.50"}],
            },
        ],
        "shipping_lines": [{"code": "STANDARD", "title": "Standard shipping", "price": "4.95"}],
        "shipping_address": address,
        "billing_address": address,
        "tax_lines": [{**tax, "title": "DE-VAT shipping", "price": "0.50"}],
        "discount_codes": [],
        "transactions": [
            {"id": f"T{n}-1", "gateway": "gift_card", "amount": "10.00", "status": "success"},
            {"id": f"T{n}-2", "gateway": "paypal", "amount": "21.85", "status": "success"},
        ],
        "total_price": "31.85",  # 19.00 + 5.00 + 4.95 + 1.90 + 0.50 + 0.50
    }
    rec.update(change)
    return rec


@pytest.fixture
def store(tmp_path) -> StateStore:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def erp() -> FakeErp:
    e = FakeErp()
    e.add_item("SKU-000001", "ITEM-000001")
    e.add_item("SKU-000002", "ITEM-000002")
    return e


CUST = sf_customer(7)


def run(store: StateStore, erp: FakeErp, sf: FakeStorefront, run_id: str = "run-1", **params: object):
    return orders.run(make_ctx(store, FLOW, erp, sf, run_id=run_id, **params))


def test_customer_is_created_before_the_order_and_rerun_writes_nothing(
    store: StateStore, erp: FakeErp
) -> None:
    sf = FakeStorefront([CUST], [sf_order(1, customer=CUST)])
    summary = run(store, erp, sf)
    assert (summary.done, summary.quarantined, summary.skipped) == (1, 0, 0)
    (customer,) = erp.customers.values()
    assert customer["external_ref"] == "C100007"
    (so,) = erp.orders.values()
    assert so["customer_no"] == customer["customer_no"] and so["external_ref"] == "O100001"
    assert [ln["item_code"] for ln in so["lines"]] == ["ITEM-000001", "ITEM-000002"]
    assert [p["method_code"] for p in so["payments"]] == ["GC", "PP"]
    assert store.get_xref("erp", "sales_order", "O100001").internal_id == so["order_no"]
    assert store.get_xref("erp", "item", "SKU-000001").internal_id == "ITEM-000001"

    again = run(store, erp, sf, run_id="run-2")
    assert (again.done, again.skipped, again.reasons["already_synced"]) == (0, 1, 1)
    assert len(erp.orders) == 1 and erp.calls["create_sales_order"] == 1
    assert erp.calls["find_item_by_sku"] == 2  # the second run did not even need to look items up


def test_existing_customer_xref_is_used(store: StateStore, erp: FakeErp) -> None:
    store.upsert_xref("erp", "customer", "C100007", "CUST-000042")
    erp.customers["CUST-000042"] = {"customer_no": "CUST-000042", "name": "x"}
    run(store, erp, FakeStorefront([], [sf_order(1, customer=CUST)]))
    assert next(iter(erp.orders.values()))["customer_no"] == "CUST-000042"


def test_commit_then_timeout_makes_no_duplicate(store: StateStore, erp: FakeErp) -> None:
    erp.commit_then_timeout("create_sales_order", times=2)
    sf = FakeStorefront([CUST], [sf_order(1, customer=CUST), sf_order(2, customer=CUST)])
    summary = run(store, erp, sf)
    assert summary.done == 2
    assert sorted(o["external_ref"] for o in erp.orders.values()) == ["O100001", "O100002"]
    assert erp.calls["create_sales_order"] == 2


def test_pending_ledger_row_from_a_crash_is_looked_up_first(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront([CUST], [sf_order(1, customer=CUST)])
    run(store, erp, sf)
    # simulate: the state store lost the answer (ledger pending, no xref) but the ERP has the order
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM xref WHERE entity = 'sales_order'")
        conn.exec_driver_sql("UPDATE idempotency_ledger SET status = 'pending', result_ref = NULL")
    summary = run(store, erp, sf, run_id="run-2")
    assert summary.done == 1 and len(erp.orders) == 1 and erp.calls["create_sales_order"] == 1


def test_unknown_sku_holds_the_whole_order(store: StateStore, erp: FakeErp) -> None:
    raw = sf_order(1, customer=CUST)
    raw["line_items"][1]["sku"] = "SKU-NOPE"
    summary = run(store, erp, FakeStorefront([CUST], [raw]))
    assert (summary.done, summary.quarantined) == (0, 1)
    (dl,) = store.list_dead_letters(flow=FLOW)
    assert (dl.entity, dl.external_id, dl.reason) == ("order", "O100001", "unknown_sku: SKU-NOPE")
    assert dl.payload == raw
    assert erp.orders == {}
    # the item appears in the ERP: the order goes on the next run and its dead letter is resolved
    erp.add_item("SKU-NOPE", "ITEM-000099")
    assert run(store, erp, FakeStorefront([CUST], [raw]), run_id="run-2").done == 1
    assert store.list_dead_letters(flow=FLOW) == []


def test_unpaid_and_cancelled_orders_are_skipped(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront(
        [CUST],
        [
            sf_order(1, customer=CUST, financial_status="pending", transactions=[]),
            sf_order(2, customer=CUST, cancelled_at="2026-11-23T10:30:00Z"),
        ],
    )
    summary = run(store, erp, sf)
    assert (summary.done, summary.skipped) == (0, 2)
    assert dict(summary.reasons) == {"unpaid": 1, "cancelled_unsynced": 1}
    assert erp.orders == {} and erp.customers == {}


def test_paid_later_comes_again_via_updated_at(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront([CUST], [sf_order(1, customer=CUST, financial_status="pending", transactions=[])])
    run(store, erp, sf)
    sf.orders["O100001"] = sf_order(1, customer=CUST, updated="2026-11-24T09:00:00Z")
    assert run(store, erp, sf, run_id="run-2").done == 1


def test_cancellation_after_sync_needs_manual_cancel(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront([CUST], [sf_order(1, customer=CUST)])
    run(store, erp, sf)
    sf.orders["O100001"] = sf_order(
        1, customer=CUST, updated="2026-11-24T09:00:00Z", cancelled_at="2026-11-24T09:00:00Z"
    )
    summary = run(store, erp, sf, run_id="run-2")
    assert summary.quarantined == 1
    assert (
        summary.dead_letters[0][2]
        == "needs_manual_cancel: cancelled 2026-11-24T09:00:00Z after sync as SO-000001"
    )


def test_total_mismatch(store: StateStore, erp: FakeErp) -> None:
    summary = run(store, erp, FakeStorefront([CUST], [sf_order(1, customer=CUST, total_price="35.00")]))
    # the quality gate's order suite catches it first; the reason names the GX expectation too
    assert summary.dead_letters[0][1] == "O100001"
    assert summary.dead_letters[0][2].startswith("total_mismatch: computed 31.85 != total_price 35.00 (")
    assert erp.customers == {}  # nothing is written for an order that does not add up


def test_mapping_error_dead_letters_and_goes_on(store: StateStore, erp: FakeErp) -> None:
    bad = sf_order(1, customer=CUST)
    bad["transactions"][0]["gateway"] = "bitcoin"
    summary = run(store, erp, FakeStorefront([CUST], [bad, sf_order(2, customer=CUST)]))
    assert (summary.done, summary.quarantined) == (1, 1)
    assert "payment_gateway" in summary.dead_letters[0][2]


def test_guest_shared_account_is_created_once(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront([], [sf_order(1), sf_order(2)])
    assert run(store, erp, sf).done == 2
    (account,) = erp.customers.values()
    assert account["external_ref"] == "guest-account:WEB-GUEST"
    assert {o["customer_no"] for o in erp.orders.values()} == {account["customer_no"]}
    sf.orders["O100003"] = sf_order(3)
    run(store, erp, sf, run_id="run-2")
    assert len(erp.customers) == 1


def test_guest_shared_account_already_in_the_erp(store: StateStore, erp: FakeErp) -> None:
    erp.customers["WEB-GUEST"] = {
        "customer_no": "WEB-GUEST",
        "name": "Web",
        "email": "web-guest@guests.invalid",
    }
    run(store, erp, FakeStorefront([], [sf_order(1)]))
    assert erp.calls["create_customer"] == 0
    assert next(iter(erp.orders.values()))["customer_no"] == "WEB-GUEST"


def test_guest_create_policy_makes_one_customer_per_email(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront([], [sf_order(1), sf_order(2, email="GUEST.1@example.org")])
    assert run(store, erp, sf, guest_policy="create").done == 2
    (guest,) = erp.customers.values()
    assert guest["external_ref"] == "guest:guest.1@example.org" and guest["name"] == "Guest Shopper"


def test_guest_hold_policy(store: StateStore, erp: FakeErp) -> None:
    summary = run(store, erp, FakeStorefront([], [sf_order(1)]), guest_policy="hold")
    assert summary.quarantined == 1 and summary.dead_letters[0][2].startswith("guest_held")
    assert erp.customers == {}


def test_bad_guest_policy_fails_before_reading(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront([], [sf_order(1)])
    with pytest.raises(ConfigError):
        run(store, erp, sf, guest_policy="shared")
    assert sf.listed_since == []


def test_missing_storefront_customer(store: StateStore, erp: FakeErp) -> None:
    summary = run(store, erp, FakeStorefront([], [sf_order(1, customer=CUST)]))
    assert summary.dead_letters[0][2] == "customer_not_found: C100007"


def test_erp_rejection_is_dead_lettered(store: StateStore, erp: FakeErp) -> None:
    erp.fail("create_sales_order", PermanentError("no item ITEM-000002", system="erp", status=422))
    summary = run(
        store, erp, FakeStorefront([CUST], [sf_order(1, customer=CUST), sf_order(2, customer=CUST)])
    )
    assert (summary.done, summary.quarantined) == (1, 1)
    assert summary.dead_letters[0][2] == "erp_rejected: 422 no item ITEM-000002"


def test_transient_error_fails_the_run_and_a_rerun_completes(store: StateStore, erp: FakeErp) -> None:
    erp.fail("create_sales_order", TransientError("503", system="erp", status=503))
    sf = FakeStorefront(
        [CUST], [sf_order(1, customer=CUST), sf_order(2, customer=CUST, updated="2026-11-23T11:00:00Z")]
    )
    with pytest.raises(TransientError):
        run(store, erp, sf)
    assert store.get_cursor(FLOW) is None
    # order 2 went on; order 1 waited in the outbox and the rerun drains it first
    summary = run(store, erp, sf, run_id="run-2")
    assert summary.drained == 1 and summary.done == 1 and len(erp.orders) == 2
    assert store.get_cursor(FLOW) == "2026-11-23T11:00:00Z"


def test_backfill_reads_exactly_its_slice_and_leaves_the_cursor(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront(
        [CUST],
        [
            sf_order(1, customer=CUST, updated="2026-11-23T10:05:00Z"),
            sf_order(2, customer=CUST, updated="2026-11-23T12:00:00Z"),
        ],
    )
    store.set_cursor(FLOW, "2026-11-23T08:00:00Z")
    ctx = make_ctx(store, FLOW, erp, sf)
    ctx.run_type = "backfill"
    ctx.interval_start = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    ctx.interval_end = dt.datetime(2026, 11, 23, 11, 0, tzinfo=dt.UTC)
    summary = orders.run(ctx)
    assert summary.done == 1 and [o["external_ref"] for o in erp.orders.values()] == ["O100001"]
    assert sf.listed_since == [dt.datetime(2026, 11, 23, 9, 55, tzinfo=dt.UTC)]
    assert store.get_cursor(FLOW) == "2026-11-23T08:00:00Z"


def test_scheduled_run_after_a_gap_reads_back_to_the_cursor(store: StateStore, erp: FakeErp) -> None:
    """Scheduler down from 10:00 to 12:00 with catchup off: the 12:00 run still gets the 10:30 order."""
    sf = FakeStorefront(
        [CUST],
        [
            sf_order(1, customer=CUST, updated="2026-11-23T10:30:00Z"),
            sf_order(2, customer=CUST, updated="2026-11-23T12:00:30Z"),
        ],
    )
    store.set_cursor(FLOW, "2026-11-23T10:00:00Z")
    ctx = make_ctx(store, FLOW, erp, sf)
    ctx.interval_start = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    ctx.interval_end = dt.datetime(2026, 11, 23, 12, 1, tzinfo=dt.UTC)
    summary = orders.run(ctx)
    assert summary.done == 2
    assert sf.listed_since == [dt.datetime(2026, 11, 23, 9, 55, tzinfo=dt.UTC)]
    assert store.get_cursor(FLOW) == "2026-11-23T12:00:30Z"


def test_every_write_is_audited(store: StateStore, erp: FakeErp) -> None:
    run(store, erp, FakeStorefront([CUST], [sf_order(1, customer=CUST)]))
    ops = sorted((a.operation, a.result) for a in store.list_audit(flow=FLOW))
    assert ops == [("create_customer", "ok"), ("create_sales_order", "ok")]


def test_same_order_twice_in_one_batch(store: StateStore, erp: FakeErp) -> None:
    o = sf_order(1, customer=CUST)
    sf = FakeStorefront([CUST], [o])
    sf.orders["dup"] = copy.deepcopy(o)  # the storefront pages it twice
    summary = run(store, erp, sf)
    assert (summary.done, summary.skipped) == (1, 1) and len(erp.orders) == 1
