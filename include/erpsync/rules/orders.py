"""Order rules: which orders go to the ERP now, and whether their totals add up."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from erpsync.model import Order, OrderStatus

TOTAL_TOLERANCE = Decimal("0.01")


class Disposition(enum.StrEnum):
    SYNC = "sync"
    ALREADY_SYNCED = "already_synced"
    UNPAID = "unpaid"  # comes again when paid (its updated_at moves)
    CANCELLED_UNSYNCED = "cancelled_unsynced"
    REFUNDED_UNSYNCED = "refunded_unsynced"
    NEEDS_MANUAL_CANCEL = "needs_manual_cancel"


def disposition(order: Order, *, synced: bool) -> Disposition:
    """What to do with an order, given whether the ERP already has it.

    Only paid orders are created in the ERP. A cancellation after the order reached the ERP is
    not automated yet: it becomes a dead letter ``needs_manual_cancel``.
    """
    if order.status is OrderStatus.CANCELLED:
        return Disposition.NEEDS_MANUAL_CANCEL if synced else Disposition.CANCELLED_UNSYNCED
    if synced:
        return Disposition.ALREADY_SYNCED
    if order.status is OrderStatus.PENDING:
        return Disposition.UNPAID
    if order.status is OrderStatus.REFUNDED:
        return Disposition.REFUNDED_UNSYNCED
    return Disposition.SYNC


@dataclass(frozen=True, slots=True)
class TotalsCheck:
    computed: Decimal
    stated: Decimal

    @property
    def ok(self) -> bool:
        return abs(self.computed - self.stated) <= TOTAL_TOLERANCE

    @property
    def reason(self) -> str:
        return f"total_mismatch: computed {self.computed} != total_price {self.stated}"


def check_totals(order: Order) -> TotalsCheck:
    """lines + shipping + tax - discounts must equal the stated total within a cent."""
    return TotalsCheck(computed=order.computed_total(), stated=order.total)
