"""Dead-letter replay against the sandbox: the kept payload goes through the flow again, once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from erpsync.flows import orders
from erpsync.flows.replay import replay
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import ctx_for

pytestmark = pytest.mark.integration


def _held_guest_orders(store: StateStore, erp: Any, sf: Any) -> list:
    ctx = ctx_for("orders_sync", store, erp, sf, "run-hold", guest_policy="hold")
    orders.run(ctx)
    held = [d for d in store.list_dead_letters(flow="orders_sync") if d.reason.startswith("guest_held")]
    assert held, "the seed has guest orders; with guest_policy=hold they must be dead-lettered"
    return held


def test_replay_dry_run_writes_nothing_then_replay_resolves_once(fresh, store, erp_adapter, storefront_adapter):
    held = _held_guest_orders(store, erp_adapter, storefront_adapter)
    dl = held[0]
    ctx = ctx_for("orders_sync", store, erp_adapter, storefront_adapter, "replay-1", guest_policy="shared_account")

    dry = replay(ctx, dl, dry_run=True)
    assert dry.result == "would_send" and dl.external_id in dry.detail
    assert erp_adapter.find_sales_order(dl.external_id) is None

    out = replay(ctx, dl)
    assert out.result == "resolved"
    assert store.get_dead_letter(dl.id).status == "resolved"
    so = erp_adapter.find_sales_order(dl.external_id)
    assert so is not None

    again = replay(ctx, store.get_dead_letter(dl.id))  # a second replay must not post it twice
    assert again.result == "skipped"
    assert erp_adapter.find_sales_order(dl.external_id)["order_no"] == so["order_no"]
    assert fresh.stats("erp").get("duplicate_external_refs", 0) == 0


def test_replay_with_an_edited_payload_that_still_fails_bumps_attempts(fresh, store, erp_adapter, storefront_adapter):
    dl = _held_guest_orders(store, erp_adapter, storefront_adapter)[0]
    bad = dict(dl.payload, currency="usd")  # an edit that breaks the mapping
    ctx = ctx_for("orders_sync", store, erp_adapter, storefront_adapter, "replay-2", guest_policy="shared_account")
    assert replay(ctx, dl, payload=bad, dry_run=True).result == "would_fail"
    out = replay(ctx, dl, payload=bad)
    assert out.result == "failed_again" and "currency" in out.detail
    after = store.get_dead_letter(dl.id)
    assert after.status == "open" and after.attempts == dl.attempts + 1


def test_cli_lists_and_replays_through_connections(fresh, store, erp_adapter, storefront_adapter, tmp_path):
    dl = _held_guest_orders(store, erp_adapter, storefront_adapter)[0]
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
    listed = subprocess.run([*cli, "dead-letters", "list", "--flow", "orders_sync"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert dl.external_id in listed.stdout and "guest_held" in listed.stdout
    done = subprocess.run([*cli, "dead-letters", "replay", "--id", str(dl.id), "--param", "guest_policy=shared_account"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "resolved" in done.stdout
    assert erp_adapter.find_sales_order(dl.external_id) is not None


def test_cli_without_connection_says_what_to_set(store, tmp_path):
    dl_id = store.add_dead_letter("orders_sync", "order", "O1", {"id": "O1"}, "unknown_sku: X")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    r = subprocess.run([sys.executable, "-m", "erpsync_airflow.cli", "dead-letters", "replay", "--id", str(dl_id)],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1  # one line, no stack trace
    assert "'erp_default' is not defined" in r.stderr and "AIRFLOW_CONN_ERP_DEFAULT" in r.stderr


def test_order_replay_passes_the_quality_gate_like_a_run(fresh, store, erp_adapter, storefront_adapter):
    """An edit that maps but fails the order suite (a currency the business does not trade in,
    a total that does not add up) is refused by the replay as a run would refuse it: nothing reaches
    the ERP, the same dead letter carries the gate's reason; a good edit is written once."""
    dl = _held_guest_orders(store, erp_adapter, storefront_adapter)[0]
    ctx = ctx_for("orders_sync", store, erp_adapter, storefront_adapter, "replay-q", guest_policy="shared_account")
    for edit, reason in (({"currency": "XXX"}, "bad_currency: currency='XXX'"),
                         ({"total_price": "99999.00"}, "total_mismatch: computed")):
        bad = dict(dl.payload, **edit)
        dry = replay(ctx, dl, payload=bad, dry_run=True)
        assert dry.result == "would_fail" and dry.detail.startswith(f"quality gate: {reason}"), dry
        out = replay(ctx, store.get_dead_letter(dl.id), payload=bad)
        assert out.result == "failed_again" and out.detail.startswith(reason), out
        assert erp_adapter.find_sales_order(dl.external_id) is None
    after = store.get_dead_letter(dl.id)
    assert after.status == "open" and after.attempts == dl.attempts + 2 and after.reason.startswith("total_mismatch")
    assert replay(ctx, after, payload=dl.payload).result == "resolved"  # the original, unedited
    assert erp_adapter.find_sales_order(dl.external_id) is not None


def test_customer_replay_passes_the_quality_gate(fresh, store, erp_adapter, storefront_adapter):
    from erpsync.flows import customers

    ctx = ctx_for("customers_sync", store, erp_adapter, storefront_adapter, "cust-1")
    customers.run(ctx)
    raw = next(iter(storefront_adapter.list_customers()))
    # "ZZ" has the shape of a country code (the mapping takes it) but is no assigned one (the suite)
    bad = dict(raw, id="C-REPLAY-1", addresses=[dict(a, country_code="ZZ") for a in raw["addresses"]])
    assert raw["addresses"]
    dl_id = store.add_dead_letter("customers_sync", "customer", "C-REPLAY-1", bad, "erp_rejected: 422 test")
    dl = store.get_dead_letter(dl_id)
    dry = replay(ctx, dl, dry_run=True)
    assert dry.result == "would_fail" and dry.detail.startswith("quality gate: bad_country: country='ZZ'"), dry
    out = replay(ctx, dl)
    assert out.result == "failed_again" and out.detail.startswith("bad_country"), out
    assert store.get_xref("erp", "customer", "C-REPLAY-1") is None  # nothing was written or matched
    assert store.get_dead_letter(dl.id).attempts == dl.attempts + 1
