"""Tryton list prices reach Vendure through pricing_sync, behind the price guard.

catalog_sync creates the products (each with its ERP list price as first price); then price
changes in Tryton go out through ``flows.pricing.run``, the very flow that runs against the
sandbox: a change within the guard is published, a 90 % cut is held for a person and published
once approved, and a run with nothing new writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from erpsync.flows import catalog, pricing
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.state import StateStore
from tests.e2e.shop import add_product, add_template, set_list_price

pytestmark = pytest.mark.e2e


class Notes:
    """The notifier the runtime passes (SMTP in production): the held-price mail lands here."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, subject: str, body: str) -> None:
        self.sent.append((subject, body))


def run(flow: Any, store: StateStore, erp: Any, sf: Any, run_id: str, notifier: Any = None) -> RunSummary:
    ctx = FlowContext.for_run(flow=flow.FLOW, run_id=run_id, store=store, erp=erp, storefront=sf, params={},
                              log=logging.getLogger(f"e2e.{flow.FLOW}"), notifier=notifier)
    return flow.run(ctx)


def variants(sf: Any) -> dict[str, tuple[int, str]]:
    """What Vendure holds: SKU -> (price in cents, last change of the variant)."""
    return {v["sku"]: (v["price"], v["updatedAt"]) for p in sf.list_products() for v in p["variants"]}


def prices(sf: Any) -> dict[str, int]:
    return {sku: price for sku, (price, _) in variants(sf).items()}


def test_pricing_sync_publishes_tryton_price_changes_and_holds_a_cut(
    erp: Any, storefront: Any, store: StateStore
) -> None:
    add_product(erp, "LAMP-1", "Desk lamp", "39.90")
    add_product(erp, "BULB-1", "Bulb", "4.25")
    add_template(erp, "TEE", "T-shirt", "20.00", ["-S", "-M"])
    assert run(catalog, store, erp, storefront, "c1").done == 3
    assert prices(storefront) == {"LAMP-1": 3990, "BULB-1": 425, "TEE-M": 2000, "TEE-S": 2000}

    # the first run finds Vendure showing the list prices already: nothing to write
    first = run(pricing, store, erp, storefront, "p1")
    assert (first.done, first.quarantined, first.failed) == (0, 0, 0), first.render()
    assert first.reasons["already_published"] == 4

    set_list_price(erp, "LAMP-1", "35.00")  # -12 %: within the guard
    set_list_price(erp, "TEE-S", "22.00")  # the template's price: both variants, +10 %
    set_list_price(erp, "BULB-1", "0.40")  # -90 %: the seed's cascade, held
    notes = Notes()
    second = run(pricing, store, erp, storefront, "p2", notifier=notes)
    assert (second.done, second.quarantined, second.failed) == (3, 0, 0), second.render()
    assert second.reasons["held"] == 1
    assert prices(storefront) == {"LAMP-1": 3500, "BULB-1": 425, "TEE-M": 2200, "TEE-S": 2200}
    held, = store.list_approvals(status="pending", flow="pricing_sync")
    assert held.proposed["sku"] == "BULB-1" and "change_over_threshold" in held.reason
    (subject, body), = notes.sent
    assert "held 1 price change" in subject and "BULB-1" in body

    # nothing new in Tryton: the next run writes nothing (and holds nothing twice)
    shown = variants(storefront)
    third = run(pricing, store, erp, storefront, "p3", notifier=notes)
    assert (third.done, third.quarantined) == (0, 0), third.render()
    assert variants(storefront) == shown
    assert len(store.list_approvals(status="pending", flow="pricing_sync")) == 1 and len(notes.sent) == 1

    # a person approves the cut: the next run publishes it, the one after writes nothing
    store.decide_approval(held.id, "approved", "e2e")
    fourth = run(pricing, store, erp, storefront, "p4")
    assert fourth.done == 1, fourth.render()
    assert prices(storefront)["BULB-1"] == 40
    shown = variants(storefront)
    assert run(pricing, store, erp, storefront, "p5").done == 0
    assert variants(storefront) == shown
