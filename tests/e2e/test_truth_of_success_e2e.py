"""No false success on the real pair (issue 16 items 5 and 7): the drift check and the orders
reconciliation compare what Tryton and Vendure really hold, say how much they compared, and find
the differences a person plants by hand.

Both run the very flows of the sandbox; only the adapters (built from the Connections) differ.
One test, to start the servers once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest

from erpsync.flows import catalog, customers, inventory, inventory_drift, orders, reconciliation
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.state import StateStore
from tests.drivers import vendure
from tests.e2e.shop import add_product, place_order

pytestmark = pytest.mark.e2e


def ctx(flow: str, store: StateStore, erp: Any, sf: Any, run_id: str, **params: Any) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                               log=logging.getLogger(f"e2e.{flow}"))


def drift(store: StateStore, erp: Any, sf: Any, run_id: str, location: str,
          **params: Any) -> tuple[RunSummary, inventory_drift.DriftResult]:
    summary, _mail, result = inventory_drift.run_with_email(
        ctx("inventory_drift_check", store, erp, sf, run_id, location_map={"WH": location}, **params))
    return summary, result


def latest_report(store: StateStore) -> Any:
    """The newest orders_reconciliation report, with its items."""
    return store.get_drift_report(store.list_drift_reports(flow="orders_reconciliation")[0].id)


def vendure_on_hand(sf: Any) -> dict[tuple[str, str], int]:
    return {(lv["sku"], lv["stockLocationId"]): lv["stockOnHand"] for lv in sf.export_inventory()}


def test_drift_check_and_reconciliation_compare_the_real_pair_and_find_planted_differences(
    erp: Any, storefront: Any, store: StateStore
) -> None:
    add_product(erp, "LAMP-1", "Desk lamp", "12.50", stock=7)
    add_product(erp, "BULB-1", "Bulb", "4.00", stock=40)
    assert catalog.run(ctx("catalog_sync", store, erp, storefront, "c1")).done == 2
    location, = storefront.list_locations()
    synced = inventory.run(ctx("inventory_sync", store, erp, storefront, "i1", location_map={"WH": location}))
    assert synced.quarantined == 0, synced.render()
    assert vendure_on_hand(storefront) == {("LAMP-1", location): 7, ("BULB-1", location): 40}

    # ---- the drift check reads both sides through their adapters: in sync, every SKU-location compared
    summary, result = drift(store, erp, storefront, "d1", location)
    assert (result.erp_read, result.store_read, result.compared) == (2, 2, 2), result.summary()
    assert result.unreadable == 0 and summary.quarantined == 0, summary.render()
    assert sum(result.counts.values()) == 0, result.items
    assert (summary.read, summary.compared) == (4, 2)

    # a person edits Vendure's stock by hand: 50 lamps that do not exist
    variant = vendure.find_variant(storefront, "LAMP-1")
    storefront.gql("mutation($i:[UpdateProductVariantInput!]!){updateProductVariants(input:$i){id}}", write=True,
                   i=[{"id": variant["id"], "stockLevels": [{"stockLocationId": location, "stockOnHand": 50}]}])
    assert vendure_on_hand(storefront)[("LAMP-1", location)] == 50

    summary, result = drift(store, erp, storefront, "d2", location, heal=True)
    assert dict(result.counts) == {"quantity_mismatch": 1}, result.items
    found, = result.items
    assert (found["sku"], found["location"], found["erp"], found["store"]) == ("LAMP-1", location, 7, 50)
    assert result.healed == 1 and summary.done == 1, summary.render()
    assert vendure_on_hand(storefront) == {("LAMP-1", location): 7, ("BULB-1", location): 40}
    # and it stays healed
    _, result = drift(store, erp, storefront, "d3", location)
    assert sum(result.counts.values()) == 0 and result.compared == 2, result.items

    # ---- reconciliation: store orders of the day against Tryton's sales, read through the mappings
    a = place_order(storefront, "ada@example.com", {"LAMP-1": 1})
    b = place_order(storefront, "grace@example.com", {"BULB-1": 2}, first="Grace", last="Hopper")
    assert customers.run(ctx("customers_sync", store, erp, storefront, "cu1")).quarantined == 0
    sent = orders.run(ctx("orders_sync", store, erp, storefront, "o1"))
    assert (sent.done, sent.quarantined) == (2, 0), sent.render()
    today = dt.datetime.now(dt.UTC).date().isoformat()

    clean = reconciliation.run(ctx("orders_reconciliation", store, erp, storefront, "r1", date=today))
    report = latest_report(store)
    assert report.summary["read"] == {"store": 2, "erp": 2}, report.summary
    assert report.summary["compared"] == {"store": 2, "erp": 2}, report.summary
    assert report.summary["differences"] == 0, report.items
    assert clean.done == 2

    # planted: an order the ERP never received, and a sale typed in Tryton by hand for another
    # store order, at the wrong price and never confirmed
    missing = place_order(storefront, "ada@example.com", {"LAMP-1": 2})
    typed = place_order(storefront, "grace@example.com", {"BULB-1": 1}, first="Grace", last="Hopper")
    party = erp.find_sales_order(b["code"])["party.code"]
    erp._create_sale({"reference": typed["code"], "party": party, "sale_date": today, "currency": "USD",
                      "description": "typed by hand",
                      "lines": [{"product": "BULB-1", "quantity": 1, "unit_price": "1.00", "description": "Bulb"}]})

    found = reconciliation.run(ctx("orders_reconciliation", store, erp, storefront, "r2", date=today))
    report = latest_report(store)
    assert report.summary["read"] == {"store": 4, "erp": 3}, report.summary
    assert report.summary["compared"] == {"store": 4, "erp": 3}, report.summary
    kinds = sorted((it.kind, it.external_id) for it in report.items)
    assert kinds == sorted([("missing_in_erp", missing["code"]), ("total_mismatch", typed["code"]),
                            ("not_confirmed_in_erp", typed["code"])]), report.items
    assert found.done == 3 and found.reasons["missing_in_erp"] == 1
    assert a["code"] not in {it.external_id for it in report.items}

