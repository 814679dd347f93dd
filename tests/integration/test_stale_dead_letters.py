"""Issue 20 item 8: no stale dead letters. orders_sync against the sandbox over HTTP.

* an order already synced that fails the quality gate on a re-read within the lookback (its e-mail
  made invalid after the sync) is not a new open dead letter, and a stale letter of it is resolved;
* an order dead-lettered by the gate and fixed at the source syncs on the next run and its dead
  letter is resolved.

The sandbox cannot edit a placed order, so ``EditedStorefront`` plays the source edit: it reads the
sandbox over HTTP through the real adapter and changes the e-mail of the chosen orders on the way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from erpsync.flows import customers, orders
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore
from tests.integration.test_flows_sandbox import ctx_for, paid_orders, sync_all

pytestmark = pytest.mark.integration


class EditedStorefront:
    """The real storefront adapter, with ``bad`` orders' e-mail made invalid as if edited at the source."""

    def __init__(self, real: Any, bad: set[str]) -> None:
        self._real = real
        self.bad = bad

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def list_orders(self, *args: Any, **kwargs: Any) -> Any:
        for raw in self._real.list_orders(*args, **kwargs):
            if str(raw.get("id")) in self.bad:
                raw = {**raw, "email": "not an address", "customer": {**(raw.get("customer") or {}), "email": "nope"}}
            yield raw


def scheduled(store: StateStore, erp: Any, sf: Any, run_id: str, since: dt.datetime) -> FlowContext:
    """A scheduled run whose data interval starts at ``since``: it re-reads what changed since then."""
    ctx = ctx_for("orders_sync", store, erp, sf, run_id)
    ctx.interval_start, ctx.interval_end = since, dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    return ctx


def updated(sf: Any, oid: str) -> dt.datetime:
    raw = paid_orders(sf)[oid]
    return dt.datetime.fromisoformat(str(raw.get("updated_at") or raw["created_at"]).replace("Z", "+00:00"))


def open_letters(store: StateStore) -> dict[str, Any]:
    return {d.external_id: d for d in store.list_dead_letters(flow="orders_sync")}


def test_synced_order_read_again_in_a_bad_state_is_no_new_dead_letter(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    _, first = sync_all(store, erp_adapter, storefront_adapter)
    assert first.done > 0
    synced = sorted(oid for oid in paid_orders(storefront_adapter) if store.get_xref("erp", "sales_order", oid))
    assert len(synced) >= 2
    victim, other = synced[0], synced[1]
    # a stale letter from before this fix (the gate filed it although the order was synced)
    store.add_dead_letter("orders_sync", "order", other, {"id": other}, "bad_email: customer_email='x'",
                          error_kind="quality")
    before = set(open_letters(store))
    orders_before = fresh.stats("erp")["sales_orders"]

    edited = EditedStorefront(storefront_adapter, {victim})
    since = min(updated(storefront_adapter, victim), updated(storefront_adapter, other))
    second = orders.run(scheduled(store, erp_adapter, edited, "run-2", since))

    letters = open_letters(store)
    assert victim not in letters  # synced before: its bad re-read loses nothing, no new letter
    assert second.reasons["already_synced_failed_gate"] == 1
    assert second.quarantined == 0 and second.done == 0
    assert other not in letters  # the stale letter of a synced order that re-read clean is resolved
    assert set(letters) == before - {other}
    assert fresh.stats("erp")["sales_orders"] == orders_before

    # the same order read bad while it had a (stale) open letter: the letter is resolved too
    store.add_dead_letter("orders_sync", "order", victim, {"id": victim}, "bad_email: customer_email='x'",
                          error_kind="quality")
    orders.run(scheduled(store, erp_adapter, edited, "run-3", since))
    assert victim not in open_letters(store)
    assert store.list_dead_letters(flow="orders_sync", status="resolved")


def test_dead_lettered_order_fixed_at_the_source_syncs_and_its_letter_is_resolved(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    victim = sorted(paid_orders(storefront_adapter))[0]
    edited = EditedStorefront(storefront_adapter, {victim})
    _, first = sync_all(store, erp_adapter, edited)
    letters = open_letters(store)
    assert victim in letters and "email" in letters[victim].reason  # never synced: a real dead letter
    assert erp_adapter.find_sales_order(victim) is None
    policy = {oid for oid, d in letters.items() if d.error_kind not in ("quality", "mapping", "limits")}

    edited.bad.clear()  # fixed at the source; the next run's window holds it again
    second = orders.run(scheduled(store, erp_adapter, edited, "run-2", updated(storefront_adapter, victim)))
    assert second.done >= 1
    assert erp_adapter.find_sales_order(victim) is not None
    assert victim not in open_letters(store)
    assert policy <= set(open_letters(store))  # the flow's own letters (not the gate's) stay open
    assert fresh.stats("erp")["duplicate_external_refs"] == 0


def test_stale_gate_letter_of_an_unchanged_synced_customer_is_resolved(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    """customers_sync: a customer whose gate letter is open (a bad minute) and whose re-read is the
    content the ERP already has (xref content hash) gets the letter resolved, not left stale; the
    flow's own letter of another kind stays open."""
    first, _ = sync_all(store, erp_adapter, storefront_adapter)
    assert first.done > 0
    raws = {str(r["id"]): r for r in storefront_adapter.list_customers()}
    synced = sorted(cid for cid in raws if store.get_xref("erp", "customer", cid))
    stale, own = synced[0], synced[1]
    store.add_dead_letter("customers_sync", "customer", stale, raws[stale], "bad_email: email='x'",
                          error_kind="quality")
    store.add_dead_letter("customers_sync", "customer", own, raws[own], "ambiguous_match: two ERP customers",
                          error_kind="conflict")
    # a lookback reaching back past the seed: the run re-reads every customer
    ctx = ctx_for("customers_sync", store, erp_adapter, storefront_adapter, "run-2", lookback_minutes=60 * 24 * 365 * 30)
    second = customers.run(ctx)
    assert second.read == len(raws)
    assert second.done == 0 and second.quarantined == 0
    letters = {d.external_id for d in store.list_dead_letters(flow="customers_sync")}
    assert stale not in letters and own in letters
