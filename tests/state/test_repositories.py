"""The store is small repositories over one database (issue 19): each data area an attribute, one
transaction across them, and the flat methods are the same rows seen through the repositories."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from erpsync.state import StateStore
from erpsync.state import schema as t
from erpsync.state.repos import (
    ApprovalRepository,
    AuditRepository,
    CursorRepository,
    DeadLetterRepository,
    DriftReportRepository,
    LedgerRepository,
    RunRepository,
    XrefRepository,
)


def test_each_data_area_is_a_repository_over_the_one_database(store: StateStore) -> None:
    repos = {
        "xrefs": XrefRepository,
        "cursors": CursorRepository,
        "ledger": LedgerRepository,
        "dead_letters": DeadLetterRepository,
        "audit_log": AuditRepository,
        "approvals": ApprovalRepository,
        "drift_reports": DriftReportRepository,
        "runs": RunRepository,
    }
    for name, cls in repos.items():
        repo = getattr(store, name)
        assert isinstance(repo, cls), name
        assert repo.db is store.db, f"{name} has a database of its own"
    assert store.db.engine is store.engine


def test_a_transaction_spans_the_repositories(store: StateStore) -> None:
    store.ledger.begin("order:R1", "orders_sync", "erp")
    with pytest.raises(RuntimeError, match="crash"), store.transaction():
        store.ledger.complete("order:R1", "SO-1")
        store.xrefs.upsert("erp", "sales_order", "R1", "SO-1")
        store.cursors.advance("orders_sync", "2026-11-23T10:00:00Z")
        store.audit_log.add(flow="orders_sync", system="erp", operation="create", entity="sales_order",
                            external_id="R1", request={}, response={}, duration_ms=1, result="ok")
        raise RuntimeError("crash")
    assert store.ledger_get("order:R1").status == "pending"
    assert store.get_xref("erp", "sales_order", "R1") is None
    assert store.get_cursor("orders_sync") is None
    assert store.list_audit(flow="orders_sync") == []

    with store.transaction():
        store.ledger.complete("order:R1", "SO-1")
        with store.db.transaction():  # the database's block and the store's are the same one
            store.xrefs.upsert("erp", "sales_order", "R1", "SO-1")
    assert store.ledger.get("order:R1").result_ref == "SO-1"
    assert store.xrefs.get("erp", "sales_order", "R1").internal_id == "SO-1"


def test_modules_with_tables_of_their_own_use_the_database(store: StateStore, clock) -> None:
    """``store.db``: a connection joined to the open transaction, the dialect's upsert, the clock."""
    store.clock = clock
    assert store.db.now() == clock() and store.db.now().tzinfo is not None
    c = t.cursors
    with pytest.raises(RuntimeError), store.transaction():
        with store.db.begin() as conn:
            conn.execute(store.db.insert(c).values(flow="f", name="n", value="v", updated_at=store.db.now()))
        assert store.get_cursor("f", "n") == "v"  # the same transaction, seen on its thread
        raise RuntimeError
    with store.db.begin(write=False) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(c)).scalar_one() == 0
    assert store.db.is_sqlite == (store.engine.dialect.name == "sqlite")


def test_the_flat_methods_and_the_repositories_see_the_same_rows(store: StateStore) -> None:
    dl = store.add_dead_letter("orders_sync", "order", "O1", {"a": 1}, "unknown SKU")
    assert store.dead_letters.get(dl) == store.get_dead_letter(dl)
    assert store.dead_letters.find(flow="orders_sync") == store.list_dead_letters(flow="orders_sync")
    ap = store.approvals.add("pricing_sync", "price", "SKU-1", "price", {"p": "2"}, {"p": "1"}, "big step")
    assert [a.id for a in store.list_approvals()] == [ap]
    store.decide_approval(ap, "approve", "ann")
    assert store.approvals.get(ap).status == "approved"
    rid = store.drift_reports.add("inventory_drift", "r1", {"n": 1}, [{"entity": "stock", "kind": "mismatch"}])
    assert store.get_drift_report(rid).item_count == 1
    assert [r.id for r in store.drift_reports.recent("inventory_drift")] == [rid]


def test_add_many_holds_changes_in_bulk_and_refreshes_the_pending_one(store: StateStore) -> None:
    def row(sku: str, price: str) -> dict[str, object]:
        return {"flow": "pricing_sync", "entity": "price", "external_id": sku, "kind": "price",
                "proposed": {"price": price}, "current": {"price": "10.00"}, "reason": "big step"}

    ids = store.approvals.add_many([row(f"SKU-{i}", "1.00") for i in range(1200)])  # over one chunk
    assert len(ids) == len(set(ids)) == 1200
    again = store.approvals.add_many([row("SKU-7", "2.00"), row("SKU-NEW", "3.00")])
    assert again[0] == ids[7]  # the pending approval of the same change is refreshed, not duplicated
    assert store.approvals.get(ids[7]).proposed == {"price": "2.00"}
    assert len(store.list_approvals(flow="pricing_sync")) == 1201
    assert store.approvals.add_many([]) == []


def test_an_open_dead_letter_takes_a_corrected_payload_a_closed_one_does_not(store: StateStore) -> None:
    open_id = store.add_dead_letter("orders_sync", "order", "O1", {"sku": "BAD"}, "unknown SKU")
    closed_id = store.add_dead_letter("orders_sync", "order", "O2", {"sku": "BAD"}, "unknown SKU")
    store.set_dead_letter_status([closed_id], "ignored")
    assert store.dead_letters.replace_payload(open_id, {"sku": "GOOD"}) is True
    assert store.get_dead_letter(open_id).payload == {"sku": "GOOD"}
    assert store.dead_letters.replace_payload(closed_id, {"sku": "GOOD"}) is False
    assert store.get_dead_letter(closed_id).payload == {"sku": "BAD"}
    assert store.dead_letters.replace_payload(999_999, {}) is False


def test_erasure_helpers_forget_a_persons_answers_and_payloads(store: StateStore) -> None:
    for key in ("customer:C1", "customer:C2"):
        store.ledger.begin(key, "customers_sync", "erp")
        store.ledger.complete(key, key[-2:], response={"email": "ann@example.com"})
    assert store.ledger.drop_responses(["customer:C1", "customer:unknown"]) == 1
    assert store.ledger.get("customer:C1").response is None
    assert store.ledger.get("customer:C1").status == "done"  # the write is still known as done
    assert store.ledger.get("customer:C2").response == {"email": "ann@example.com"}

    a = store.add_dead_letter("customers_sync", "customer", "C1", {"email": "Ann@Example.com"}, "bad")
    b = store.add_dead_letter("customers_sync", "customer", "C3", {"email": "bob@example.com"}, "bad")
    store.set_dead_letter_status([a], "resolved")  # closed ones too
    assert store.dead_letters.redact_payloads("ann@example.com", lambda p: {"email": "***"}) == 1
    assert store.get_dead_letter(a).payload == {"email": "***"}
    assert store.get_dead_letter(b).payload == {"email": "bob@example.com"}
    assert store.dead_letters.redact_payloads("", lambda p: {}) == 0
