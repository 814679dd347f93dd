"""Catalog and stock from Tryton to Vendure, a Tryton shipment back as a Vendure fulfilment with
tracking, and a Vendure return into Tryton with its credit back as the settled refund.

The catalog, shipments and returns are written by the flows themselves (``flows.catalog.run``,
``flows.shipments.run``, ``flows.returns.run``), the very flows that run against the sandbox: only
the adapters, built from the Connections, differ. So is the stock (``flows.inventory.run``): it
reads raw stock, items and store levels through the adapters' mappings (``tryton_stock``,
``vendure_stock``).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from erpsync.flows import catalog, inventory, orders, returns, shipments
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.mappings import erp_tryton
from erpsync.state import StateStore
from tests.drivers import tryton, vendure
from tests.e2e.shop import (
    add_product,
    add_store_product,
    add_template,
    place_order,
    record_return,
    retire_product,
    write_template,
)

pytestmark = pytest.mark.e2e


def run_catalog(store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> RunSummary:
    """catalog_sync with the adapters the Connections name (Tryton, Vendure)."""
    ctx = FlowContext.for_run(flow="catalog_sync", run_id=run_id, store=store, erp=erp, storefront=sf,
                              params=params, log=logging.getLogger("e2e.catalog_sync"))
    return catalog.run(ctx)


def vendure_products(sf: Any) -> dict[str, dict[str, Any]]:
    """What Vendure holds, by slug: enabled, description and its variants (SKU -> name, price, enabled)."""
    return {p["slug"]: {"name": p["name"], "enabled": p["enabled"], "description": p["description"],
                        "updatedAt": p["updatedAt"],
                        "variants": {v["sku"]: (v["name"], v["price"], v["enabled"]) for v in p["variants"]},
                        "variant_updates": sorted(v["updatedAt"] for v in p["variants"])}
            for p in sf.list_products()}


def run_inventory(store: StateStore, erp: Any, sf: Any, run_id: str) -> RunSummary:
    """inventory_sync with the adapters the Connections name; Tryton's warehouse feeds Vendure's
    default stock location."""
    location, = sf.list_locations()
    ctx = FlowContext.for_run(flow="inventory_sync", run_id=run_id, store=store, erp=erp, storefront=sf,
                              params={"location_map": {"WH": location}},
                              log=logging.getLogger("e2e.inventory_sync"))
    return inventory.run(ctx)


def vendure_stock(sf: Any) -> dict[str, int]:
    """SKU -> stock on hand at each location, as Vendure holds it (one location here)."""
    return {lv["sku"]: lv["stockOnHand"] for lv in sf.export_inventory()}


def tryton_available(erp: Any) -> dict[str, int]:
    """SKU -> what Tryton says may be sold (on hand less the forecast's shortfall)."""
    return {f.item_code: f.available for f in map(erp_tryton.stock_figures, erp.list_stock())}


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
    assert store.get_xref("storefront", "variant", "TEE-M").internal_id == vendure.find_variant(storefront, "TEE-M")[
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
                   i={"id": vendure.find_variant(storefront, "LAMP-1")["product"]["id"],
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
    storefront.set_inventory([{"sku": "BULB-1", "stock_on_hand": 5}], idempotency_key="stale")  # off by hand

    first = run_inventory(store, erp, storefront, "i1")
    assert (first.done, first.quarantined, first.failed) == (2, 0, 0), first.render()
    assert tryton_available(erp) == {"LAMP-1": 7, "BULB-1": 0}
    assert vendure_stock(storefront) == tryton_available(erp)

    # nothing changed: a second run writes nothing (Vendure's variants untouched)
    before = sorted(v["updatedAt"] for v in storefront.list_inventory())
    again = run_inventory(store, erp, storefront, "i2")
    assert (again.done, again.quarantined, again.skipped) == (0, 0, 2), again.render()
    assert again.reasons["unchanged"] == 2
    assert sorted(v["updatedAt"] for v in storefront.list_inventory()) == before

    # the warehouse counts 3 lamps: only that level goes
    tryton.set_stock(erp, {"LAMP-1": 3})
    third = run_inventory(store, erp, storefront, "i3")
    assert (third.done, third.skipped) == (1, 1), third.render()
    assert vendure_stock(storefront) == tryton_available(erp) == {"LAMP-1": 3, "BULB-1": 0}


def flow_ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> FlowContext:
    """The context the Airflow task builds (erpsync_airflow.runtime.flow_context), from the
    adapters the Connections name: the flows are the ones that run against the sandbox."""
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                               log=logging.getLogger(f"e2e.{flow}"))


def _ordered(erp: Any, sf: Any, store: StateStore) -> dict[str, Any]:
    """Two products in both systems, a shopper's paid order in Vendure, synced by orders_sync."""
    for sku, name, price in (("BOOK-1", "Notebook", "8.00"), ("PEN-1", "Pen", "2.50")):
        add_product(erp, sku, name, price, stock=10)
        add_store_product(sf, sku, name, price)
    placed = place_order(sf, "linus@example.com", {"BOOK-1": 3, "PEN-1": 2}, first="Linus", last="Torvalds")
    assert orders.run(flow_ctx("orders_sync", store, erp, sf, "o-1")).done == 1
    return placed


def _fulfilments(sf: Any, code: str) -> list[tuple[Any, ...]]:
    order = sf.get_order(code)
    skus = {ln["id"]: ln["productVariant"]["sku"] for ln in order["lines"]}
    return [(f["trackingCode"], f["method"], f["state"],
             sorted((skus[ln["orderLineId"]], ln["quantity"]) for ln in f["lines"]))
            for f in sorted(order["fulfillments"], key=lambda f: int(f["id"]))]


def test_partial_tryton_shipment_comes_back_as_a_vendure_fulfilment_with_tracking(
        erp: Any, storefront: Any, store: StateStore, tmp_path: Any) -> None:
    placed = _ordered(erp, storefront, store)
    code = placed["code"]
    # the warehouse picks 2 of the 3 notebooks and no pen: Tryton ships that and keeps a back-order
    first, = tryton.shipments_of_sale(erp, code)
    tryton.ship(erp, first["id"], tracking="1Z999AA10123456784", carrier="UPS", quantities={"BOOK-1": 2})

    s1 = shipments.run(flow_ctx("shipments_sync", store, erp, storefront, "s-1"))
    assert (s1.done, s1.quarantined, s1.reasons["package_pending"]) == (1, 0, 1), s1.render()
    assert _fulfilments(storefront, code) == [("1Z999AA10123456784", "UPS", "Shipped", [("BOOK-1", 2)])]
    assert storefront.get_order(code)["state"] == "PartiallyShipped"

    again = shipments.run(flow_ctx("shipments_sync", store, erp, storefront, "s-2"))
    assert again.done == 0 and len(_fulfilments(storefront, code)) == 1, again.render()

    # the back-order (1 notebook, 2 pens) ships with its own tracking number
    back, = [s for s in tryton.shipments_of_sale(erp, code) if s["state"] != "done"]
    tryton.ship(erp, back["id"], tracking="1Z999AA10123456795", carrier="UPS")
    s3 = shipments.run(flow_ctx("shipments_sync", store, erp, storefront, "s-3"))
    assert s3.done == 1 and s3.quarantined == 0, s3.render()
    assert _fulfilments(storefront, code) == [
        ("1Z999AA10123456784", "UPS", "Shipped", [("BOOK-1", 2)]),
        ("1Z999AA10123456795", "UPS", "Shipped", [("BOOK-1", 1), ("PEN-1", 2)])]
    assert storefront.get_order(code)["state"] == "Shipped"

    # a run that lost all its state finds each fulfilment by its tracking code: none is added twice
    amnesiac = StateStore.from_url(f"sqlite:///{tmp_path / 'lost.db'}")
    amnesiac.migrate()
    try:
        lost = shipments.run(flow_ctx("shipments_sync", amnesiac, erp, storefront, "s-4"))
        assert lost.quarantined == 0, lost.render()
    finally:
        amnesiac.close()
    assert len(_fulfilments(storefront, code)) == 2


def test_vendure_return_reaches_tryton_and_its_credit_settles_the_refund_to_the_cent(
        erp: Any, storefront: Any, store: StateStore) -> None:
    placed = _ordered(erp, storefront, store)
    code = placed["code"]
    shipment, = tryton.shipments_of_sale(erp, code)
    tryton.ship(erp, shipment["id"], tracking="1Z999AA10123456784", carrier="UPS")
    assert shipments.run(flow_ctx("shipments_sync", store, erp, storefront, "s-1")).done == 1
    # the customer sends a notebook back; the merchant records the return in Vendure (a pending
    # refund of that line) -- and one pen, refunded 2.00 instead of its 2.50
    rid = record_return(storefront, code, {"BOOK-1": 1}, reason="too small")
    odd = record_return(storefront, code, {"PEN-1": 1}, reason="scratched", amount=200)

    r1 = returns.run(flow_ctx("returns_sync", store, erp, storefront, "r-1"))
    assert r1.reasons["opened"] == 2 and r1.quarantined == 0, r1.render()
    rma = erp.find_return(rid)
    assert rma["state"] == "processing" and rma["origin_sale"]["reference"] == code
    assert [(ln["product.code"], float(ln["quantity"]), ln["unit_price"]) for ln in rma["lines"]] == [
        ("BOOK-1", -1.0, "8.0000")]
    assert returns.run(flow_ctx("returns_sync", store, erp, storefront, "r-2")).reasons["opened"] == 0
    assert len(erp.search_read("sale.sale", [("reference", "=", rid)], ["id"])) == 1

    # the goods arrive in the warehouse: Tryton restocks them and credits the return
    for ref in (rid, odd):
        tryton.receive_return(erp, ref)
    r3 = returns.run(flow_ctx("returns_sync", store, erp, storefront, "r-3"))
    assert r3.reasons["credited_and_refunded"] == 1, r3.render()
    refund = storefront.get_return(rid)
    assert (refund["state"], refund["transactionId"], refund["total"]) == ("Settled", rma["number"], 800)
    assert Decimal(erp.find_return(rid)["total_amount"]) == -Decimal(refund["total"]) / 100
    report = store.list_drift_reports(flow="returns_sync")[0]
    assert report.summary == {"checked": 1, "mismatches": 0, "causes": {}}
    # the pen's refund differs from Tryton's credit (2.00 vs 2.50): Vendure cannot change a
    # refund's amount, so it is not settled; the return waits in the dead letters with both amounts
    held = [d for d in r3.dead_letters if d[1] == odd]
    assert held and "refund_amount_differs" in held[0][2] and "200" in held[0][2], r3.render()
    assert storefront.get_return(odd)["state"] == "Pending"
    notes = storefront.gql("query($id:ID!){order(id:$id){history(options:{take:100}){items{type data}}}}",
                           id=placed["id"])["order"]["history"]["items"]
    assert f"Return {rid}: credited by the ERP: credit memo {rma['number']} 8.00 USD; BOOK-1 x1 restock" in [
        n["data"].get("note") for n in notes if n["type"] == "ORDER_NOTE"]

    r4 = returns.run(flow_ctx("returns_sync", store, erp, storefront, "r-4"))
    assert r4.reasons["credited_and_refunded"] == 0, r4.render()
    refunds = [r for p in storefront.get_order(code)["payments"] for r in p["refunds"]]
    assert sorted((r["total"], r["state"]) for r in refunds) == [(200, "Pending"), (800, "Settled")]
