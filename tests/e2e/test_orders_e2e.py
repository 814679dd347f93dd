"""A shopper's order in Vendure becomes a confirmed sale in Tryton, exactly once, customer first.

The flows are the very ones that run against the sandbox: only the adapters (built from
Connections by the registry) differ.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from erpsync.flows import customers, orders
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore
from tests.e2e.shop import add_product, add_store_product, place_order

pytestmark = pytest.mark.e2e


def ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params={},
                               log=logging.getLogger(f"e2e.{flow}"))


def sales_with_reference(erp: Any, reference: str) -> list[dict[str, Any]]:
    return erp.search_read("sale.sale", [("reference", "=", reference)], ["number", "state", "party.code"])


def test_order_becomes_one_confirmed_sale_with_its_customer_first(erp: Any, storefront: Any, store: StateStore,
                                                                   tmp_path: Any) -> None:
    add_product(erp, "MUG-1", "Mug", "12.50", stock=20)
    add_product(erp, "TEE-1", "T-shirt", "20.00", stock=20)
    for sku, name, price in (("MUG-1", "Mug", "12.50"), ("TEE-1", "T-shirt", "20.00")):
        add_store_product(storefront, sku, name, price)
    placed = place_order(storefront, "ada@example.com", {"MUG-1": 2, "TEE-1": 1})
    code = placed["code"]

    summary = orders.run(ctx("orders_sync", store, erp, storefront, "run-1"))
    assert (summary.done, summary.quarantined, summary.failed) == (1, 0, 0), summary.render()

    sale = erp.find_sales_order(code)
    assert sale is not None and sale["state"] == "processing", sale
    # the customer was created first, carrying the storefront customer id
    party = erp.get_customer(sale["party.code"])
    assert party["name"] == "Ada Lovelace"
    assert {"type": "email", "value": "ada@example.com"} in [
        {"type": c["type"], "value": c["value"]} for c in party["contact_mechanisms"]]
    assert f"store:{placed['customer']['id']}" in [i["code"] for i in party["identifiers"]]
    # lines, shipping and total as in the store (the test shop charges no tax)
    lines = {ln["product.code"]: Decimal(str(ln["quantity"])) for ln in sale["lines"]}
    assert lines == {"MUG-1": 2, "TEE-1": 1, "SHIPPING": 1}
    assert Decimal(sale["total_amount"]) == Decimal(placed["totalWithTax"]) / 100 == Decimal("50.00")
    # confirming created the customer shipment
    assert len(sale["shipments"]) == 1

    # exactly once: a second run skips it; a run that lost all its state finds it in Tryton
    again = orders.run(ctx("orders_sync", store, erp, storefront, "run-2"))
    assert again.done == 0 and again.skipped == 1, again.render()
    amnesiac = StateStore.from_url(f"sqlite:///{tmp_path / 'lost.db'}")
    amnesiac.migrate()
    try:
        lost = orders.run(ctx("orders_sync", amnesiac, erp, storefront, "run-3"))
        assert lost.done == 1, lost.render()
    finally:
        amnesiac.close()
    assert len(sales_with_reference(erp, code)) == 1
    assert len(erp.find_customers(email="ada@example.com")) == 1


def test_customers_sync_creates_the_party_once(erp: Any, storefront: Any, store: StateStore) -> None:
    add_product(erp, "CAP-1", "Cap", "9.00")
    add_store_product(storefront, "CAP-1", "Cap", "9.00")
    placed = place_order(storefront, "grace@example.com", {"CAP-1": 1}, first="Grace", last="Hopper")

    first = customers.run(ctx("customers_sync", store, erp, storefront, "c-1"))
    assert first.done == 1 and first.quarantined == 0, first.render()
    second = customers.run(ctx("customers_sync", store, erp, storefront, "c-2"))
    assert second.done == 0, second.render()
    parties = erp.find_customers(email="grace@example.com")
    assert len(parties) == 1 and parties[0]["name"] == "Grace Hopper"
    # the order then reuses that party
    assert orders.run(ctx("orders_sync", store, erp, storefront, "o-1")).done == 1
    assert erp.find_sales_order(placed["code"])["party.code"] == parties[0]["code"]
