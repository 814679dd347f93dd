"""The behavioural checks every connector must pass (issue 18): what the flows rely on.

Each check takes a driver (``drivers.py``) and raises AssertionError when the connector breaks
the contract; ``pytest.skip`` names the capability of the matrix a connector lacks. The checks
are plain functions so the suite's own test (``test_suite_catches_broken_connectors.py``) can
run them against deliberately broken adapters and see them fail.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from erpsync.errors import PermanentError, UnknownOutcomeError
from tests.conformance.drivers import Driver, ErpDriver, Raw, StoreDriver, lose_answer, tag


def require(driver: Driver, capability: str) -> None:
    if not driver.caps.has(capability):
        pytest.skip(f"{driver.label} lacks capability {capability}"
                    + (f" ({driver.caps.note(capability)})" if driver.caps.note(capability) else ""))


# --------------------------------------------------------------------------------------- paging


def check_paging_reads_every_record_once(driver: Driver, *, minimum: int = 8) -> None:
    """Page size 3 (the fixture's): every record present before the read is read exactly once
    across the page boundaries, while a record is inserted between the first and second page."""
    assert driver.adapter.page_size <= 3, "the suite pages in threes"
    before = [driver.key(r) for r in driver.records()]
    while len(before) < minimum:
        driver.insert()
        before = [driver.key(r) for r in driver.records()]
    assert len(before) == len(set(before)), f"{driver.label}: a quiet listing repeats {_dupes(before)}"
    seen: list[str] = []
    inserted = None
    for n, raw in enumerate(driver.records(), start=1):
        seen.append(driver.key(raw))
        if n == 2:  # inside the first page: the insert lands while the read is under way
            inserted = driver.insert()
    counts = Counter(seen)
    assert not [k for k, c in counts.items() if c > 1], f"{driver.label}: read twice: {_dupes(seen)}"
    missing = set(before) - set(seen)
    assert not missing, f"{driver.label}: {len(missing)} of {len(before)} records never read: {sorted(missing)[:5]}"
    assert inserted is not None
    after = [driver.key(r) for r in driver.records()]
    assert inserted in after and Counter(after)[inserted] == 1, f"{driver.label}: the inserted {inserted} is not read once"


def check_paging_survives_a_record_changing_mid_read(driver: Driver, *, minimum: int = 10) -> None:
    """Page size 3, at least three pages: a record already read (on the first page) changes while
    the listing is paged (an order paid or shipped mid-run: its change time jumps to now). Every
    record present at the start is still read; the unchanged ones exactly once. The changed one
    is read at least once and may be read again in its new version (harmless: the ledger skips
    what it has synced, and the next window would bring the new version anyway).

    A listing paged by offset over a sort on the change time fails this: the changed record moves
    to the end (or out of an ``updated_before`` window), every later record shifts one place left
    and the first record of the next page is never read; the flow's cursor then moves past it, so
    it is lost for good. Paging must be keyset (on the change time, or on an id that never changes)."""
    assert driver.adapter.page_size <= 3, "the suite pages in threes"
    while len(before := [driver.key(r) for r in driver.records()]) < minimum:
        driver.insert()
    assert len(before) == len(set(before)), f"{driver.label}: a quiet listing repeats {_dupes(before)}"
    seen: list[str] = []
    read: list[Raw] = []
    changed = None
    for n, raw in enumerate(driver.records(), start=1):
        seen.append(driver.key(raw))
        read.append(raw)
        if n == 2:  # inside the first page: the next pages are read after the change
            changed = driver.touch(read)
    assert changed is not None, f"{driver.label}: the listing ended before the suite could change a record"
    assert changed in before, f"{driver.label}: the driver changed {changed}, not a record read"
    missing = set(before) - set(seen)
    assert not missing, (f"{driver.label}: {len(missing)} of {len(before)} records never read after {changed} "
                         f"changed mid-read: {sorted(missing)[:5]}")
    twice = [k for k in _dupes(seen) if k != changed]
    assert not twice, f"{driver.label}: unchanged records read twice: {twice}"


def check_paging_reads_records_sharing_one_change_time_once(driver: Driver, *, count: int = 5) -> None:
    """Records whose change times are equal (one transaction touched them all, or one millisecond
    did) across a page boundary are each read exactly once: a keyset on the change time alone
    would skip or repeat them, so the boundary time needs a tie rule (an id, or re-reading that
    time and dropping what was read)."""
    same_time = getattr(driver, "same_change_time", None)
    if same_time is None:
        pytest.skip(f"{driver.label}: the suite cannot give records one change time on this server")
    assert driver.adapter.page_size <= 3, "the suite pages in threes"
    tied = [driver.insert() for _ in range(count)]
    same_time(tied)
    seen = [driver.key(r) for r in driver.records()]
    counts = Counter(seen)
    wrong = {k: counts[k] for k in tied if counts[k] != 1}
    assert not wrong, f"{driver.label}: records sharing one change time read {wrong} times (once each expected)"
    assert not _dupes(seen), f"{driver.label}: read twice: {_dupes(seen)}"


def _dupes(keys: list[str]) -> list[str]:
    return sorted(k for k, c in Counter(keys).items() if c > 1)[:5]


# -------------------------------------------------------------------------------------- windows


def check_erp_updated_since_is_inclusive(driver: ErpDriver) -> None:
    """``updated_since`` is inclusive and timestamps round-trip exactly: the change time a sales
    order shows, handed back, selects that order; one step of the system's time resolution later
    (the sandbox shows whole seconds, Tryton microseconds, checked at 1 ms) does not."""
    key = driver.insert()
    raw = next(r for r in driver.records() if driver.key(r) == key)
    at = driver.updated_at(raw)
    assert at.tzinfo is not None, f"{driver.label}: {at} has no time zone"
    assert key in {driver.key(r) for r in driver.records(updated_since=at)}, \
        f"{driver.label}: updated_since={at.isoformat()} (the record's own time) misses it: not inclusive"
    step = driver.resolution
    assert key not in {driver.key(r) for r in driver.records(updated_since=at + step)}, \
        f"{driver.label}: updated_since {step} after the record's time still returns it"


def check_store_order_window_is_since_inclusive_before_exclusive(driver: StoreDriver, order: dict[str, Any]) -> None:
    """``list_orders(updated_since, updated_before)`` is [since, before), at the system's resolution."""
    key = driver.order_key(order)
    raw = next(r for r in driver.adapter.list_orders() if driver.order_key(r) == key)
    at = driver.order_updated_at(raw)

    def window(**kw: Any) -> set[str]:
        return {driver.order_key(r) for r in driver.adapter.list_orders(**kw)}

    assert key in window(updated_since=at), f"{driver.label}: updated_since={at.isoformat()} misses the order"
    step = driver.resolution
    assert key in window(updated_since=at, updated_before=at + step), f"{driver.label}: [at, at+{step}) misses it"
    assert key not in window(updated_before=at), f"{driver.label}: updated_before={at.isoformat()} is not exclusive"
    assert key not in window(updated_since=at + step), f"{driver.label}: updated_since=at+{step} still returns it"


# ------------------------------------------------------------------------------------ lost answer


def check_erp_lost_order_answer_is_found_by_reference(driver: ErpDriver) -> None:
    """A sales order whose answer is lost raises UnknownOutcomeError (never a blind resend), and
    ``find_sales_order(ref)`` finds the one order it made: orders_sync then binds it, no duplicate."""
    customer_no = driver.new_customer()
    ref = f"conf-lost-{tag()}"
    payload = driver.order(ref, driver.item_code("12.34"), customer_no, "12.34", 2)
    with lose_answer(driver.adapter, driver.is_order_create) as lost:
        with pytest.raises(UnknownOutcomeError):
            driver.adapter.create_sales_order(payload, idempotency_key=f"order:{ref}")
    assert lost, f"{driver.label}: the suite never saw the order's create request"
    found = driver.adapter.find_sales_order(ref)
    assert found is not None, f"{driver.label}: the order whose answer was lost is not found by its reference {ref}"
    assert driver.mapping.sales_order_summary(found)["ref"] == ref
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    same = [s for s in driver.adapter.list_sales_orders(updated_since=since)
            if driver.mapping.sales_order_summary(s)["ref"] == ref]
    assert len(same) == 1, f"{driver.label}: {len(same)} sales orders carry {ref}"


def check_store_lost_product_answer_makes_no_duplicate(driver: StoreDriver) -> None:
    """A product create whose answer is lost, written again as catalog_sync's next try does, is
    one product: the store finds it by its handle/slug or replays the key."""
    sku = f"CONF-LOST-{tag()}".upper()
    with lose_answer(driver.adapter, driver.is_product_create) as lost:
        with pytest.raises(UnknownOutcomeError):
            driver.upsert(sku)
    assert lost, f"{driver.label}: the suite never saw the product's create request"
    driver.upsert(sku)
    assert driver.count_sku(sku) == 1, f"{driver.label}: {driver.count_sku(sku)} variants with SKU {sku}"


# --------------------------------------------------------------------------- sessions, throttling


def check_session_expiry_mid_run_is_recovered(driver: Driver) -> None:
    """The server forgets the session between two pages of a read: the adapter logs in again
    and the read goes on to the end, every record once."""
    require(driver, "expiring_sessions")
    while len(full := [driver.key(r) for r in driver.records()]) < 5:
        driver.insert()
    seen = []
    for n, raw in enumerate(driver.records(), start=1):
        seen.append(driver.key(raw))
        if n == 1:
            driver.expire_session()
    assert sorted(seen) == sorted(full), f"{driver.label}: after the session expired the read gave {len(seen)} of {len(full)}"


def check_throttle_retry_after_is_honoured(driver: Driver, retry_after: float = 1.5) -> None:
    """A 429 with ``Retry-After`` is waited out (not retried at once) and the read succeeds."""
    require(driver, "rate_limits")
    before = driver.throttled()
    driver.throttle_once(retry_after)
    started = time.monotonic()
    first = next(iter(driver.records()))
    took = time.monotonic() - started
    assert first is not None
    assert driver.throttled() == before + 1, f"{driver.label}: the server answered no 429"
    assert took >= retry_after * 0.95, f"{driver.label}: retried after {took:.2f}s, Retry-After said {retry_after}s"


# ------------------------------------------------------------------------------------- refusals


def check_refusal_is_permanent_with_the_systems_message(driver: Driver) -> None:
    call, words = driver.refusal()
    with pytest.raises(PermanentError) as info:
        call()
    assert words in str(info.value), f"{driver.label}: {info.value!s} does not carry the system's words {words!r}"


# ------------------------------------------------------------------------------------ round trip


def check_erp_money_quantities_round_trip(driver: ErpDriver) -> None:
    """An order of 3 x 19.99 is booked with that line and as 59.97 exactly, on its day, in its currency."""
    customer_no = driver.new_customer()
    ref = f"conf-rt-{tag()}"
    payload = driver.order(ref, driver.item_code("19.99"), customer_no, "19.99", 3)
    driver.adapter.create_sales_order(payload, idempotency_key=f"order:{ref}")
    raw = driver.adapter.find_sales_order(ref)
    assert driver.lines(raw) == [(Decimal("19.99"), Decimal(3))], f"{driver.label}: lines {driver.lines(raw)}"
    summary = driver.mapping.sales_order_summary(raw)
    assert (summary["total"] - summary["tax"], summary["currency"], summary["placed_on"]) == (
        Decimal("59.97"), "USD", dt.date(2026, 12, 1)), f"{driver.label}: {summary}"
    assert str(summary["total"] - summary["tax"]) == "59.97"  # the exact decimal, not a float near it


def check_store_money_quantities_round_trip(driver: StoreDriver) -> None:
    """A price of 1234.57 and an availability of 17 read back exactly as written."""
    from erpsync.mappings.stock import level_to_storefront
    from erpsync.rules.availability import StoreLevel

    sku = f"CONF-RT-{tag()}".upper()
    driver.product(sku, "5.00")
    m = driver.mapping
    driver.adapter.set_variant_prices([m.variant_price(sku, Decimal("1234.57"), None, currency="USD")],
                                      idempotency_key=f"conf:price:{sku}")
    shown = {s: p for prod in driver.adapter.list_products() for s, p, _ in m.published_prices(prod)}
    assert shown.get(sku) is not None and Decimal(shown[sku]) == Decimal("1234.57"), f"{driver.label}: {shown.get(sku)}"
    loc = driver.location()
    driver.adapter.set_inventory([level_to_storefront(StoreLevel(sku, loc, 17))], idempotency_key=f"conf:inv:{sku}")
    levels = [m.store_level_of(r) for r in driver.adapter.inventory_for([sku])]
    here = [lv for lv in levels if lv and lv["sku"] == sku and str(lv["location"]) == loc]
    assert [lv["available"] for lv in here] == [17], f"{driver.label}: {levels}"


# ----------------------------------------------------------------------------------- unknown SKUs


def check_erp_unknown_sku_is_named(driver: ErpDriver) -> None:
    missing = f"NO-SUCH-{tag()}".upper()
    payload = driver.order(f"conf-unk-{tag()}", missing, driver.new_customer(), "1.00", 1)
    with pytest.raises(PermanentError) as info:
        driver.adapter.create_sales_order(payload, idempotency_key=f"conf:{tag()}")
    assert missing in str(info.value), f"{driver.label}: {info.value!s} does not name {missing}"


def check_store_unknown_sku_is_named(driver: StoreDriver) -> None:
    from erpsync.mappings.stock import level_to_storefront
    from erpsync.rules.availability import StoreLevel

    missing = f"NO-SUCH-{tag()}".upper()
    with pytest.raises(PermanentError) as info:
        driver.adapter.set_inventory([level_to_storefront(StoreLevel(missing, driver.location(), 1))],
                                     idempotency_key=f"conf:{tag()}")
    told = str(info.value) + json.dumps(getattr(info.value, "body", None), default=str)
    assert missing in told, f"{driver.label}: {told} does not name {missing}"
