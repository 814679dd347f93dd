"""The hostile-data check of a flat row a mapper hands the quality gate (the stock mapper's
``stock_level``): its identifiers are checked like a canonical record's, so a lookalike or
control character in a stock row's SKU or warehouse is a dead letter, not a level pushed."""

from __future__ import annotations

import datetime as dt

import pytest

from erpsync import limits

BOUND = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def row(sku: str, location: str = "MAIN") -> dict[str, object]:
    return {"sku": sku, "location": location, "key": f"{sku}@{location}", "on_hand": 5}


@pytest.mark.parametrize("sku", ["SKU-1", "Café-Crème 250g", "木-1", "SKU 1"])
def test_a_plain_stock_row_passes(sku: str) -> None:
    assert limits.record_problem(row(sku), BOUND) is None


@pytest.mark.parametrize(("sku", "location", "words"), [
    ("SKU-\u0421001", "MAIN", "sku 'SKU-С001' mixes scripts"),  # a Cyrillic Es among Latin letters
    ("SKU\u200b-1", "MAIN", "U+200B"),  # zero-width space
    ("SKU-1", "MA\x00IN", "location"),  # NUL in the warehouse
])
def test_a_lookalike_or_control_character_in_a_stock_row_is_named(sku: str, location: str, words: str) -> None:
    problem = limits.record_problem(row(sku, location), BOUND)
    assert problem is not None and problem.startswith("suspicious_identifier") and words in problem
