"""A Vendure customer's erasure request reaches Tryton through customer_erasure: Tryton erases the
party with its own "Erase" wizard, or refuses while the party has pending documents (the request
then waits in the dead letters with Tryton's reason). The flow is the one that runs against the
sandbox: only the adapters, built from the Connections, differ.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from erpsync.flows import customers, erasure, orders
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore
from tests.e2e.shop import add_customer, add_product, add_store_product, place_order, request_erasure

pytestmark = pytest.mark.e2e


def flow_ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params={},
                               log=logging.getLogger(f"e2e.{flow}"))


def party(erp: Any, code: str) -> dict[str, Any]:
    rows = erp.search_read("party.party", [("code", "=", code), ("active", "in", [True, False])],
                           ["code", "name", "active", "contact_mechanisms", "identifiers", "addresses"], limit=1)
    return rows[0]


def test_erasure_request_in_vendure_erases_the_tryton_party_or_waits_for_its_pending_sale(
        erp: Any, storefront: Any, store: StateStore) -> None:
    grace = add_customer(storefront, "grace@example.com", "Grace", "Hopper")
    assert customers.run(flow_ctx("customers_sync", store, erp, storefront, "c-1")).done == 1
    grace_no = store.get_xref("erp", "customer", grace["id"]).internal_id
    assert party(erp, grace_no)["name"] == "Grace Hopper"
    # a second customer has an order Tryton has not shipped yet
    add_product(erp, "MUG-1", "Mug", "12.50", stock=5)
    add_store_product(storefront, "MUG-1", "Mug", "12.50")
    placed = place_order(storefront, "ada@example.com", {"MUG-1": 1})
    assert orders.run(flow_ctx("orders_sync", store, erp, storefront, "o-1")).done == 1
    ada_no = store.get_xref("erp", "customer", placed["customer"]["id"]).internal_id

    request_erasure(storefront, grace["id"])
    request_erasure(storefront, placed["customer"]["id"])
    s1 = erasure.run(flow_ctx("customer_erasure", store, erp, storefront, "e-1"))
    assert (s1.done, s1.quarantined) == (1, 1), s1.render()

    # Grace: Tryton erased the party (name, e-mail, addresses, the store identifier); the request is done
    erased = party(erp, grace_no)
    assert (erased["name"], erased["active"], erased["contact_mechanisms"], erased["identifiers"]) == (
        None, False, [], [])
    assert erp.find_customers(email="grace@example.com") == []
    assert [c["id"] for c in storefront.list_erasure_requests(status="completed")] == [grace["id"]]
    # Ada: Tryton refuses while her sale is pending; the party is untouched and active again
    (dl_id, ext, reason), = s1.dead_letters
    assert ext == placed["customer"]["id"] and "pending" in reason and ada_no in reason, reason
    assert party(erp, ada_no)["active"] is True and party(erp, ada_no)["name"] == "Ada Lovelace"
    assert [c["id"] for c in storefront.list_erasure_requests(status="pending")] == [placed["customer"]["id"]]
    # nothing personal in what erpsync kept of it
    kept = json.dumps([r.request for r in store.list_audit(flow="customer_erasure")] +
                      [r.response for r in store.list_audit(flow="customer_erasure")] +
                      [d.payload for d in store.list_dead_letters(flow="customer_erasure")] + [reason], default=str)
    for personal in ("grace@example.com", "ada@example.com", "Hopper", "Lovelace"):
        assert personal not in kept, personal

    # the next run tries Ada again (still refused) and leaves Grace alone
    s2 = erasure.run(flow_ctx("customer_erasure", store, erp, storefront, "e-2"))
    assert (s2.done, s2.quarantined) == (0, 1), s2.render()
