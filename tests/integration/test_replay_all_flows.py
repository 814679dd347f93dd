"""Dead-letter replay for every flow that dead-letters, against the sandbox: each dead letter comes
from a real run; the replay goes through the flow's own path (dry run first, an edited payload
where the record is the payload) and resolves it once; pricing and inventory, which recompute
from the source, print what to do instead of a replay command that could only fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import requests

from erpsync.errors import ConfigError
from erpsync.flows import catalog, erasure, inventory, pricing, returns, shipments
from erpsync.flows.base import NOT_REPLAYED, REPLAY_HINT
from erpsync.flows.replay import REPLAYERS, ReplayFilter, replay, replay_many
from erpsync.rules.guests import guest_external_id
from erpsync.state import StateStore
from erpsync.state import schema as t
from tests.fixtures.clock import pricing_clock
from tests.integration.test_flows_sandbox import ctx_for, sync_all
from tests.integration.test_returns_sandbox import _open_return
from tests.integration.test_shipments_sandbox import place_order

pytestmark = pytest.mark.integration

#: every flow whose runs can dead-letter a record (the DAGs of the product but the watchdog, the
#: reconciliation report, the replay and the migration, which write under the live flows' names)
DEAD_LETTERING_FLOWS = {"customers_sync", "orders_sync", "catalog_sync", "pricing_sync", "inventory_sync",
                        "inventory_fast_lane", "inventory_drift_check", "shipments_sync", "returns_sync",
                        "customer_erasure"}


def test_every_flow_that_dead_letters_is_replayable_or_says_what_to_do() -> None:
    assert DEAD_LETTERING_FLOWS <= set(REPLAYERS) | set(NOT_REPLAYED)
    assert not set(REPLAYERS) & set(NOT_REPLAYED)


def _assert_replay_commands(summary: Any) -> list[int]:
    """The task log's summary names the replay command of each dead letter; returns their ids."""
    text = summary.render()
    ids = [d[0] for d in summary.dead_letters]
    assert ids, text
    for dl_id in ids:
        assert REPLAY_HINT.format(id=dl_id) in text
    assert '"dry_run": true' in text and "not replayed" not in text
    return ids


# --------------------------------------------------------------------------- catalog_sync


def test_catalog_product_replayed_with_an_edited_payload(fresh: Any, store: StateStore, erp_adapter: Any,
                                                         storefront_adapter: Any) -> None:
    fresh.admin("erp", "POST", "items", {"item_code": "ITEM-000003", "uom": "BARREL"})
    run = catalog.run(ctx_for("catalog_sync", store, erp_adapter, storefront_adapter, "cat-1"))
    (dl_id,) = _assert_replay_commands(run)
    dl = store.get_dead_letter(dl_id)
    assert isinstance(dl.payload, list) and "unit_of_measure" in dl.reason
    ctx = ctx_for("catalog_sync", store, erp_adapter, storefront_adapter, "cat-replay")

    assert replay(ctx, dl, dry_run=True).result == "would_fail"  # as it is, it still cannot be mapped
    again = replay(ctx, dl)
    assert again.result == "failed_again" and store.get_dead_letter(dl_id).attempts == dl.attempts + 1

    edited = [dict(item, uom="EA") for item in dl.payload]
    writes = fresh.stats("storefront")["writes_committed"]
    dry = replay(ctx, store.get_dead_letter(dl_id), payload=edited, dry_run=True)
    assert dry.result == "would_send" and '"sku": "SKU-000003"' in dry.detail
    assert fresh.stats("storefront")["writes_committed"] == writes  # a dry run writes nothing
    done = replay(ctx, store.get_dead_letter(dl_id), payload=edited)
    assert done.result == "resolved", done
    assert store.get_dead_letter(dl_id).status == "resolved"
    product = store.get_xref("storefront", "product", "ITEM-000003")
    assert product is not None and store.get_xref("storefront", "variant", "SKU-000003") is not None
    once = replay(ctx, store.get_dead_letter(dl_id), payload=edited)  # the same product again: unchanged
    assert once.result == "skipped" and "unchanged" in once.detail


# --------------------------------------------------------------------------- shipments_sync


def test_shipment_replayed_once_after_its_item_is_bound_again(fresh: Any, store: StateStore, erp_adapter: Any,
                                                              storefront_adapter: Any) -> None:
    order = place_order(fresh, [("SKU-000004", 1)], email="replay.ship@example.com")
    sync_all(store, erp_adapter, storefront_adapter)
    so = erp_adapter.find_sales_order(order["id"])
    fresh.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
    code = so["lines"][0]["item_code"]
    binding = store.get_xref_by_internal("erp", "item", code)
    with store.engine.begin() as conn:  # the binding of that item is lost
        conn.execute(t.xref.delete().where(t.xref.c.entity == "item", t.xref.c.internal_id == code))
    run = shipments.run(ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "ship-1"))
    (dl_id,) = _assert_replay_commands(run)
    ctx = ctx_for("shipments_sync", store, erp_adapter, storefront_adapter, "ship-replay")
    assert replay(ctx, store.get_dead_letter(dl_id), dry_run=True).result == "would_fail"

    store.upsert_xref("erp", "item", binding.external_id, code)  # the catalog binds it again
    dry = replay(ctx, store.get_dead_letter(dl_id), dry_run=True)
    assert dry.result == "would_send" and f"store order {order['id']}" in dry.detail
    assert storefront_adapter.get_order(order["id"])["fulfillments"] == []
    done = replay(ctx, store.get_dead_letter(dl_id))
    assert done.result == "resolved", done
    assert len(storefront_adapter.get_order(order["id"])["fulfillments"]) == 1
    again = replay(ctx, store.get_dead_letter(dl_id))
    assert again.result == "skipped" and len(storefront_adapter.get_order(order["id"])["fulfillments"]) == 1


# --------------------------------------------------------------------------- returns_sync


def test_return_replayed_once_its_order_reached_the_erp(fresh: Any, store: StateStore, erp_adapter: Any,
                                                        storefront_adapter: Any) -> None:
    order = place_order(fresh, [("SKU-000002", 2)], email="replay.return@example.com")
    sync_all(store, erp_adapter, storefront_adapter)
    so = erp_adapter.find_sales_order(order["id"])
    fresh.admin("erp", "POST", "ship", {"order_no": so["order_no"], "carrier": "UPS"})
    ret = _open_return(fresh, order["id"], [("SKU-000002", 1)])
    bound = store.get_xref("erp", "sales_order", order["id"])
    with store.engine.begin() as conn:  # as if orders_sync had not synced the order yet
        conn.execute(t.xref.delete().where(t.xref.c.entity == "sales_order", t.xref.c.external_id == order["id"]))
    run = returns.run(ctx_for("returns_sync", store, erp_adapter, storefront_adapter, "ret-1"))
    ids = _assert_replay_commands(run)
    dl = next(store.get_dead_letter(i) for i in ids if store.get_dead_letter(i).external_id == ret["id"])
    assert dl.reason.startswith("order_not_synced")
    ctx = ctx_for("returns_sync", store, erp_adapter, storefront_adapter, "ret-replay")
    dry = replay(ctx, dl, dry_run=True)
    assert dry.result == "would_fail" and "order_not_synced" in dry.detail

    store.upsert_xref("erp", "sales_order", order["id"], bound.internal_id)  # orders_sync caught up
    dry = replay(ctx, dl, dry_run=True)
    assert dry.result == "would_send" and dry.detail.startswith("create ERP return")
    assert erp_adapter.find_return(ret["id"]) is None
    done = replay(ctx, dl)
    assert done.result == "resolved", done
    rma = erp_adapter.find_return(ret["id"])
    assert rma is not None and storefront_adapter.get_return(ret["id"])["erp_reference"] == rma["rma_no"]
    again = replay(ctx, store.get_dead_letter(dl.id))
    assert again.result == "skipped"
    assert len(list(erp_adapter.list_returns())) == 1  # opened once


# --------------------------------------------------------------------------- customer_erasure


def test_erasure_replayed_after_review_reads_the_request_from_the_store(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    email = "buyer@corp.example"
    erp_customer = erp_adapter.create_customer({"name": "B2B Buyer", "email": email}, idempotency_key="t-replay-b2b")
    fresh.admin("storefront", "POST", "erasure_requests", {"email": email})
    run = erasure.run(ctx_for("customer_erasure", store, erp_adapter, storefront_adapter, "erase-1"))
    (dl_id,) = _assert_replay_commands(run)
    dl = store.get_dead_letter(dl_id)
    assert email not in json.dumps(dl.payload)  # the dead letter keeps no personal data
    ctx = ctx_for("customer_erasure", store, erp_adapter, storefront_adapter, "erase-replay")
    dry = replay(ctx, dl, dry_run=True)
    assert dry.result == "would_fail" and "erasure_needs_review" in dry.detail
    with pytest.raises(ConfigError, match="cannot be edited"):
        replay(ctx, dl, payload={"id": dl.external_id, "customer_id": "C999"})

    # the person decided: that ERP customer is this guest
    store.upsert_xref("erp", "customer", guest_external_id(email), erp_customer["customer_no"])
    dry = replay(ctx, dl, dry_run=True)
    assert dry.result == "would_send" and erp_customer["customer_no"] in dry.detail
    assert storefront_adapter.list_erasure_requests(status="pending")  # nothing done by the dry run
    done = replay(ctx, dl)
    assert done.result == "resolved", done
    assert storefront_adapter.list_erasure_requests(status="pending") == []
    assert fresh.stats("erp")["customers_anonymised"] == 1
    after = requests.get(f"{fresh.erp_url}/api/customers/{erp_customer['customer_no']}",
                         headers={"X-Session-Id": erp_adapter.login()}, timeout=5).json()
    assert after["email"] is None
    again = replay(ctx, store.get_dead_letter(dl_id))
    assert again.result == "skipped" and "no_longer_pending" in again.detail


# --------------------------------------------------------------------------- pricing, inventory


def _assert_instruction(summary: Any, store: StateStore, ctx: Any) -> None:
    """No replay command for these flows: the log says what to do instead, and so does a replay."""
    text = summary.render()
    ids = [d[0] for d in summary.dead_letters]
    assert ids, text
    assert "dead-letters replay" not in text and "dead_letter_replay" not in text
    assert f"not replayed one by one: {NOT_REPLAYED[summary.flow]}" in text
    assert f"erpsync dead-letters ignore {' '.join(map(str, ids))}" in text
    with pytest.raises(ConfigError, match="not replayed one by one"):
        replay(ctx, store.get_dead_letter(ids[0]))
    report = replay_many(lambda flow: ctx, store, ReplayFilter(flow=summary.flow), dry_run=True)
    assert {o.result for o in report.outcomes} == {"error"}
    assert all(NOT_REPLAYED[summary.flow] in o.detail for o in report.outcomes)


def test_pricing_dead_letters_say_to_run_a_full_pass(fresh: Any, store: StateStore, erp_adapter: Any,
                                                     storefront_adapter: Any) -> None:
    fresh.admin("erp", "POST", "prices", {"set": [
        {"item_code": "ITEM-000003", "price_list": "LIST", "currency": "USD", "price": "-1.00"}]})
    ctx = ctx_for("pricing_sync", store, erp_adapter, storefront_adapter, "price-1")
    with pricing_clock("2026-11-24T12:00:00Z"):
        summary = pricing.run(ctx)
    assert '{"full_pass": true}' in NOT_REPLAYED["pricing_sync"]
    _assert_instruction(summary, store, ctx)


def test_inventory_dead_letters_say_the_next_cycle_recomputes(fresh: Any, store: StateStore, erp_adapter: Any,
                                                              storefront_adapter: Any) -> None:
    ctx = ctx_for("inventory_sync", store, erp_adapter, storefront_adapter, "inv-1",
                  location_map={"MAIN": "MAIN", "EAST": "NOWHERE", "WEST": "NOWHERE"})
    summary = inventory.run(ctx)
    assert summary.quarantined > 0
    _assert_instruction(summary, store, ctx)


# --------------------------------------------------------------------------- the printed command


def test_the_printed_commands_work_from_the_cli(fresh: Any, store: StateStore, erp_adapter: Any,
                                                storefront_adapter: Any, tmp_path: Any) -> None:
    fresh.admin("erp", "POST", "items", {"item_code": "ITEM-000003", "uom": "BARREL"})
    cat = catalog.run(ctx_for("catalog_sync", store, erp_adapter, storefront_adapter, "cat-cli"))
    fresh.admin("erp", "POST", "prices", {"set": [
        {"item_code": "ITEM-000002", "price_list": "LIST", "currency": "USD", "price": "-1.00"}]})
    with pricing_clock("2026-11-24T12:00:00Z"):
        price = pricing.run(ctx_for("pricing_sync", store, erp_adapter, storefront_adapter, "price-cli"))
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW_CONN_ERP_DEFAULT=json.dumps({
            "conn_type": "erpsync_erp", "host": fresh.erp_url, "login": fresh.erp_user,
            "password": fresh.erp_password, "extra": {"adapter": "sandbox"}}),
        AIRFLOW_CONN_STOREFRONT_DEFAULT=json.dumps({
            "conn_type": "erpsync_storefront", "host": fresh.storefront_url, "password": fresh.token,
            "extra": {"adapter": "sandbox"}}),
    )
    cli = [sys.executable, "-m", "erpsync_airflow.cli"]
    cat_id = cat.dead_letters[0][0]
    printed = REPLAY_HINT.format(id=cat_id).split()[1:]  # the command the task log prints
    done = subprocess.run([*cli, *printed, "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and f"#{cat_id}" in done.stdout and "would_fail" in done.stdout, done.stderr
    assert "has no replayer" not in done.stdout + done.stderr
    price_id = price.dead_letters[0][0]
    done = subprocess.run([*cli, "dead-letters", "replay", "--id", str(price_id)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "not replayed one by one" in done.stderr and "full_pass" in done.stderr
