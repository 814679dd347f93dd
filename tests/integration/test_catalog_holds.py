"""Risky catalog changes are held for a person against the sandbox (issue 20 item 4): a run
retiring more than 10 % of the store's products, a product with open orders retired, a title or
unit change on a best seller. The store keeps what it shows; the rest of the batch goes on; an
approved change is written by the next run only while the ERP still says it (compare-and-set)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from erpsync.state import StateStore
from erpsync.state.inventory import InventoryState
from tests.integration.test_catalog_sync import SEED, products, run

pytestmark = pytest.mark.integration


@pytest.fixture
def world(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLD_RETIRE_MIN", "3")  # the sandbox shop is small: 3 of 24 is a bulk
    sandbox.reset(**SEED)
    sandbox.clear_faults()
    yield sandbox
    from tests.fixtures.sandbox import TEST_SEED

    sandbox.reset(**TEST_SEED)


def _retire(world: Any, *numbers: int) -> None:
    for n in numbers:
        world.admin("erp", "POST", "items", {"item_code": f"ITEM-{n:06d}", "active": False})


def _held(store: StateStore) -> dict[str, Any]:
    return {a.external_id: a for a in store.list_approvals(status="pending", flow="catalog_sync")}


def _status(sf: Any, n: int) -> str:
    return products(sf)[f"sku-{n:06d}"]["status"]


def test_a_bulk_retirement_is_held_and_an_approval_is_applied_only_while_the_erp_still_says_it(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    published = len(store.list_xrefs(system="storefront", entity="product", limit=1000))
    _retire(world, 1, 2, 3)  # 3 of ~20 published: more than 10 %
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000006", "cost": "1.00"})  # an ordinary change
    summary = run(store, erp_adapter, storefront_adapter, "r2")
    held = _held(store)
    assert sorted(held) == ["ITEM-000001", "ITEM-000002", "ITEM-000003"] and summary.reasons["held"] == 3
    a = held["ITEM-000001"]
    assert a.kind == "catalog_retire" and f"retires 3 of {published} published products" in a.reason
    assert a.proposed["active"] is False and a.current["active"] is True
    assert all(_status(storefront_adapter, n) == "active" for n in (1, 2, 3))  # the store keeps them
    assert summary.failed == 0 and summary.quarantined == 0

    store.decide_approval(held["ITEM-000001"].id, "approved", "pat")
    store.decide_approval(held["ITEM-000002"].id, "approved", "pat")
    store.decide_approval(held["ITEM-000003"].id, "rejected", "pat", note="ERP import error")
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000002", "active": True})  # the ERP takes it back
    again = run(store, erp_adapter, storefront_adapter, "r3")
    assert _status(storefront_adapter, 1) == "archived" and again.reasons["unpublished"] == 1
    assert store.get_approval(held["ITEM-000001"].id).status == "published"
    taken_back = store.get_approval(held["ITEM-000002"].id)
    assert taken_back.status == "rejected" and taken_back.note.startswith("superseded:")
    assert "approved by pat" in taken_back.note
    assert _status(storefront_adapter, 2) == "active" and _status(storefront_adapter, 3) == "active"
    writes = world.stats("storefront")["writes_committed"]
    run(store, erp_adapter, storefront_adapter, "r4")  # nothing left: published once
    assert world.stats("storefront")["writes_committed"] == writes


def test_a_retirement_with_open_orders_is_held_and_the_rest_goes_on(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    now = dt.datetime.now(dt.UTC)
    InventoryState(store).record_sales([("ORD-1", "SKU-000004", "web", 2, now - dt.timedelta(days=2)),
                                        ("ORD-2", "SKU-000006", "web", 1, now - dt.timedelta(days=40))])
    _retire(world, 4)
    _retire(world, 6)  # sold long ago: not open
    summary = run(store, erp_adapter, storefront_adapter, "r2")
    held = _held(store)
    assert list(held) == ["ITEM-000004"] and "SKU-000004 (2 units)" in held["ITEM-000004"].reason
    assert held["ITEM-000004"].reason.startswith("retired_with_open_orders")
    assert _status(storefront_adapter, 4) == "active" and _status(storefront_adapter, 6) == "archived"
    assert summary.reasons["unpublished"] == 1


def test_a_title_or_unit_change_on_a_best_seller_is_held(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERPSYNC_CATALOG_HOLD_BEST_SELLER_TOP", "1")
    run(store, erp_adapter, storefront_adapter, "r1")
    now = dt.datetime.now(dt.UTC)
    InventoryState(store).record_sales([("ORD-1", "SKU-000001", "web", 30, now), ("ORD-2", "SKU-000002", "web", 2, now)])
    before = products(storefront_adapter)["sku-000001"]["title"]
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000001", "description": "Renamed <b>mug</b>"})
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000002", "description": "Not a best seller"})
    run(store, erp_adapter, storefront_adapter, "r2")
    (held,) = _held(store).values()
    assert held.external_id == "ITEM-000001" and held.kind == "catalog_change"
    assert f"title {before!r} -> 'Renamed <b>mug</b>'" in held.reason and "30 units" in held.reason
    assert products(storefront_adapter)["sku-000001"]["title"] == before
    assert products(storefront_adapter)["sku-000002"]["title"] == "Not a best seller"
    # the ERP goes back to the old title: nothing to approve any more
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000001", "description": before})
    run(store, erp_adapter, storefront_adapter, "r3")
    assert _held(store) == {} and store.get_approval(held.id).note.startswith("superseded:")


def test_the_console_shows_the_erp_now_and_approves_only_what_the_erp_still_says(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Approvals page's reading and deciding (``erpsync_airflow.console_approvals``) on held
    retirements: the ERP's item now, approve as the given user (audited), a retirement the ERP took
    back is refused with the reason and stays pending."""
    import json

    from erpsync_airflow import console_approvals

    monkeypatch.delenv("AIRFLOW_CONN_ERPSYNC_STATE", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_ERP_DEFAULT", json.dumps({
        "conn_type": "erpsync_erp", "host": world.erp_url, "login": world.erp_user, "password": world.erp_password,
        "extra": {"adapter": "sandbox", "timeout": 5}}))
    run(store, erp_adapter, storefront_adapter, "r1")
    _retire(world, 1, 2, 3)
    run(store, erp_adapter, storefront_adapter, "r2")
    held = _held(store)
    world.admin("erp", "POST", "items", {"item_code": "ITEM-000002", "active": True})  # taken back

    now, problem = console_approvals.erp_now(store, list(held.values()))
    assert problem == ""
    assert now[held["ITEM-000001"].id].matches is True and now[held["ITEM-000001"].id].shown.startswith("retired")
    back = now[held["ITEM-000002"].id]
    assert back.matches is False and back.shown.startswith("active") and "the ERP now says active" in back.why

    results = console_approvals.decide("admin", "approved", [held["ITEM-000001"].id, held["ITEM-000002"].id], "ok")
    assert [(r[0], r[1]) for r in results] == [(held["ITEM-000001"].id, "approved"),
                                               (held["ITEM-000002"].id, "refused")]
    assert "cannot be approved: the ERP now says active" in results[1][2]
    assert store.get_approval(held["ITEM-000001"].id).decided_by == "admin"
    assert store.get_approval(held["ITEM-000002"].id).status == "pending"
    (audit,) = store.list_audit(correlation_id=f"approval:{held['ITEM-000001'].id}")
    assert (audit.operation, audit.request["by"], audit.system) == ("approval_approve", "admin", "operator")
    rejected = console_approvals.decide("admin", "rejected", [held["ITEM-000003"].id, 999999], "import error")
    assert [(r[0], r[1]) for r in rejected] == [(999999, "error"), (held["ITEM-000003"].id, "rejected")]
    assert store.get_approval(held["ITEM-000003"].id).note == "import error"
