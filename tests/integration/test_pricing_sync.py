"""pricing_sync end to end against the sandbox ERP and storefront over HTTP.

The seed's worst story (an ERP rule cut every price by 90 %) must publish no wrong price and hold
every affected SKU; a sale starts and ends on its dates; a second run with no change writes
nothing; an approval publishes the held price in the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest

from erpsync.config import erpsync_home
from erpsync.flows import pricing
from erpsync.flows.base import FlowContext, RunSummary, parse_cursor
from erpsync.state import StateStore
from erpsync.state.price_book import PriceBook

pytestmark = pytest.mark.integration

SEED = {"seed": 7, "skus": 20, "customers": 40, "orders": 5}
NOW = "2026-11-24T12:00:00Z"


class Notes:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, subject: str, body: str) -> None:
        self.sent.append((subject, body))


def run(store: StateStore, erp: Any, sf: Any, run_id: str, notifier: Any = None, now: str = NOW,
        **params: Any) -> RunSummary:
    """One run with the flow's clock pinned at ``now`` (the test seam is ``pricing.clock``, not a Param)."""
    ctx = FlowContext.for_run(flow="pricing_sync", run_id=run_id, store=store, erp=erp, storefront=sf,
                              params=params, log=logging.getLogger("test.pricing"))
    ctx.notifier = notifier
    with mock.patch.object(pricing, "clock", lambda: parse_cursor(now)):
        return pricing.run(ctx)


def variant_prices(sf: Any) -> dict[str, tuple[str, str | None]]:
    return {v["sku"]: (v["price"], v.get("compare_at_price")) for p in sf.list_products() for v in p["variants"]}


def writes(sandbox: Any) -> int:
    return sandbox.stats("storefront")["writes_committed"]


@pytest.fixture
def world(sandbox: Any) -> Any:
    sandbox.reset(**SEED)
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()
    from tests.fixtures.sandbox import TEST_SEED

    sandbox.reset(**TEST_SEED)


def test_first_run_publishes_lists_and_a_second_run_writes_nothing(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    first = run(store, erp_adapter, storefront_adapter, "r1")
    assert first.quarantined == 0 and first.failed == 0
    lists = {pl["handle"]: pl for pl in storefront_adapter.list_price_lists()}
    assert {"currency-eur", "currency-gbp", "group-wholesale-usd"} <= set(lists)
    assert any(h.startswith("customer-cust-") for h in lists)
    breaks = list(storefront_adapter.list_price_list_prices(lists["group-wholesale-usd"]["id"]))
    assert {b["min_qty"] for b in breaks} == {1, 10, 50}
    # the seeded store has drifted variant prices; the ERP list price wins unless the guard holds it
    prices = variant_prices(storefront_adapter)
    assert prices["SKU-000001"][0] == next(
        r["price"] for r in erp_adapter.list_prices() if r["item_code"] == "ITEM-000001" and r["price_list"] == "LIST")

    before = writes(world)
    second = run(store, erp_adapter, storefront_adapter, "r2")
    assert writes(world) == before, "a second run with no change must write nothing"
    assert second.done == 0 and second.quarantined == 0


def test_ninety_percent_cut_publishes_no_wrong_price_and_holds_every_sku(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    shown = variant_prices(storefront_adapter)
    lists_before = {pl["handle"]: {(p["sku"], p["min_qty"]): p["price"]
                                   for p in storefront_adapter.list_price_list_prices(pl["id"])}
                    for pl in storefront_adapter.list_price_lists()}

    cut = world.admin("erp", "POST", "prices", {"scale": {"factor": "0.1"}})
    assert cut["changed"] > 0
    notes = Notes()
    summary = run(store, erp_adapter, storefront_adapter, "r2", notifier=notes)

    assert variant_prices(storefront_adapter) == shown, "no wrong price reached the storefront"
    lists_after = {pl["handle"]: {(p["sku"], p["min_qty"]): p["price"]
                                  for p in storefront_adapter.list_price_list_prices(pl["id"])}
                   for pl in storefront_adapter.list_price_lists()}
    assert lists_after == lists_before
    held = store.list_approvals(status="pending", flow="pricing_sync")
    assert len(held) == cut["changed"] == summary.reasons["held"]
    assert {a.proposed["sku"] for a in held} >= {f"SKU-{i:06d}" for i in range(1, SEED["skus"] + 1)}
    assert all("change_over_threshold" in a.reason for a in held)
    assert summary.done == 0
    (subject, body), = notes.sent
    assert f"held {len(held)} price changes" in subject and "erpsync approvals approve" in body

    again = run(store, erp_adapter, storefront_adapter, "r3", notifier=notes, full_pass=True)
    assert len(store.list_approvals(status="pending", flow="pricing_sync")) == len(held), "no duplicates"
    assert len(notes.sent) == 1 and again.done == 0


def test_an_approval_publishes_the_held_price_in_the_next_run(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    world.admin("erp", "POST", "prices", {"scale": {"factor": "0.5", "price_list": "LIST",
                                                            "item_codes": ["ITEM-000003"]}})
    run(store, erp_adapter, storefront_adapter, "r2")
    (held,) = store.list_approvals(status="pending", flow="pricing_sync")
    assert held.proposed["key"] == "variant|SKU-000003|1"
    old = variant_prices(storefront_adapter)["SKU-000003"][0]
    store.decide_approval(held.id, "approved", "pat")
    run(store, erp_adapter, storefront_adapter, "r3")
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == str(
        (Decimal(old) * Decimal("0.5")).quantize(Decimal("0.01")))
    assert store.get_approval(held.id).status == "published"


def test_a_rejected_change_is_not_proposed_again(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    world.admin("erp", "POST", "prices", {"scale": {"factor": "0", "price_list": "LIST-EUR",
                                                            "item_codes": ["ITEM-000002"]}})
    run(store, erp_adapter, storefront_adapter, "r2")
    (held,) = store.list_approvals(status="pending", flow="pricing_sync")
    assert held.reason.startswith("zero_price")
    store.decide_approval(held.id, "rejected", "pat", note="typo in the ERP")
    summary = run(store, erp_adapter, storefront_adapter, "r3", full_pass=True)
    assert store.list_approvals(status="pending", flow="pricing_sync") == []
    assert summary.reasons["rejected_before"] == 1


def test_sale_price_starts_and_ends_on_its_dates(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    run(store, erp_adapter, storefront_adapter, "r1")
    base = variant_prices(storefront_adapter)["SKU-000004"][0]
    sale = str((Decimal(base) * Decimal("0.85")).quantize(Decimal("0.01")))  # 15 % off: within the guard
    world.admin("erp", "POST", "prices", {"set": [{
        "item_code": "ITEM-000004", "price_list": "SALE-WINTER", "currency": "USD", "price": sale,
        "valid_from": "2026-11-25T00:00:00Z", "valid_to": "2026-11-28T00:00:00Z"}]})

    def at(when: str, run_id: str) -> tuple[str, str | None]:
        run(store, erp_adapter, storefront_adapter, run_id, now=when)
        return variant_prices(storefront_adapter)["SKU-000004"]

    assert at("2026-11-24T23:00:00Z", "h1") == (base, None)
    assert at("2026-11-25T00:00:00Z", "h2") == (sale, base)  # starts on its date, with the "was" price
    assert at("2026-11-27T23:00:00Z", "h3") == (sale, base)
    assert at("2026-11-28T00:00:00Z", "h4") == (base, None)  # and ends on its date
    book = PriceBook(store).load(["variant|SKU-000004|1"])["variant|SKU-000004|1"]
    assert book.next_change_at is None and not book.dirty
    assert dt.datetime.fromisoformat(book.published_at.isoformat()) is not None


def test_guard_and_approvals_on_postgresql(
    world: Any, pg_database: Any, erp_adapter: Any, storefront_adapter: Any
) -> None:
    """The bulk approval upsert and the price book on the production database."""
    with StateStore.from_url(pg_database()) as pg:
        pg.migrate()
        run(pg, erp_adapter, storefront_adapter, "r1")
        shown = variant_prices(storefront_adapter)
        world.admin("erp", "POST", "prices", {"scale": {"factor": "0.1", "price_list": "LIST"}})
        summary = run(pg, erp_adapter, storefront_adapter, "r2")
        run(pg, erp_adapter, storefront_adapter, "r3", full_pass=True)
        held = pg.list_approvals(status="pending", flow="pricing_sync")
        assert len(held) == SEED["skus"] == summary.reasons["held"]
        assert variant_prices(storefront_adapter) == shown
        pg.decide_approval(held[0].id, "approved", "pat")
        run(pg, erp_adapter, storefront_adapter, "r4")
        assert pg.get_approval(held[0].id).status == "published"


# --------------------------------------------------------------------------- the quality gate (issue 6)

BAD_PRICES = [
    {"item_code": "ITEM-000001", "price_list": "LIST-CHF", "currency": "CHF", "price": "18.00"},
    {"item_code": "ITEM-000002", "price_list": "LIST-JPY", "currency": "JPY", "price": "2900"},
    {"item_code": "ITEM-000003", "price_list": "LIST", "currency": "USD", "price": "-1.00"},
]


def test_bad_price_rows_are_quarantined_with_their_check_and_value_and_the_rest_is_published(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    world.admin("erp", "POST", "prices", {"set": BAD_PRICES})
    rows = len(list(erp_adapter.list_prices()))
    summary = run(store, erp_adapter, storefront_adapter, "r1")
    assert summary.quarantined == 3 and summary.failed == 0, summary.render()
    reasons = {d.external_id: d.reason for d in store.list_dead_letters(flow="pricing_sync")}
    assert set(reasons) == {"ITEM-000001/LIST-CHF/CHF/1", "ITEM-000002/LIST-JPY/JPY/1", "ITEM-000003/LIST/USD/1"}
    assert reasons["ITEM-000001/LIST-CHF/CHF/1"].startswith(
        "bad_currency: currency='CHF' (expect_column_values_to_be_in_set(currency): currency must be one of")
    assert "currency='JPY'" in reasons["ITEM-000002/LIST-JPY/JPY/1"]
    assert reasons["ITEM-000003/LIST/USD/1"].startswith("mapping_error:")
    assert "price_not_negative" in reasons["ITEM-000003/LIST/USD/1"] and "-1.00" in reasons["ITEM-000003/LIST/USD/1"]
    # the rest went on: price lists and variant prices as the ERP has them, none of the bad rows
    lists = {pl["handle"] for pl in storefront_adapter.list_price_lists()}
    assert {"currency-eur", "currency-gbp", "group-wholesale-usd"} <= lists
    assert not {"currency-chf", "currency-jpy"} & lists
    assert variant_prices(storefront_adapter)["SKU-000002"][0] == next(
        r["price"] for r in erp_adapter.list_prices() if r["item_code"] == "ITEM-000002" and r["price_list"] == "LIST")
    assert rows - 3 > 100  # what the 3 were measured against
    # the GX result of the run is kept: its rendered page names the failed rows
    assert list((erpsync_home() / "quality" / "pricing_sync" / "r1").glob("price-*.html"))


def test_a_price_row_fixed_in_the_erp_closes_its_dead_letter_and_one_still_bad_keeps_it(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    world.admin("erp", "POST", "prices", {"set": BAD_PRICES})
    run(store, erp_adapter, storefront_adapter, "r1")
    first = {d.external_id: d for d in store.list_dead_letters(flow="pricing_sync")}
    assert len(first) == 3
    # the ERP user fixes the negative price; the CHF row is changed but still in a currency not traded
    world.admin("erp", "POST", "prices", {"set": [{**BAD_PRICES[2], "price": "21.00"},
                                                   {**BAD_PRICES[0], "price": "19.00"}]})
    run(store, erp_adapter, storefront_adapter, "r2")
    now = {d.external_id: d for d in store.list_dead_letters(flow="pricing_sync")}
    assert set(now) == {"ITEM-000001/LIST-CHF/CHF/1", "ITEM-000002/LIST-JPY/JPY/1"}
    assert now["ITEM-000001/LIST-CHF/CHF/1"].id == first["ITEM-000001/LIST-CHF/CHF/1"].id  # one letter, kept
    assert store.get_dead_letter(first["ITEM-000003/LIST/USD/1"].id).status == "resolved"
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == "21.00"


def test_a_chunk_over_the_pricing_limit_fails_the_run_and_takes_nothing(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    from erpsync.quality import QualityGateFailed

    run(store, erp_adapter, storefront_adapter, "r1")
    before = writes(world)
    cursor = store.get_cursor("pricing_sync")
    # a broken ERP export: a tenth of the rows in a currency the business does not trade in
    bad = [{"item_code": f"ITEM-{i:06d}", "price_list": "LIST-CHF", "currency": "CHF", "price": "18.00"}
           for i in range(1, SEED["skus"] + 1)]
    world.admin("erp", "POST", "prices", {"set": bad})
    world.admin("erp", "POST", "prices", {"scale": {"factor": "1.05", "price_list": "LIST"}})  # good changes too
    with pytest.raises(QualityGateFailed, match=r"pricing_sync/price: 20 of \d+ bad .*limit 5%"):
        run(store, erp_adapter, storefront_adapter, "r2", full_pass=True)
    assert writes(world) == before, "nothing of a failed chunk is published"
    assert store.get_cursor("pricing_sync") == cursor, "the cursor stays: the rerun reads it all again"
    assert len(store.list_dead_letters(flow="pricing_sync")) == 20


def test_a_held_change_the_erp_takes_back_is_rejected_as_superseded(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    """Price-cascade runbook, step 2: once the ERP is fixed, the held changes go away by themselves."""
    run(store, erp_adapter, storefront_adapter, "r1")
    row = next(dict(r) for r in erp_adapter.list_prices()
               if r["item_code"] == "ITEM-000003" and r["price_list"] == "LIST" and int(r.get("min_qty") or 1) == 1)
    shown = variant_prices(storefront_adapter)["SKU-000003"]
    world.admin("erp", "POST", "prices", {"set": [{**row, "price": str(Decimal(row["price"]) * Decimal("0.1"))}]})
    run(store, erp_adapter, storefront_adapter, "r2")
    (held,) = store.list_approvals(status="pending", flow="pricing_sync")
    assert held.proposed["sku"] == "SKU-000003" and "change_over_threshold" in held.reason

    world.admin("erp", "POST", "prices", {"set": [row]})  # someone fixes the rule in the ERP
    back = run(store, erp_adapter, storefront_adapter, "r3")
    assert store.list_approvals(status="pending", flow="pricing_sync") == []
    decided = store.get_approval(held.id)
    assert decided.status == "rejected" and decided.decided_by == "erpsync"
    assert (decided.note or "").startswith("superseded: the ERP is back to the accepted price")
    assert variant_prices(storefront_adapter)["SKU-000003"] == shown and back.done == 0


# --------------------------------------------------------------------------- compare-and-set approvals (issue 17, class 2)


def _list_row(erp: Any, item: str = "ITEM-000003") -> dict[str, Any]:
    return next(dict(r) for r in erp.list_prices()
                if r["item_code"] == item and r["price_list"] == "LIST" and int(r.get("min_qty") or 1) == 1)


def _set_price(world: Any, row: dict[str, Any], price: Decimal | str) -> None:
    world.admin("erp", "POST", "prices", {"set": [{**row, "price": str(price)}]})


def _hold_a_cut(world: Any, store: StateStore, erp: Any, sf: Any) -> tuple[dict[str, Any], Any, str]:
    """r1 publishes; the ERP cuts ITEM-000003 by 90 %; r2 holds it. The ERP row, the approval and
    the price the store shows."""
    run(store, erp, sf, "r1")
    row = _list_row(erp)
    shown = variant_prices(sf)["SKU-000003"][0]
    assert Decimal(shown) == Decimal(row["price"])
    _set_price(world, row, (Decimal(row["price"]) * Decimal("0.1")).quantize(Decimal("0.01")))
    run(store, erp, sf, "r2")
    (held,) = store.list_approvals(status="pending", flow="pricing_sync")
    assert held.proposed["sku"] == "SKU-000003"
    return row, held, shown


def _approve_cli(approval_id: int) -> int:
    from erpsync_airflow.cli import main

    return main(["approvals", "approve", str(approval_id), "--by", "pat"])


def _superseded_notes(notes: Notes) -> list[str]:
    return [body for subject, body in notes.sent if "superseded" in subject]


def test_an_approval_of_a_price_the_erp_took_back_is_superseded_not_published(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    """hold -> ERP set back -> someone approves -> run: compare-and-set against the ERP's current
    value: nothing stale published, the approval superseded with its reason (audited, mailed), and
    the ERP's real price is not held as a +900 % rise."""
    row, held, shown = _hold_a_cut(world, store, erp_adapter, storefront_adapter)
    _set_price(world, row, row["price"])  # the ERP is fixed ...
    assert _approve_cli(held.id) == 0  # ... and someone approves the cut before the next run
    before = writes(world)
    notes = Notes()
    summary = run(store, erp_adapter, storefront_adapter, "r3", notifier=notes)

    assert variant_prices(storefront_adapter)["SKU-000003"][0] == shown, "the stale approved price was published"
    assert writes(world) == before and summary.done == 0
    decided = store.get_approval(held.id)
    assert decided.status == "rejected", decided
    assert (decided.note or "").startswith("superseded: ")
    assert f"the ERP now says {row['price']}" in decided.note and "approved by pat" in decided.note
    assert store.list_approvals(status="pending", flow="pricing_sync") == [], "the ERP's real price was held"
    assert store.list_approvals(status="approved", flow="pricing_sync") == []
    audit = store.list_audit(flow="pricing_sync", entity="approval", external_id=held.external_id)
    assert [a.operation for a in audit] == ["supersede_approval"] and audit[0].result == "superseded"
    (body,) = _superseded_notes(notes)
    assert f"#{held.id}" in body and "approved" in body and row["price"] in body
    # and it stays so: the next run neither publishes nor holds anything for it
    again = run(store, erp_adapter, storefront_adapter, "r4")
    assert again.done == 0 and store.list_approvals(status="pending", flow="pricing_sync") == []
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == shown


def test_a_held_price_set_back_before_approval_is_superseded_in_that_run_and_cannot_be_approved(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    row, held, shown = _hold_a_cut(world, store, erp_adapter, storefront_adapter)
    _set_price(world, row, row["price"])
    notes = Notes()
    run(store, erp_adapter, storefront_adapter, "r3", notifier=notes)
    decided = store.get_approval(held.id)
    assert decided.status == "rejected" and decided.note.startswith("superseded: ")  # the same run
    assert _superseded_notes(notes), "the operator is told"
    assert store.list_audit(flow="pricing_sync", entity="approval", external_id=held.external_id)
    capsys.readouterr()
    assert _approve_cli(held.id) == 1  # too late: a person is told why, nothing is published
    assert "superseded" in capsys.readouterr().err
    from erpsync_airflow.cli import main

    assert main(["approvals", "list", "--flow", "pricing_sync", "--status", "all"]) == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(f"{held.id} ") and "pricing_sync" in ln]
    assert " superseded " in line, line  # erpsync's decision, told apart from a person's rejection
    run(store, erp_adapter, storefront_adapter, "r4")
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == shown


def test_an_approval_whose_erp_price_moved_to_a_third_value_is_superseded_and_the_third_value_guarded(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    row, held, shown = _hold_a_cut(world, store, erp_adapter, storefront_adapter)
    near = (Decimal(row["price"]) * Decimal("0.95")).quantize(Decimal("0.01"))  # 5 % off: passes the guard
    _set_price(world, row, near)
    assert _approve_cli(held.id) == 0
    summary = run(store, erp_adapter, storefront_adapter, "r3", notifier=Notes())
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == str(near), "the ERP's current price goes out"
    assert summary.done == 1
    decided = store.get_approval(held.id)
    assert decided.status == "rejected" and f"the ERP now says {near}" in decided.note
    assert store.list_approvals(status="pending", flow="pricing_sync") == []

    # a third value that breaks the guard too: the approval is superseded, the new value held anew
    far = (near * Decimal("0.5")).quantize(Decimal("0.01"))
    _set_price(world, row, (near * Decimal("0.1")).quantize(Decimal("0.01")))
    run(store, erp_adapter, storefront_adapter, "r4")
    (second,) = store.list_approvals(status="pending", flow="pricing_sync")
    _set_price(world, row, far)
    assert _approve_cli(second.id) == 0
    run(store, erp_adapter, storefront_adapter, "r5")
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == str(near)
    assert store.get_approval(second.id).status == "rejected"
    (third,) = store.list_approvals(status="pending", flow="pricing_sync")
    assert third.id != second.id and Decimal(third.proposed["data"]["price"]) == far


def test_a_held_change_the_erp_changes_again_is_a_new_approval_not_the_one_a_person_reviewed(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    """What a person approves is what is published: a pending approval is never rewritten to a
    different price under them; the old one is superseded and a new one is held."""
    row, held, shown = _hold_a_cut(world, store, erp_adapter, storefront_adapter)
    other = (Decimal(row["price"]) * Decimal("0.2")).quantize(Decimal("0.01"))
    _set_price(world, row, other)
    run(store, erp_adapter, storefront_adapter, "r3")
    (new,) = store.list_approvals(status="pending", flow="pricing_sync")
    assert new.id != held.id and Decimal(new.proposed["data"]["price"]) == other
    old = store.get_approval(held.id)
    assert old.status == "rejected" and f"the ERP now says {other}" in old.note
    assert Decimal(old.proposed["data"]["price"]) != other, "the reviewed proposal was rewritten"
    assert _approve_cli(held.id) == 1
    assert _approve_cli(new.id) == 0
    run(store, erp_adapter, storefront_adapter, "r4")
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == str(other)
    assert store.get_approval(new.id).status == "published"


def test_an_approval_the_erp_still_agrees_with_is_published(
    world: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    row, held, shown = _hold_a_cut(world, store, erp_adapter, storefront_adapter)
    assert _approve_cli(held.id) == 0
    notes = Notes()
    summary = run(store, erp_adapter, storefront_adapter, "r3", notifier=notes)
    assert variant_prices(storefront_adapter)["SKU-000003"][0] == held.proposed["data"]["price"]
    assert summary.done == 1 and store.get_approval(held.id).status == "published"
    assert not _superseded_notes(notes)
    # a lookback re-read of the same ERP row in the next run does not hold the published price
    run(store, erp_adapter, storefront_adapter, "r4", full_pass=True)
    assert store.list_approvals(status="pending", flow="pricing_sync") == []
