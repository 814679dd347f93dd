"""Refunds and credit memos: what a return is worth, and whether store and ERP agree to the cent.

A store refund and an ERP credit memo for the same return are computed by two systems with their
own rounding: one prorates the line's tax by the returned quantity, the other recomputes tax on
the returned net; one rounds each line, the other only the total; half-up or half-even. Each is
right by its own rules and they can differ by a cent per line. :func:`check_refund` compares the
two amounts exactly (no tolerance unless configured) and, when they differ, names the cause: a
rounding difference (with the pair of methods that reproduces both amounts when one does), a
currency mismatch, a missing side, or a real over/under refund.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erpsync.model import money

CENT = Decimal("0.01")
ZERO = Decimal("0")

#: how a credit can be computed from the returned lines; each is a real system's convention
METHODS: dict[str, tuple[str, str]] = {
    # name: (tax convention, rounding mode); "round_total" rounds once at the end
    "prorate": ("prorate", decimal.ROUND_HALF_UP),
    "recompute_tax": ("recompute", decimal.ROUND_HALF_UP),
    "prorate_half_even": ("prorate", decimal.ROUND_HALF_EVEN),
    "recompute_tax_half_even": ("recompute", decimal.ROUND_HALF_EVEN),
    "round_total": ("prorate", decimal.ROUND_HALF_UP),
}


@dataclass(frozen=True, slots=True)
class ReturnedLine:
    """One returned order line: what was ordered (price, quantity, the line's discount and tax in
    total) and how many come back."""

    sku: str
    unit_price: Decimal
    ordered_qty: int
    returned_qty: int
    line_discount: Decimal = ZERO  # discount of the whole ordered line
    line_tax: Decimal = ZERO  # tax of the whole ordered line
    tax_rate: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("unit_price", "line_discount", "line_tax", "tax_rate"):
            object.__setattr__(self, name, money(getattr(self, name), field_name=f"{name} of {self.sku}"))
        for name in ("ordered_qty", "returned_qty"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{self.sku}: {name}={v!r} is not a whole quantity")
        if self.ordered_qty == 0 or self.returned_qty > self.ordered_qty:
            raise ValueError(f"{self.sku}: returned {self.returned_qty} of {self.ordered_qty} ordered")

    @property
    def share(self) -> Decimal:
        return Decimal(self.returned_qty) / Decimal(self.ordered_qty)

    def net(self) -> Decimal:
        """Unrounded returned net: price x qty less the discount share."""
        return self.unit_price * self.returned_qty - self.line_discount * self.share


def _q(value: Decimal, mode: str) -> Decimal:
    return value.quantize(CENT, rounding=mode)


def credit_for(lines: Sequence[ReturnedLine], *, method: str = "prorate") -> Decimal:
    """The credit of ``lines`` by one convention (see METHODS)."""
    if method not in METHODS:
        raise ValueError(f"unknown credit method {method!r}; use one of {', '.join(METHODS)}")
    tax_rule, mode = METHODS[method]
    if method == "round_total":
        return _q(sum((ln.net() + ln.line_tax * ln.share for ln in lines), ZERO), mode)
    total = ZERO
    for ln in lines:
        net = _q(ln.net(), mode)
        tax = _q(ln.line_tax * ln.share, mode) if tax_rule == "prorate" else _q(net * ln.tax_rate, mode)
        total += net + tax
    return total


def max_rounding_gap(lines: Sequence[ReturnedLine]) -> Decimal:
    """The most two rounding conventions can drift apart: about a cent per line (half a cent on
    the net and on the tax each way), at least one cent."""
    return CENT * max(1, len(lines))


def rounding_explanations(
    lines: Sequence[ReturnedLine], *, refund: Decimal, credit_memo: Decimal
) -> list[tuple[str, str]]:
    """Pairs (store method, ERP method) that reproduce both amounts exactly."""
    amounts = {m: credit_for(lines, method=m) for m in METHODS}
    return [
        (s, e)
        for s, a in amounts.items()
        for e, b in amounts.items()
        if s != e and a == refund and b == credit_memo
    ]


@dataclass(frozen=True, slots=True)
class RefundCheck:
    ok: bool
    currency: str
    refund: Decimal | None
    credit_memo: Decimal | None
    difference: Decimal | None  # refund - credit memo
    cause: str  # match | rounding | rounding_suspected | over_refund | under_refund | missing_* | currency_mismatch
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        def s(v: Decimal | None) -> str | None:
            return None if v is None else format(v, "f")

        return {
            "ok": self.ok,
            "currency": self.currency,
            "refund": s(self.refund),
            "credit_memo": s(self.credit_memo),
            "difference": s(self.difference),
            "cause": self.cause,
            "detail": self.detail,
        }


def check_refund(
    *,
    refund: Decimal | None,
    credit_memo: Decimal | None,
    currency: str,
    refund_currency: str | None = None,
    lines: Sequence[ReturnedLine] = (),
    tolerance: Decimal = ZERO,
) -> RefundCheck:
    """Compare the store's refund with the ERP's credit memo for one return, to the cent.

    ``ok`` only when they are equal (or within ``tolerance``, zero unless configured); a
    difference is always reported with its ``cause``, even when it is tolerated.
    """
    if refund_currency is not None and refund_currency != currency:
        return RefundCheck(False, currency, refund, credit_memo, None, "currency_mismatch",
                           f"refund in {refund_currency}, credit memo in {currency}")
    if refund is None or credit_memo is None:
        cause = "missing_refund" if refund is None else "missing_credit_memo"
        return RefundCheck(False, currency, refund, credit_memo, None, cause,
                           "the store has no refund for this return" if refund is None
                           else "the ERP has no credit memo for this return")
    refund, credit_memo = money(refund), money(credit_memo)
    diff = _q(refund - credit_memo, decimal.ROUND_HALF_UP)
    if diff == 0:
        return RefundCheck(True, currency, refund, credit_memo, diff, "match", "")
    ok = abs(diff) <= tolerance
    if abs(diff) <= max_rounding_gap(lines):
        pairs = rounding_explanations(lines, refund=refund, credit_memo=credit_memo) if lines else []
        if pairs:
            store_m, erp_m = pairs[0]
            return RefundCheck(ok, currency, refund, credit_memo, diff, "rounding",
                               f"store={store_m} gives {refund}, erp={erp_m} gives {credit_memo}")
        return RefundCheck(ok, currency, refund, credit_memo, diff, "rounding_suspected",
                           f"{diff} is within the rounding gap of {len(lines) or 1} line(s) "
                           "but no known rounding convention reproduces both amounts")
    cause = "over_refund" if diff > 0 else "under_refund"
    return RefundCheck(ok, currency, refund, credit_memo, diff, cause,
                       f"store refunded {refund}, ERP credited {credit_memo}")
