"""Refund (store) vs credit memo (ERP) to the cent, and the rounding cause when that is the difference."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.rules.refunds import (
    ReturnedLine,
    check_refund,
    credit_for,
    max_rounding_gap,
    rounding_explanations,
)

D = Decimal


def line(unit: str, ordered: int, returned: int, *, discount: str = "0", tax: str = "0", rate: str = "0") -> ReturnedLine:
    return ReturnedLine(
        sku="SKU-1",
        unit_price=D(unit),
        ordered_qty=ordered,
        returned_qty=returned,
        line_discount=D(discount),
        line_tax=D(tax),
        tax_rate=D(rate),
    )


# --------------------------------------------------------------------------- what a return is worth


def test_prorated_credit_of_a_partial_return_half_up_per_line() -> None:
    # 3 x 19.99, 2.99 discount on the line, 7.25 % tax 4.13 on the line; 1 returned
    ln = line("19.99", 3, 1, discount="2.99", tax="4.13", rate="0.0725")
    # net 19.99 - 2.99/3 = 18.993333 -> 18.99 ; tax 4.13/3 = 1.376666 -> 1.38
    assert credit_for([ln], method="prorate") == D("20.37")
    # the store recomputes tax on the rounded net: 18.99 * 0.0725 = 1.376775 -> 1.38, same here
    assert credit_for([ln], method="recompute_tax") == D("20.37")


def test_methods_differ_by_a_cent_on_some_lines() -> None:
    ln = line("10.05", 2, 1, tax="1.46", rate="0.0725")  # tax of the line rounded on 20.10 -> 1.457 -> 1.46
    assert credit_for([ln], method="prorate") == D("10.05") + D("0.73")  # 1.46 / 2
    assert credit_for([ln], method="recompute_tax") == D("10.05") + D("0.73")  # 10.05 * 0.0725 = 0.7286
    ln2 = line("0.15", 1, 1, tax="0.01", rate="0.0725")  # 0.010875 -> 0.01
    three = [ln2, ln2, ln2]
    assert credit_for(three, method="prorate") == D("0.48")  # 3 x (0.15 + 0.01)
    assert credit_for(three, method="round_total") == D("0.48")
    ln3 = line("0.15", 1, 1, tax="0.011", rate="0.0725")
    # an unrounded line tax of 0.011 x 3 = 0.033 rounds once to 0.03, per line to 0.01 x 3 = 0.03
    assert credit_for([ln3] * 3, method="round_total") == D("0.48")


def test_zero_quantity_and_full_return() -> None:
    full = line("5.00", 2, 2, discount="1.00", tax="0.65", rate="0.0725")
    assert credit_for([full], method="prorate") == D("9.65")


def test_a_return_of_more_than_was_ordered_is_refused() -> None:
    with pytest.raises(ValueError, match="returned 3 of 2"):
        line("5.00", 2, 3)


def test_money_is_never_a_float() -> None:
    with pytest.raises(ValueError):
        ReturnedLine(sku="S", unit_price=1.5, ordered_qty=1, returned_qty=1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the check


def test_exact_match() -> None:
    chk = check_refund(refund=D("20.37"), credit_memo=D("20.37"), currency="USD", refund_currency="USD")
    assert chk.ok and chk.difference == D("0.00") and chk.cause == "match"


def test_missing_sides() -> None:
    assert check_refund(refund=None, credit_memo=D("1.00"), currency="USD").cause == "missing_refund"
    assert check_refund(refund=D("1.00"), credit_memo=None, currency="USD").cause == "missing_credit_memo"
    assert not check_refund(refund=None, credit_memo=D("1.00"), currency="USD").ok


def test_currency_mismatch_is_never_compared_as_numbers() -> None:
    chk = check_refund(refund=D("10.00"), credit_memo=D("10.00"), currency="EUR", refund_currency="USD")
    assert not chk.ok and chk.cause == "currency_mismatch"


def test_a_cent_explained_by_rounding_names_both_methods() -> None:
    # two lines where prorating the line tax and recomputing it on the net round differently
    # 10.10 x 3 with tax 2.20 on the line, 2 returned: prorated 1.4667 -> 1.47, recomputed 20.20 x 7.25 % = 1.4645 -> 1.46
    lines = [line("10.10", 3, 2, tax="2.20", rate="0.0725"), line("3.30", 3, 2, tax="0.72", rate="0.0725")]
    erp = credit_for(lines, method="prorate")
    store = credit_for(lines, method="recompute_tax")
    assert erp != store and abs(erp - store) <= D("0.02")
    chk = check_refund(refund=store, credit_memo=erp, currency="USD", lines=lines)
    assert not chk.ok
    assert chk.cause == "rounding"
    assert chk.difference == store - erp
    assert "store=recompute_tax" in chk.detail and "erp=prorate" in chk.detail
    assert (("recompute_tax", "prorate")) in rounding_explanations(lines, refund=store, credit_memo=erp)


def test_a_small_gap_without_an_explanation_is_flagged_as_suspected_rounding() -> None:
    lines = [line("10.00", 1, 1)]
    chk = check_refund(refund=D("10.01"), credit_memo=D("10.00"), currency="USD", lines=lines)
    assert chk.cause == "rounding_suspected" and not chk.ok


def test_a_large_gap_is_an_amount_mismatch_and_says_which_side_is_higher() -> None:
    lines = [line("10.00", 2, 1)]
    chk = check_refund(refund=D("20.00"), credit_memo=D("10.00"), currency="USD", lines=lines)
    assert chk.cause == "over_refund" and chk.difference == D("10.00")
    chk = check_refund(refund=D("5.00"), credit_memo=D("10.00"), currency="USD", lines=lines)
    assert chk.cause == "under_refund" and chk.difference == D("-5.00")


def test_rounding_gap_bound_grows_with_rounded_components() -> None:
    lines = [line("1.00", 1, 1, tax="0.07", rate="0.0725")] * 4
    assert max_rounding_gap(lines) == D("0.04")  # one cent per line (net + tax rounded once each, half a cent each)
    assert max_rounding_gap([]) == D("0.01")


def test_tolerance_is_zero_by_default_and_the_report_is_a_plain_dict() -> None:
    chk = check_refund(refund=D("10.00"), credit_memo=D("10.01"), currency="USD")
    assert not chk.ok
    d = chk.to_dict()
    assert d == {
        "ok": False,
        "currency": "USD",
        "refund": "10.00",
        "credit_memo": "10.01",
        "difference": "-0.01",
        "cause": "rounding_suspected",
        "detail": d["detail"],
    }
    assert check_refund(refund=D("10.00"), credit_memo=D("10.01"), currency="USD", tolerance=D("0.01")).ok
