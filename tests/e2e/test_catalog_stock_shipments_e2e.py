"""Catalog and stock from Tryton to Vendure, a Tryton shipment back as a Vendure fulfilment with
tracking, and a return (Tryton return sale -> Vendure refund).

The catalog is written by ``catalog_sync`` itself (``flows.catalog.run``), the very flow that runs
against the sandbox: only the adapters, built from the Connections, differ. The inventory,
shipment and return flows are written against the sandbox in their own issues; until they select
their mapping through the adapter, these tests drive the same steps with the adapters and the
Tryton/Vendure mappings: read in the master, map to canonical, map to the target, write
idempotently, run twice.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from erpsync.flows import catalog, orders
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.mappings import erp_tryton, storefront_vendure
from erpsync.state import StateStore
from tests.e2e.shop import add_product, add_template, place_order, retire_product, write_template

pytestmark = pytest.mark.e2e


def run_catalog(store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> RunSummary:
    """catalog_sync with the adapters the Connections name (Tryton, Vendure)."""
    ctx = FlowContext(flow="catalog_sync", run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                      log=logging.getLogger("e2e.catalog_sync"))
    return catalog.run(ctx)


def vendure_products(sf: Any) -> dict[str, dict[str, Any]]:
    """What Vendure holds, by slug: enabled, description and its variants (SKU -> name, price, enabled)."""
    return {p["slug"]: {"name": p["name"], "enabled": p["enabled"], "description": p["description"],
                        "updatedAt": p["updatedAt"],
                        "variants": {v["sku"]: (v["name"], v["price"], v["enabled"]) for v in p["variants"]},
                        "variant_updates": sorted(v["updatedAt"] for v in p["variants"])}
            for p in sf.list_products()}


def publish_stock(erp: Any, sf: Any) -> dict[str, int]:
    items = [storefront_vendure.inventory_to_storefront(erp_tryton.inventory_from_erp(r)) for r in erp.list_stock()]
    sf.set_inventory(items, idempotency_key="stock")
    return {i["sku"]: i["stock_on_hand"] for i in items}


def test_catalog_sync_publishes_tryton_products_and_unpublishes_retired_ones(
    erp: Any, storefront: Any, store: StateStore
) -> None:
    add_product(erp, "LAMP-1", "Desk lamp", "39.90")
    add_product(erp, "BULB-1", "Bulb", "4.25")
    add_template(erp, "TEE", "T-shirt", "20.00", ["-S", "-M"])  # one product, two variants

    first = run_catalog(store, erp, storefront, "c1")
    assert (first.done, first.quarantined, first.failed) == (3, 0, 0), first.render()
    assert first.reasons["created"] == 3
    held = vendure_products(storefront)
    assert {slug: (p["name"], p["enabled"], p["variants"]) for slug, p in held.items()} == {
        "lamp-1": ("Desk lamp", True, {"LAMP-1": ("Desk lamp", 3990, True)}),
        "bulb-1": ("Bulb", True, {"BULB-1": ("Bulb", 425, True)}),
        "tee": ("T-shirt", True, {"TEE-M": ("T-shirt M", 2000, True), "TEE-S": ("T-shirt S", 2000, True)}),
    }
    # the inventory and order flows read these bindings: SKU -> Vendure product, SKU -> Tryton code
    assert store.get_xref("storefront", "variant", "TEE-M").internal_id == storefront.find_variant("TEE-M")[
        "product"]["id"]
    assert store.get_xref("erp", "item", "TEE-M").internal_id == "TEE-M"

    # a second run, full or incremental, with nothing changed writes nothing
    for run_id, params in (("c2", {"full_pass": True}), ("c3", {})):
        again = run_catalog(store, erp, storefront, run_id, **params)
        assert (again.done, again.quarantined, again.skipped) == (0, 0, 3), again.render()
        assert again.reasons["unchanged"] == 3
    assert vendure_products(storefront) == held

    # the store writes its own copy; the ERP renames the lamp and retires the bulb
    storefront.gql("mutation($i:UpdateProductInput!){updateProduct(input:$i){id}}", write=True,
                   i={"id": storefront.find_variant("LAMP-1")["product"]["id"],
                      "translations": [{"languageCode": "en", "description": "Warm light, brass foot."}]})
    write_template(erp, "LAMP-1", {"name": "Desk lamp, brass"})
    retire_product(erp, "BULB-1")
    third = run_catalog(store, erp, storefront, "c4")
    assert (third.done, third.quarantined) == (2, 0), third.render()
    assert third.reasons["unpublished"] == 1 and third.reasons["updated"] == 1
    now = vendure_products(storefront)
    assert now["bulb-1"]["enabled"] is False and now["bulb-1"]["variants"] == {"BULB-1": ("Bulb", 425, False)}
    assert now["lamp-1"]["name"] == "Desk lamp, brass"
    assert now["lamp-1"]["description"] == "Warm light, brass foot."  # the store's field is kept
    assert now["lamp-1"]["variants"]["LAMP-1"][1] == 3990  # prices are pricing_sync's
    assert now["tee"] == held["tee"]  # untouched
    # a retired product stays retired: the next run writes nothing
    assert run_catalog(store, erp, storefront, "c5").done == 0


def test_stock_goes_from_tryton_to_vendure(erp: Any, storefront: Any, store: StateStore) -> None:
    add_product(erp, "LAMP-1", "Desk lamp", "39.90", stock=7)
    add_product(erp, "BULB-1", "Bulb", "4.25", stock=0)
    assert run_catalog(store, erp, storefront, "c1").done == 2
    assert publish_stock(erp, storefront) == {"LAMP-1": 7, "BULB-1": 0}
    assert storefront.find_variant("LAMP-1")["stockOnHand"] == 7
    erp.set_stock({"LAMP-1": 3})
    publish_stock(erp, storefront)
    assert storefront.find_variant("LAMP-1")["stockOnHand"] == 3


def _sync_order(erp: Any, sf: Any, store: StateStore) -> dict[str, Any]:
    add_product(erp, "BOOK-1", "Notebook", "8.00", stock=10)
    assert run_catalog(store, erp, sf, "catalog-1").done == 1
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
