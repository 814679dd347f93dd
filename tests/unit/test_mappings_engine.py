"""The mapping engine's own rules, independent of any system."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from erpsync.errors import MappingError
from erpsync.mappings.engine import F, amount, apply_spec, country, email, parse_time, quantity, text


def test_dotted_paths_defaults_and_nullable() -> None:
    spec = [
        F("cid", "customer.id", text, nullable=True),
        F("note", "note", text, default="-"),
        F("skipped", "absent", text),
    ]
    assert apply_spec(spec, {"customer": None}, "r") == {"cid": None, "note": "-"}
    assert apply_spec(spec, {"customer": {"id": " C1 "}, "note": "x"}, "r") == {"cid": "C1", "note": "x"}


def test_not_a_record() -> None:
    with pytest.raises(MappingError) as err:
        apply_spec([F("a", "a")], ["not", "a", "dict"], "r1")  # type: ignore[arg-type]
    assert (err.value.record, err.value.rule) == ("r1", "object")


def test_transforms() -> None:
    assert amount("19.990") == Decimal("19.990")
    assert amount(3) == Decimal(3)
    assert quantity("2") == 2
    assert country(" gb ") == "GB"
    assert email(" A@B.example ") == "A@B.example"
    assert parse_time("2026-11-23T10:00:00+01:00") == dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    assert parse_time("2026-11-23T10:00:00") == dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("bad", ["a@b", "@b.com", "a b@c.com", "a@b@c.com", 42])
def test_bad_emails(bad: object) -> None:
    with pytest.raises(MappingError) as err:
        apply_spec([F("email", "email", email)], {"email": bad}, "r")
    assert err.value.rule == "email"


@pytest.mark.parametrize(
    ("value", "rule"), [(1.5, "money_not_float"), ("NaN", "money"), ("1e", "money"), ([], "money")]
)
def test_bad_money(value: object, rule: str) -> None:
    with pytest.raises(MappingError) as err:
        apply_spec([F("price", "price", amount)], {"price": value}, "r")
    assert (err.value.field, err.value.rule, err.value.value) == ("price", rule, value)
