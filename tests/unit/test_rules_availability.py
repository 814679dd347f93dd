"""Available to sell, location map, kits and channel allocation: the inventory business rules."""

from __future__ import annotations

import datetime as dt

import pytest

from erpsync.model import InventoryLevel
from erpsync.rules.availability import (
    LocationMap,
    aggregate,
    allocate_channels,
    available_to_sell,
    figures_to_sell,
    kit_available,
    kit_restock_date,
    over_allocated,
    parse_shares,
    split_by_shares,
    take_shortfall,
)


def level(sku: str = "SKU-1", location: str = "MAIN", on_hand: int = 10, **kw) -> InventoryLevel:
    return InventoryLevel(sku=sku, location=location, on_hand=on_hand, **kw)


# --------------------------------------------------------------------------- available to sell


def test_available_subtracts_every_hold() -> None:
    lv = level(on_hand=100, allocated=10, reserved=5, damaged=3, quarantined=2, safety_stock=4)
    assert available_to_sell(lv) == 76


def test_available_is_never_negative_even_with_negative_on_hand() -> None:
    assert available_to_sell(level(on_hand=-7)) == 0
    assert available_to_sell(level(on_hand=3, allocated=2, safety_stock=5)) == 0


def test_safety_stock_can_be_ignored() -> None:
    assert available_to_sell(level(on_hand=10, safety_stock=4), include_safety_stock=False) == 10


def test_figures_formula_is_the_same_one() -> None:
    assert figures_to_sell(100, 10, 5, 3, 2, 4) == available_to_sell(
        level(on_hand=100, allocated=10, reserved=5, damaged=3, quarantined=2, safety_stock=4)
    )
    assert figures_to_sell(-5, 0, 0, 0, 0, 0) == 0


# --------------------------------------------------------------------------- location map


def test_location_map_identity_and_configured() -> None:
    ident = LocationMap.identity(["MAIN", "EAST"])
    assert ident.store_location("MAIN") == "MAIN"
    assert ident.store_location("WEST") is None
    cfg = LocationMap.from_param({"MAIN": "STORE", "EAST": "STORE", "WEST": None})
    assert cfg.store_location("EAST") == "STORE"
    assert cfg.store_location("WEST") is None  # explicitly excluded
    assert cfg.is_excluded("WEST") and not cfg.is_excluded("NORTH")
    assert cfg.sources("STORE") == ("EAST", "MAIN")


def test_location_map_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="location_map"):
        LocationMap.from_param(["MAIN"])
    with pytest.raises(ValueError, match="location_map"):
        LocationMap.from_param({"MAIN": 3})


def test_aggregate_per_location_and_reports_unmapped() -> None:
    lmap = LocationMap.identity(["MAIN", "EAST"])
    res = aggregate(
        [level(location="MAIN", on_hand=5), level(location="EAST", on_hand=7), level(location="WEST", on_hand=9)],
        lmap,
    )
    assert {k: v.available for k, v in res.levels.items()} == {("SKU-1", "MAIN"): 5, ("SKU-1", "EAST"): 7}
    assert res.unmapped == [("SKU-1", "WEST")]


def test_aggregate_sums_warehouses_and_a_negative_one_eats_the_others_stock() -> None:
    """Two warehouses feed one store location; one in the red (4 units sold it does not have)
    takes its shortfall off the other: the location sells what the item really has."""
    lmap = LocationMap.from_param({"MAIN": "ONLINE", "EAST": "ONLINE"})
    t1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    t2 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    res = aggregate(
        [level(location="MAIN", on_hand=5, updated_at=t1), level(location="EAST", on_hand=-4, updated_at=t2)],
        lmap,
    )
    agg = res.levels[("SKU-1", "ONLINE")]
    assert agg.available == 1
    assert agg.source_at == t2


# --------------------------------------------------------------------------- over-allocation (issue 16, 9)


def test_over_allocated_is_what_a_warehouse_committed_beyond_its_stock() -> None:
    assert over_allocated(300, 2227, 0, 0, 0) == 1927
    assert over_allocated(10, 3, 2, 1, 1) == 0
    assert over_allocated(-3, 0, 0, 0, 0) == 3  # negative on hand: sold what it did not have
    assert over_allocated(2, 1, 0, 0, 0) == 0  # safety stock is a margin, never a debt to the others


def test_flash_sale_split_stock_never_sells_more_than_the_item_has() -> None:
    """The flash sale of the issue: 500 units split 300 + 200, 2,227 booked on the first warehouse.
    Clamping each warehouse at 0 on its own left the second one showing 200; the item is short."""
    lmap = LocationMap.from_param({"WH1": "STORE-1", "WH2": "STORE-2"})
    res = aggregate([level(location="WH1", on_hand=300, allocated=2227), level(location="WH2", on_hand=200)], lmap)
    assert {k[1]: v.available for k, v in res.levels.items()} == {"STORE-1": 0, "STORE-2": 0}
    # 120 booked on the first warehouse beyond its 300: the second location covers them
    res = aggregate([level(location="WH1", on_hand=300, allocated=420), level(location="WH2", on_hand=200)], lmap)
    assert {k[1]: v.available for k, v in res.levels.items()} == {"STORE-1": 0, "STORE-2": 80}


@pytest.mark.parametrize("wh1,wh2,wh3", [
    ((300, 420), (200, 0), (50, 10)), ((10, 0), (5, 30), (0, 0)), ((0, 7), (0, 0), (9, 1)),
    ((100, 100), (3, 3), (1, 0)), ((-5, 0), (4, 0), (8, 2)),
])
def test_availability_over_locations_never_exceeds_the_items_total(wh1, wh2, wh3) -> None:
    lmap = LocationMap.from_param({"WH1": "A", "WH2": "B", "WH3": "A"})
    levels = [level(location=w, on_hand=oh, allocated=al) for w, (oh, al) in zip(("WH1", "WH2", "WH3"),
                                                                            (wh1, wh2, wh3), strict=True)]
    res = aggregate(levels, lmap)
    total = sum(oh - al for oh, al in (wh1, wh2, wh3))
    got = {k[1]: v.available for k, v in res.levels.items()}
    assert sum(got.values()) == max(0, total)
    assert all(n >= 0 for n in got.values())
    # no location sells more than its own warehouses hold free
    assert got["A"] <= max(0, wh1[0] - wh1[1]) + max(0, wh3[0] - wh3[1])
    assert got["B"] <= max(0, wh2[0] - wh2[1])


def test_shortfall_comes_off_its_own_location_first_then_the_others_in_map_order() -> None:
    assert take_shortfall({"A": 5, "B": 10, "C": 10}, {"B": 12}, ["A", "B", "C"]) == {"A": 3, "B": 0, "C": 10}
    assert take_shortfall({"A": 5, "B": 10}, {"A": 3}, ["A", "B"]) == {"A": 2, "B": 10}
    assert take_shortfall({"A": 5, "B": 10}, {"A": 30}, ["A", "B"]) == {"A": 0, "B": 0}
    assert take_shortfall({"A": 5}, {}, ["A"]) == {"A": 5}


def test_excluded_warehouse_owes_nothing_to_the_store() -> None:
    """A warehouse mapped to None is outside the store's stock, its commitments too."""
    lmap = LocationMap.from_param({"WH1": "A", "B2B": None})
    res = aggregate([level(location="WH1", on_hand=10), level(location="B2B", on_hand=0, allocated=50)], lmap)
    assert res.levels[("SKU-1", "A")].available == 10


def test_excluded_warehouse_is_neither_pushed_nor_reported() -> None:
    res = aggregate([level(location="RETURNS", on_hand=5)], LocationMap.from_param({"RETURNS": None}))
    assert res.levels == {} and res.unmapped == []


def test_backorderable_and_restock_date_pass_through() -> None:
    d1, d2 = dt.date(2026, 12, 1), dt.date(2026, 12, 15)
    lmap = LocationMap.from_param({"MAIN": "ONLINE", "EAST": "ONLINE"})
    res = aggregate(
        [
            level(location="MAIN", on_hand=0, restock_date=d2, backorderable=True),
            level(location="EAST", on_hand=0, restock_date=d1),
        ],
        lmap,
    )
    agg = res.levels[("SKU-1", "ONLINE")]
    assert agg.backorderable is True
    assert agg.restock_date == d1  # the earliest date stock comes back to the location


# --------------------------------------------------------------------------- kits


def test_kit_is_min_over_components_of_floor() -> None:
    assert kit_available({"A": 2, "B": 1}, {"A": 7, "B": 10}) == 3
    assert kit_available({"A": 2, "B": 3}, {"A": 7, "B": 5}) == 1


def test_kit_with_a_missing_or_empty_component_is_zero() -> None:
    assert kit_available({"A": 1, "B": 1}, {"A": 7}) == 0
    assert kit_available({"A": 1}, {"A": 0}) == 0
    assert kit_available({}, {"A": 3}) == 0


def test_kit_rejects_bad_quantities() -> None:
    with pytest.raises(ValueError, match="quantity"):
        kit_available({"A": 0}, {"A": 3})


def test_kit_restock_date_is_when_the_limiting_component_returns() -> None:
    d1, d2 = dt.date(2026, 12, 1), dt.date(2026, 12, 20)
    avail = {"A": 0, "B": 0, "C": 5}
    assert kit_restock_date({"A": 1, "B": 1, "C": 1}, avail, {"A": d1, "B": d2}) == d2
    assert kit_restock_date({"A": 1, "B": 1}, avail, {"A": d1}) is None  # B has no date: unknown
    assert kit_restock_date({"C": 1}, avail, {}) is None  # in stock: no restock date


# --------------------------------------------------------------------------- channel allocation


SEED_SHARES = {"web": 70, "marketplace": 20, "b2b": 10}


def test_split_by_shares_is_exact_and_sums_to_the_pool() -> None:
    assert split_by_shares(100, SEED_SHARES) == {"web": 70, "marketplace": 20, "b2b": 10}
    for pool in range(0, 50):
        parts = split_by_shares(pool, SEED_SHARES)
        assert sum(parts.values()) == pool
        assert all(v >= 0 for v in parts.values())
    assert split_by_shares(1, SEED_SHARES) == {"web": 1, "marketplace": 0, "b2b": 0}
    assert split_by_shares(7, SEED_SHARES) == {"web": 5, "marketplace": 1, "b2b": 1}


def test_allocation_without_demand_follows_the_shares() -> None:
    assert allocate_channels(100, SEED_SHARES) == {"web": 70, "marketplace": 20, "b2b": 10}
    assert allocate_channels(0, SEED_SHARES) == {"web": 0, "marketplace": 0, "b2b": 0}


def test_slow_channel_gives_part_of_its_share_to_the_busy_one() -> None:
    alloc = allocate_channels(100, SEED_SHARES, demand={"web": 90, "marketplace": 5, "b2b": 5})
    # marketplace keeps max(demand 5, half of 20) = 10, b2b max(5, 5) = 5: 15 units move to web
    assert alloc == {"web": 85, "marketplace": 10, "b2b": 5}
    assert sum(alloc.values()) == 100


def test_released_units_go_back_when_nobody_needs_them() -> None:
    alloc = allocate_channels(100, SEED_SHARES, demand={"web": 72, "marketplace": 0, "b2b": 0})
    assert alloc["web"] == 72  # capped at its shortfall
    assert sum(alloc.values()) == 100
    assert alloc["marketplace"] >= 10 and alloc["b2b"] >= 5


def test_allocation_never_exceeds_the_pool() -> None:
    for pool in (0, 1, 2, 3, 17, 101):
        for demand in ({"web": 1000}, {"marketplace": 1000, "b2b": 3}, {}):
            alloc = allocate_channels(pool, SEED_SHARES, demand=demand)
            assert sum(alloc.values()) == pool, (pool, demand, alloc)


def test_parse_shares_validates() -> None:
    assert parse_shares("web=70,marketplace=20,b2b=10") == SEED_SHARES
    assert parse_shares(SEED_SHARES) == SEED_SHARES
    with pytest.raises(ValueError, match="share"):
        parse_shares({"web": -1})
    with pytest.raises(ValueError, match="share"):
        parse_shares({"web": 0, "b2b": 0})
