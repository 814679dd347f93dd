"""Business rules of pricing: rounding policy, price guard, effective price over time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from erpsync.errors import ConfigError
from erpsync.rules.price_guard import GuardPolicy, check_price, guard_policy
from erpsync.rules.pricing import PriceRule, effective_price
from erpsync.rules.rounding import RoundingPolicy, RoundingRule, rounding_policy

UTC = dt.UTC


def t(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=UTC)


# --------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("half_up", "1.005", "1.01"),
        ("half_up", "2.675", "2.68"),  # the float trap: 2.675 is 2.67499... as a float
        ("half_up", "-1.005", "-1.01"),
        ("half_even", "1.005", "1.00"),
        ("half_even", "1.015", "1.02"),
        ("half_down", "1.005", "1.00"),
        ("up", "1.001", "1.01"),
        ("down", "1.009", "1.00"),
        ("half_up", "1.0049999", "1.00"),
        ("half_up", "19.99", "19.99"),
    ],
)
def test_rounding_modes_on_edge_values(mode: str, value: str, expected: str) -> None:
    policy = RoundingPolicy({"USD": RoundingRule(mode=mode, minor_units=2)})
    assert policy.round(D(value), "USD") == D(expected)
    assert str(policy.round(D(value), "USD")) == expected  # exactly two places, never 1.0 or 1.010


def test_minor_units_per_currency() -> None:
    policy = rounding_policy()
    assert policy.round(D("1234.5"), "JPY") == D("1235")  # no minor unit
    assert str(policy.round(D("1.0005"), "KWD")) == "1.001"  # three
    assert str(policy.round(D("7"), "EUR")) == "7.00"
    assert policy.minor_units("JPY") == 0
    assert policy.to_minor(D("12.345"), "USD") == 1235
    assert policy.to_minor(D("500"), "JPY") == 500


def test_rounding_policy_from_config_overrides_one_currency() -> None:
    policy = rounding_policy({"EUR": {"mode": "half_even"}, "CHF": {"mode": "half_up", "minor_units": 2}})
    assert policy.round(D("1.005"), "EUR") == D("1.00")
    assert policy.round(D("1.005"), "USD") == D("1.01")  # defaults kept for the rest
    assert policy.round(D("1.005"), "CHF") == D("1.01")


@pytest.mark.parametrize("bad", [{"EUR": {"mode": "bankers"}}, {"EUR": {"minor_units": -1}}, {"eur": {}}])
def test_bad_rounding_config_is_a_config_error(bad: dict) -> None:
    with pytest.raises(ConfigError):
        rounding_policy(bad)


def test_unknown_currency_has_no_silent_default() -> None:
    with pytest.raises(ConfigError, match="XTS"):
        rounding_policy().round(D("1"), "XTS")


def test_float_refused() -> None:
    with pytest.raises(TypeError):
        rounding_policy().round(1.005, "USD")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- guard


def test_ninety_percent_cut_is_held() -> None:
    v = check_price(D("10.00"), current=D("100.00"), cost=D("45.00"), policy=GuardPolicy())
    assert v.hold
    assert {r.split(":")[0] for r in v.reasons} == {"change_over_threshold", "below_cost"}
    assert v.change_pct == D("-90.0")


@pytest.mark.parametrize(
    ("new", "current", "hold"),
    [
        ("120.00", "100.00", False),  # exactly the threshold is allowed ("beyond" holds)
        ("120.01", "100.00", True),
        ("80.00", "100.00", False),
        ("79.99", "100.00", True),
        ("100.00", None, False),  # a new price: only zero and cost apply
    ],
)
def test_threshold_is_beyond_not_at(new: str, current: str | None, hold: bool) -> None:
    v = check_price(D(new), current=D(current) if current else None, cost=None, policy=GuardPolicy())
    assert v.hold is hold


def test_zero_and_negative_prices_are_held_even_when_new() -> None:
    assert check_price(D("0"), current=None, cost=None, policy=GuardPolicy()).reasons == ("zero_price",)
    assert check_price(D("-1"), current=None, cost=None, policy=GuardPolicy()).hold


def test_below_cost_is_held() -> None:
    v = check_price(D("9.99"), current=D("10.50"), cost=D("10.00"), policy=GuardPolicy())
    assert v.hold and v.reasons == ("below_cost: 9.99 < cost 10.00",)
    assert not check_price(D("10.00"), current=D("10.50"), cost=D("10.00"), policy=GuardPolicy()).hold


def test_guard_policy_from_params() -> None:
    p = guard_policy({"price_guard_threshold_pct": "35", "price_guard_below_cost": False})
    assert p.max_change_pct == D("35") and p.hold_below_cost is False
    assert not check_price(D("70"), current=D("100"), cost=D("80"), policy=p).hold
    with pytest.raises(ConfigError):
        guard_policy({"price_guard_threshold_pct": "-5"})
    with pytest.raises(ConfigError):
        guard_policy({"price_guard_threshold_pct": "abc"})


# --------------------------------------------------------------------------- effective price


def rule(price: str, start: dt.datetime | None = None, end: dt.datetime | None = None, sale: bool = False) -> PriceRule:
    return PriceRule(price=D(price), valid_from=start, valid_to=end, sale=sale)


def test_sale_starts_and_ends_on_its_dates() -> None:
    rules = {"LIST": rule("100.00"), "SALE": rule("79.00", t(10), t(20), sale=True)}
    before = effective_price(rules, t(9, 23))
    assert (before.price, before.compare_at, before.next_change) == (D("100.00"), None, t(10))
    during = effective_price(rules, t(10))
    assert (during.price, during.compare_at, during.next_change) == (D("79.00"), D("100.00"), t(20))
    after = effective_price(rules, t(20))  # valid_to is exclusive
    assert (after.price, after.compare_at, after.next_change) == (D("100.00"), None, None)


def test_overlapping_sales_lowest_wins_and_no_compare_at_when_sale_is_not_lower() -> None:
    rules = {
        "LIST": rule("100.00"),
        "SALE-A": rule("90.00", t(1), t(30), sale=True),
        "SALE-B": rule("85.00", t(5), t(6), sale=True),
        "SALE-C": rule("120.00", t(1), t(30), sale=True),
    }
    assert effective_price(rules, t(5, 12)).price == D("85.00")
    assert effective_price(rules, t(7)).price == D("90.00")
    odd = effective_price({"LIST": rule("100"), "S": rule("120", sale=True)}, t(1))
    assert odd.price == D("120") and odd.compare_at is None


def test_regular_rules_latest_start_wins_and_expiry_removes_the_price() -> None:
    rules = {"OLD": rule("50.00", t(1)), "NEW": rule("55.00", t(15), t(25))}
    assert effective_price(rules, t(14)).price == D("50.00")
    assert effective_price(rules, t(15)).price == D("55.00")
    assert effective_price(rules, t(26)).price == D("50.00")
    contract = {"CONTRACT": rule("70.00", None, t(20))}
    gone = effective_price(contract, t(21))
    assert gone.price is None and gone.next_change is None
    assert effective_price({"C": rule("70", t(22))}, t(21)).next_change == t(22)
