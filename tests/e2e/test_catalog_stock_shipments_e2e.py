"""Catalog and stock from Tryton to Vendure, a Tryton shipment back as a Vendure fulfilment with
tracking, and a return (Tryton return sale -> Vendure refund).

The catalog, inventory, shipment and return flows are written against the sandbox in their own
issues; until they select their mapping through the adapter (as customers_sync and orders_sync
do), these tests drive the same steps with the adapters and the Tryton/Vendure mappings: read in
the master, map to canonical, map to the target, write idempotently, run twice.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from erpsync.flows import orders
from erpsync.flows.base import FlowContext
from erpsync.mappings import erp_tryton, storefront_vendure
from erpsync.state import StateStore
from tests.e2e.shop import add_product, place_order

pytestmark = pytest.mark.e2e


def publish_catalog(erp: Any, sf: Any) -> int:
    prices = {p.sku: p for p in map(erp_tryton.price_from_erp, erp.list_prices())}
    n = 0
    for raw in erp.list_items():
        product = erp_tryton.product_from_erp(raw)
        sf.upsert_product(storefront_vendure.product_to_storefront(product, prices),
                          idempotency_key=f"product:{product.code}")
        n += 1
    return n


def publish_stock(erp: Any, sf: Any) -> dict[str, int]:
    items = [storefront_vendure.inventory_to_storefront(erp_tryton.inventory_from_erp(r)) for r in erp.list_stock()]
    sf.set_inventory(items, idempotency_key="stock")
    return {i["sku"]: i["stock_on_hand"] for i in items}


def test_catalog_and_stock_go_from_tryton_to_vendure(erp: Any, storefront: Any) -> None:
    add_product(erp, "LAMP-1", "Desk lamp", "39.90", stock=7)
    add_product(erp, "BULB-1", "Bulb", "4.25", stock=0)
    assert publish_catalog(erp, storefront) == 2
    assert publish_catalog(erp, storefront) == 2  # a second pass updates, never duplicates
    lamp = storefront.find_variant("LAMP-1")
    assert lamp["price"] == 3990 and lamp["product"]["name"] == "Desk lamp"
    assert len([v for v in storefront.list_inventory() if v["sku"] == "LAMP-1"]) == 1

    assert publish_stock(erp, storefront) == {"LAMP-1": 7, "BULB-1": 0}
    assert storefront.find_variant("LAMP-1")["stockOnHand"] == 7
    # price and stock changes in Tryton follow
    erp.model("product.template", "write", [erp.find_item_by_sku("LAMP-1")["template"]],
              {"list_price": erp_tryton.Decimal("35.00")}, write=True)
    erp.set_stock({"LAMP-1": 3})
    publish_catalog(erp, storefront)
    publish_stock(erp, storefront)
    lamp = storefront.find_variant("LAMP-1")
    assert (lamp["price"], lamp["stockOnHand"]) == (3500, 3)


def _sync_order(erp: Any, sf: Any, store: StateStore) -> dict[str, Any]:
    add_product(erp, "BOOK-1", "Notebook", "8.00", stock=10)
    publish_catalog(erp, sf)
    publish_stock(erp, sf)
    placed = place_order(sf, "linus@example.com", {"BOOK-1": 3}, first="Linus", last="Torvalds")
    ctx = FlowContext(flow="orders_sync", run_id="r1", store=store, erp=erp, storefront=sf, params={},
                      log=logging.getLogger("e2e.orders_sync"))
    assert orders.run(ctx).done == 1
    return placed


def test_tryton_shipment_comes_back_as_a_fulfilment_with_tracking(erp: Any, storefront: Any,
                                                                  store: StateStore) -> None:
    placed = _sync_order(erp, storefront, store)
    # a confirmed sale takes the stock from the forecast: the store may sell 7 now
    assert publish_stock(erp, storefront)["BOOK-1"] == 7
    shipment, = erp.shipments_of_sale(placed["code"])
    erp.ship(shipment["id"], tracking="1Z999AA10123456784", carrier="UPS")

    done = [erp_tryton.shipment_from_erp(s) for s in erp.list_shipments()]
    assert [(s.order_external_id, s.status) for s in done] == [(placed["code"], "shipped")]
    for _ in range(2):  # sent twice: one fulfilment
        for payload in storefront_vendure.fulfillment_to_storefront(done[0]):
            storefront.add_fulfillment(done[0].order_external_id, payload, idempotency_key=done[0].external_id)
    order = storefront.get_order(placed["code"])
    assert [(f["trackingCode"], f["method"], f["state"]) for f in order["fulfillments"]] == [
        ("1Z999AA10123456784", "UPS", "Shipped")]
    assert order["state"] == "Shipped"
    assert publish_stock(erp, storefront)["BOOK-1"] == 7  # shipped: on hand 7, nothing allocated


def test_return_in_tryton_is_refunded_in_vendure(erp: Any, storefront: Any, store: StateStore) -> None:
    placed = _sync_order(erp, storefront, store)
    rma = f"RMA-{placed['code']}"
    for _ in range(2):  # a retried return makes one return sale
        ret = erp.create_return(placed["code"], [{"product": "BOOK-1", "quantity": 1, "unit_price": "8.00"}], rma=rma)
    assert ret["state"] == "processing" and len(ret["shipment_returns"]) == 1
    assert len(erp.search_read("sale.sale", [("reference", "=", rma)], ["id"])) == 1
    received = erp.receive_return(rma)
    returns = [r for r in erp.list_returns() if r["reference"] == rma]
    assert returns and returns[0]["return_shipments"][0]["state"] == "done", received

    amount = -int(erp_tryton.Decimal(returns[0]["total_amount"]) * 100)
    for _ in range(2):  # refunded once
        refund = storefront.refund_order(placed["code"], {"amount": amount, "reason": rma}, idempotency_key=rma)
    assert refund["total"] == 800
    refunds = [r for p in storefront.get_order(placed["code"])["payments"] for r in p["refunds"]]
    assert [(r["total"], r["reason"]) for r in refunds] == [(800, rma)]
