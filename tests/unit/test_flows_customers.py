"""customers_sync against in-memory doubles of the ERP and storefront and a real SQLite state store."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from flow_doubles import FakeErp, FakeStorefront, make_ctx

from erpsync.errors import PermanentError, TransientError, UnknownOutcomeError
from erpsync.flows import customers
from erpsync.state import StateStore

FLOW = "customers_sync"


def sf_customer(n: int, updated: str = "2026-11-01T10:00:00Z", **change: object) -> dict:
    rec = {
        "id": f"C{100000 + n}",
        "email": f"person.{n}@example.net",
        "first_name": "Anna",
        "last_name": f"Person{n}",
        "company": "",
        "phone": "+1-555-0000",
        "group": "retail",
        "tax_exempt": False,
        "addresses": [
            {
                "type": "billing",
                "address1": f"{n} Main Street",
                "address2": "",
                "city": "Berlin",
                "province": "BE",
                "zip": f"10{n:03d}",
                "country_code": "DE",
                "name": f"Anna Person{n}",
                "company": "",
                "phone": "",
            }
        ],
        "created_at": "2026-10-01T10:00:00Z",
        "updated_at": updated,
    }
    rec.update(change)
    return rec


@pytest.fixture
def store(tmp_path) -> StateStore:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def test_creates_binds_and_skips_unchanged_on_rerun(store: StateStore) -> None:
    erp, sf = FakeErp(), FakeStorefront([sf_customer(1), sf_customer(2)])
    summary = customers.run(make_ctx(store, FLOW, erp, sf))
    assert (summary.done, summary.skipped, summary.quarantined, summary.failed) == (2, 0, 0, 0)
    assert len(erp.customers) == 2
    xref = store.get_xref("erp", "customer", "C100001")
    assert xref is not None and erp.customers[xref.internal_id]["external_ref"] == "C100001"
    assert store.ledger_get("customer:C100001").status == "done"
    assert store.get_cursor(FLOW) == "2026-11-01T10:00:00Z"

    again = customers.run(make_ctx(store, FLOW, erp, sf, run_id="run-2"))
    assert (again.done, again.skipped) == (0, 2)
    assert again.reasons["unchanged"] == 2
    assert erp.calls["create_customer"] == 2 and erp.calls["update_customer"] == 0


def test_cursor_is_read_with_a_lookback(store: StateStore) -> None:
    erp, sf = FakeErp(), FakeStorefront([sf_customer(1)])
    store.set_cursor(FLOW, "2026-11-01T10:02:00Z")
    customers.run(make_ctx(store, FLOW, erp, sf, lookback_minutes=5))
    assert sf.listed_since == [dt.datetime(2026, 11, 1, 9, 57, tzinfo=dt.UTC)]
    assert len(erp.customers) == 1  # 10:00 is inside the overlap, so it was not skipped
    assert store.get_cursor(FLOW) == "2026-11-01T10:02:00Z"  # never moves backwards


def test_changed_customer_is_updated(store: StateStore) -> None:
    erp, sf = FakeErp(), FakeStorefront([sf_customer(1)])
    customers.run(make_ctx(store, FLOW, erp, sf))
    sf.customers["C100001"] = sf_customer(1, "2026-11-02T10:00:00Z", phone="+1-555-9999")
    summary = customers.run(make_ctx(store, FLOW, erp, sf, run_id="run-2"))
    assert summary.done == 1
    (rec,) = erp.customers.values()
    assert rec["phone"] == "+1-555-9999"


def test_only_updated_at_moving_is_not_a_change(store: StateStore) -> None:
    erp, sf = FakeErp(), FakeStorefront([sf_customer(1)])
    customers.run(make_ctx(store, FLOW, erp, sf))
    sf.customers["C100001"] = sf_customer(1, "2026-11-02T10:00:00Z")
    assert customers.run(make_ctx(store, FLOW, erp, sf, run_id="run-2")).skipped == 1


def test_matches_existing_erp_customer_by_email(store: StateStore) -> None:
    erp = FakeErp()
    existing = erp.add_customer(name="Anna P", email=" PERSON.1@Example.NET", payment_terms="NET30")
    summary = customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1)])))
    assert summary.done == 1 and len(erp.customers) == 1
    assert store.get_xref("erp", "customer", "C100001").internal_id == existing["customer_no"]
    rec = erp.customers[existing["customer_no"]]
    assert rec["external_ref"] == "C100001" and rec["payment_terms"] == "NET30"  # ERP terms left alone


def test_matches_by_name_and_postcode(store: StateStore) -> None:
    erp = FakeErp()
    existing = erp.add_customer(
        name="anna person1",
        email="old@mail.test",
        addresses=[
            {"type": "BILL_TO", "street": "x", "city": "Berlin", "postal_code": "10 001", "country": "DE"}
        ],
    )
    customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1)])))
    assert store.get_xref("erp", "customer", "C100001").internal_id == existing["customer_no"]
    assert len(erp.customers) == 1


def test_erp_master_binds_without_updating(store: StateStore) -> None:
    erp = FakeErp()
    existing = erp.add_customer(name="Anna P", email="person.1@example.net")
    customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1)]), customer_master="erp"))
    assert erp.customers[existing["customer_no"]]["name"] == "Anna P"
    assert erp.calls["update_customer"] == 0


def test_ambiguous_match_goes_to_dead_letters(store: StateStore) -> None:
    erp = FakeErp()
    erp.add_customer(name="A", email="person.1@example.net")
    erp.add_customer(name="B", email="Person.1@example.net")
    summary = customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1)])))
    assert summary.quarantined == 1
    (dl,) = store.list_dead_letters(flow=FLOW)
    assert dl.reason == "ambiguous_customer_match: email matches CUST-000001, CUST-000002"
    assert erp.calls["create_customer"] == 0


def test_mapping_error_is_dead_lettered_and_the_batch_goes_on(store: StateStore) -> None:
    erp = FakeErp()
    sf = FakeStorefront([sf_customer(1, email=None), sf_customer(2)])
    summary = customers.run(make_ctx(store, FLOW, erp, sf))
    assert (summary.done, summary.quarantined) == (1, 1)
    (dl,) = store.list_dead_letters(flow=FLOW)
    assert (dl.external_id, dl.error_kind) == ("C100001", "mapping")
    assert dl.reason.startswith("mapping_error: record storefront customer C100001: field 'email'")
    assert dl.payload["id"] == "C100001"
    text = summary.render()
    assert f"#{dl.id} C100001: mapping_error" in text
    assert f"erpsync dead-letters replay --id {dl.id}" in text


def test_fixed_record_resolves_its_dead_letter(store: StateStore) -> None:
    erp, sf = FakeErp(), FakeStorefront([sf_customer(1, email=None)])
    customers.run(make_ctx(store, FLOW, erp, sf))
    sf.customers["C100001"] = sf_customer(1, "2026-11-01T11:00:00Z")
    customers.run(make_ctx(store, FLOW, erp, sf, run_id="run-2"))
    assert store.list_dead_letters(flow=FLOW) == []


def test_permanent_error_is_dead_lettered(store: StateStore) -> None:
    erp = FakeErp()
    erp.fail("create_customer", PermanentError("email rejected", system="erp", status=422))
    summary = customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1), sf_customer(2)])))
    assert (summary.done, summary.quarantined) == (1, 1)
    assert summary.dead_letters[0][2] == "erp_rejected: 422 email rejected"
    assert store.ledger_get("customer:C100001").status == "failed"


def test_commit_then_timeout_finds_the_customer_instead_of_creating_twice(store: StateStore) -> None:
    erp = FakeErp()
    erp.commit_then_timeout("create_customer")
    summary = customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1)])))
    assert summary.done == 1
    assert len(erp.customers) == 1 and erp.calls["create_customer"] == 1
    results = [a.result for a in store.list_audit(flow=FLOW)]
    assert sorted(results) == ["found", "unknown"]


def test_pending_ledger_from_a_crash_looks_up_before_writing(store: StateStore) -> None:
    erp = FakeErp()
    # an earlier try sent the create and died before it could record the answer
    store.ledger_begin("customer:C100001", FLOW, "erp")
    erp.add_customer(name="Anna Person1", email="person.1@example.net", external_ref="C100001")
    customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1)])))
    assert len(erp.customers) == 1 and erp.calls["create_customer"] == 0


def test_transient_error_fails_the_run_and_keeps_the_cursor(store: StateStore) -> None:
    erp = FakeErp()
    erp.fail("create_customer", TransientError("503 after retries", system="erp", status=503), times=1)
    sf = FakeStorefront([sf_customer(1), sf_customer(2, "2026-11-02T10:00:00Z")])
    with pytest.raises(TransientError):
        customers.run(make_ctx(store, FLOW, erp, sf))
    assert store.get_cursor(FLOW) is None
    assert store.list_dead_letters(flow=FLOW) == []
    # the batch went on past the failed record, which waits in the outbox; the next try drains
    # it first and writes nothing twice
    summary = customers.run(make_ctx(store, FLOW, erp, sf, run_id="run-2"))
    assert summary.drained == 1 and summary.done == 1 and len(erp.customers) == 2


def test_unknown_outcome_on_every_try_fails_the_run(store: StateStore) -> None:
    erp = FakeErp()
    erp.fail("create_customer", UnknownOutcomeError("timeout", system="erp"), times=3)
    with pytest.raises(UnknownOutcomeError):
        customers.run(make_ctx(store, FLOW, erp, FakeStorefront([sf_customer(1)])))
    assert store.ledger_get("customer:C100001").status == "pending"
    assert erp.calls["create_customer"] == 3


def test_summary_render_and_to_dict(store: StateStore) -> None:
    sf = FakeStorefront([sf_customer(1), copy.deepcopy(sf_customer(2, email="bad"))])
    summary = customers.run(make_ctx(store, FLOW, FakeErp(), sf))
    d = summary.to_dict()
    assert (d["done"], d["quarantined"], d["reasons"]) == (1, 1, {"mapping_error": 1})
    first = summary.render().splitlines()[0]
    assert first == "customers_sync [run-1]: done=1 failed=0 quarantined=1 skipped=0"
