"""The price guard: which price changes a person must approve before customers see them.

The seed's worst story: an ERP rule cut every price by 90 %, the integration published it and four
hours of orders at wrong prices cost $180,000. A change is held (kept in the approvals table, not
published) when the new price is zero or negative, below cost, or moves more than the threshold
(default 20 %) away from the price it replaces. The rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ConfigError

DEFAULT_THRESHOLD_PCT = Decimal("20")


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    max_change_pct: Decimal = DEFAULT_THRESHOLD_PCT
    hold_zero: bool = True
    hold_below_cost: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    hold: bool
    reasons: tuple[str, ...] = ()
    change_pct: Decimal | None = None  # signed, one decimal: -90.0

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def guard_policy(params: Mapping[str, Any]) -> GuardPolicy:
    """From flow params: ``price_guard_threshold_pct`` (20), ``price_guard_below_cost`` (true)."""
    raw = params.get("price_guard_threshold_pct", DEFAULT_THRESHOLD_PCT)
    try:
        pct = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise ConfigError(f"price_guard_threshold_pct {raw!r} is not a number") from None
    if not pct.is_finite() or pct < 0:
        raise ConfigError(f"price_guard_threshold_pct {raw!r} must be a percentage >= 0")
    return GuardPolicy(max_change_pct=pct, hold_below_cost=bool(params.get("price_guard_below_cost", True)))


def check_price(new: Decimal, *, current: Decimal | None, cost: Decimal | None, policy: GuardPolicy) -> Verdict:
    """Hold ``new`` or let it through. ``current`` is the price it replaces (None: a new price);
    ``cost`` the item's cost in the same currency (None: unknown, not checked)."""
    reasons: list[str] = []
    pct: Decimal | None = None
    if policy.hold_zero and new <= 0:
        reasons.append("zero_price" if new == 0 else f"negative_price: {new}")
    if policy.hold_below_cost and cost is not None and 0 < new < cost:
        reasons.append(f"below_cost: {new} < cost {cost}")
    if current is not None and current > 0:
        pct = ((new - current) / current * 100).quantize(Decimal("0.1"))
        if new > 0 and abs(new - current) * 100 > policy.max_change_pct * current:
            reasons.append(f"change_over_threshold: {pct:+}% from {current} (limit {policy.max_change_pct}%)")
    return Verdict(hold=bool(reasons), reasons=tuple(reasons), change_pct=pct)
