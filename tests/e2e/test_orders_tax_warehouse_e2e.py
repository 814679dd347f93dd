"""Orders on the real pair with what a real shop has (issue 16 items 2, 3, 6): two Tryton
warehouses, a 10 % tax rate in Vendure and the matching Tryton tax, orders of three lines.

Seeded here directly in Tryton and Vendure through their own APIs (not erpsync's fixtures):

* Tryton: a second warehouse ``WH2`` next to the default ``WH`` (with two, Tryton cannot quote a
  sale that names none), a tax ``VAT 10%`` (on a minimal tax account: the test ERP has no chart);
* Vendure: the template's tax rate becomes ``Standard VAT`` 10 % (channel prices exclude tax).

Checked through ``flows.orders.run`` only: a taxed order reaches Tryton with the store's total and
is confirmed on the configured warehouse; without a tax mapping it is held (``tax_mismatch``),
never confirmed short of its tax; a sale left unconfirmed by a failed try is never bound as done
(never to "None"): it stays a dead letter until it can be taken forward, then is confirmed once.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest

from erpsync.connectors.registry import build_erp
from erpsync.flows import orders
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore
from tests.e2e.shop import add_product, add_store_product, place_order

pytestmark = pytest.mark.e2e

VAT_NAME = "Standard VAT"  # the Vendure tax rate's name: what its order lines' taxLines carry
TRYTON_VAT = "VAT 10%"


def ctx(store: StateStore, erp: Any, sf: Any, run_id: str) -> FlowContext:
    return FlowContext.for_run(flow="orders_sync", run_id=run_id, store=store, erp=erp, storefront=sf,
                               params={}, log=logging.getLogger("e2e.orders_sync"))


def erp_with(connections: dict[str, dict[str, Any]], **extra: Any) -> Any:
    """The Tryton adapter as the ERP Connection builds it, with these extra settings."""
    c = connections["erp_default"]
    return build_erp(c["extra"]["adapter"], c["host"], c["login"], c["password"], {**c["extra"], **extra})


def add_warehouse(erp: Any, code: str, name: str) -> int:
    """A second warehouse as Tryton's own is made: input, output and storage zones under it."""
    zones = erp.model("stock.location", "create", [
        {"name": f"{name} Input", "type": "storage"}, {"name": f"{name} Output", "type": "storage"},
        {"name": f"{name} Storage", "type": "storage"}], write=True)
    wh, = erp.model("stock.location", "create", [{
        "name": name, "code": code, "type": "warehouse", "input_location": zones[0],
        "output_location": zones[1], "storage_location": zones[2]}], write=True)
    erp.model("stock.location", "write", zones, {"parent": wh}, write=True)
    return int(wh)


def add_tryton_tax(erp: Any, name: str, rate: str) -> int:
    """A percentage tax of the company (its invoice and credit-note account: one balance account)."""
    company = erp._company()
    kind, = erp.model("account.account.type", "create", [
        {"name": "Tax payable", "company": company, "statement": "balance"}], write=True)
    account, = erp.model("account.account", "create", [
        {"name": "VAT payable", "code": "4457", "company": company, "type": kind}], write=True)
    tax, = erp.model("account.tax", "create", [{
        "name": name, "description": name, "company": company, "type": "percentage", "rate": Decimal(rate),
        "invoice_account": account, "credit_note_account": account}], write=True)
    return int(tax)


def set_store_tax(sf: Any, name: str, percent: int) -> None:
    """The shop charges ``percent`` on everything: its one tax rate, renamed and set."""
    rates = sf.gql("query{taxRates{items{id}}}")["taxRates"]["items"]
    for r in rates:
        sf.gql("mutation($i:UpdateTaxRateInput!){updateTaxRate(input:$i){id}}", write=True,
               i={"id": r["id"], "name": name, "value": percent})


def seed(erp: Any, sf: Any) -> None:
    add_warehouse(erp, "WH2", "Second warehouse")
    add_tryton_tax(erp, TRYTON_VAT, "0.10")
    set_store_tax(sf, VAT_NAME, 10)
    for sku, name, price in (("MUG-T", "Mug", "12.50"), ("TEE-T", "T-shirt", "20.00"), ("CAP-T", "Cap", "7.30")):
        add_product(erp, sku, name, price)
        add_store_product(sf, sku, name, price)


def sales(erp: Any, reference: str) -> list[dict[str, Any]]:
    return erp.search_read("sale.sale", [("reference", "=", reference)],
                           ["number", "state", "warehouse.code", "total_amount", "tax_amount"])


def open_dead(store: StateStore) -> dict[str, str]:
    return {d.external_id: d.reason for d in store.list_dead_letters(flow="orders_sync", limit=100)}


def test_taxed_order_of_three_lines_is_held_without_a_tax_mapping_then_confirmed_on_the_configured_warehouse(
        connections: dict[str, dict[str, Any]], erp: Any, storefront: Any, store: StateStore) -> None:
    seed(erp, storefront)
    placed = place_order(storefront, "ada@example.com", {"MUG-T": 2, "TEE-T": 1, "CAP-T": 3})
    code = placed["code"]
    # the store charged 10 %: each of the three lines carries its tax line
    assert placed["totalWithTax"] > placed["total"]
    assert all(ln["taxLines"] and ln["taxLines"][0]["taxRate"] == 10 for ln in placed["lines"])
    store_total = Decimal(placed["totalWithTax"]) / 100
    store_tax = Decimal(placed["totalWithTax"] - placed["total"]) / 100

    # 1. a warehouse is configured, the tax is not mapped: Tryton's total lacks the tax -> held
    unmapped = erp_with(connections, sale_warehouse="WH2")
    first = orders.run(ctx(store, unmapped, storefront, "o-1"))
    assert (first.done, first.quarantined) == (0, 1), first.render()
    dead = open_dead(store)
    assert list(dead) == [code], dead  # one id for the order: its code, as its ledger and binding
    assert dead[code].startswith("tax_mismatch: ") and VAT_NAME in dead[code], dead[code]
    [sale] = sales(erp, code)
    assert sale["state"] == "draft", sale  # never confirmed short of its tax
    assert store.get_xref("erp", "sales_order", code) is None

    # 2. the same run again: still held, still unbound (not "found by key" as done)
    again = orders.run(ctx(store, unmapped, storefront, "o-2"))
    assert (again.done, again.quarantined) == (0, 1), again.render()
    assert again.reasons.get(orders.FOUND_BY_KEY, 0) == 0
    assert store.get_xref("erp", "sales_order", code) is None and code in open_dead(store)
    assert [s["state"] for s in sales(erp, code)] == ["draft"]

    # 3. the tax mapped: the draft is taken forward with its taxes, on WH2, and confirmed
    mapped = erp_with(connections, sale_warehouse="WH2", tax_map={VAT_NAME: TRYTON_VAT})
    third = orders.run(ctx(store, mapped, storefront, "o-3"))
    assert (third.done, third.quarantined) == (1, 0), third.render()
    [sale] = sales(erp, code)
    assert sale["state"] == "processing", sale
    assert sale["warehouse.code"] == "WH2"
    assert Decimal(sale["total_amount"]) == store_total
    assert Decimal(sale["tax_amount"]) == store_tax
    full = erp.find_sales_order(code)
    lines = {ln["product.code"]: Decimal(str(ln["quantity"])) for ln in full["lines"]}
    assert lines == {"MUG-T": 2, "TEE-T": 1, "CAP-T": 3, "SHIPPING": 1}
    assert all(ln["taxes"] for ln in full["lines"] if ln["product.code"] != "SHIPPING")
    xref = store.get_xref("erp", "sales_order", code)
    assert xref is not None and xref.internal_id == sale["number"]
    assert code not in open_dead(store)
    ledger = store.ledger_get(orders.order_key(code))
    assert ledger is not None and ledger.status == "done" and ledger.result_ref == sale["number"]

    # 4. a later order goes straight through, and nothing is written twice
    second = place_order(storefront, "grace@example.com", {"CAP-T": 1, "MUG-T": 1, "TEE-T": 2},
                         first="Grace", last="Hopper")
    fourth = orders.run(ctx(store, mapped, storefront, "o-4"))
    assert (fourth.done, fourth.quarantined) == (1, 0), fourth.render()
    [s2] = sales(erp, second["code"])
    assert s2["state"] == "processing" and s2["warehouse.code"] == "WH2"
    assert Decimal(s2["total_amount"]) == Decimal(second["totalWithTax"]) / 100
    assert len(sales(erp, code)) == 1


def test_a_sale_left_unconfirmed_by_a_failed_try_is_never_a_false_success(
        connections: dict[str, dict[str, Any]], erp: Any, storefront: Any, store: StateStore) -> None:
    seed(erp, storefront)
    placed = place_order(storefront, "ada@example.com", {"MUG-T": 1, "TEE-T": 2, "CAP-T": 1})
    code = placed["code"]
    mapping = {VAT_NAME: TRYTON_VAT}

    # what a failed try leaves in Tryton with two warehouses: the sale was created without a
    # warehouse and could not be quoted ("you must enter a warehouse"): a draft with no number
    party = erp.model("party.party", "create", [{"name": "Ada Lovelace"}], write=True)[0]
    address = erp.model("party.address", "create", [{"party": party, "street": "12 Analytical Row",
                                                     "city": "Springfield"}], write=True)[0]
    product = erp.id_of("product.product", "code", "MUG-T")
    unit = erp.read("product.product", [product], ["sale_uom"])[0]["sale_uom"]
    erp.model("sale.sale", "create", [{
        "party": party, "reference": code, "invoice_address": address, "shipment_address": address,
        "currency": erp.id_of("currency.currency", "code", "USD"), "invoice_method": "manual",
        "warehouse": None, "lines": [["create", [{"type": "line", "product": product, "unit": unit,
                                                  "quantity": 1.0, "unit_price": Decimal("12.50")}]]]}],
        write=True)
    with pytest.raises(Exception, match="warehouse"):
        erp.model("sale.sale", "quote", [erp.find_sales_order(code)["id"]], write=True)
    [draft] = sales(erp, code)
    assert draft["state"] == "draft" and not draft["number"]

    # 1. no warehouse configured: the draft is found by its reference, and it is NOT done
    bare = erp_with(connections, tax_map=mapping)
    first = orders.run(ctx(store, bare, storefront, "f-1"))
    assert (first.done, first.quarantined) == (0, 1), first.render()
    assert first.reasons.get(orders.FOUND_BY_KEY, 0) == 0
    dead = open_dead(store)
    assert list(dead) == [code] and "warehouse_required" in dead[code], dead
    assert store.get_xref("erp", "sales_order", code) is None  # never bound, least of all to "None"
    ledger = store.ledger_get(orders.order_key(code))
    assert ledger is None or ledger.status != "done"
    assert [s["state"] for s in sales(erp, code)] == ["draft"]

    # 2. a retry as it is: still a dead letter, still unbound
    again = orders.run(ctx(store, bare, storefront, "f-2"))
    assert (again.done, again.quarantined) == (0, 1), again.render()
    assert store.get_xref("erp", "sales_order", code) is None and code in open_dead(store)

    # 3. the warehouse configured: the same sale is taken forward (its lines made again from the
    #    order) and confirmed on that warehouse; one sale, bound to its number, dead letter resolved
    fixed = erp_with(connections, sale_warehouse="WH2", tax_map=mapping)
    third = orders.run(ctx(store, fixed, storefront, "f-3"))
    assert (third.done, third.quarantined) == (1, 0), third.render()
    [sale] = sales(erp, code)
    assert sale["state"] == "processing" and sale["warehouse.code"] == "WH2", sale
    assert Decimal(sale["total_amount"]) == Decimal(placed["totalWithTax"]) / 100
    xref = store.get_xref("erp", "sales_order", code)
    assert xref is not None and xref.internal_id == sale["number"]
    assert code not in open_dead(store)
