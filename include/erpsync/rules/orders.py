"""Order rules: which orders go to the ERP now, and whether their totals add up."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erpsync.errors import ConfigError
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


# --------------------------------------------------------------------------- the warehouse of a sale


@dataclass(frozen=True, slots=True)
class WarehouseConfig:
    """Which ERP warehouse an order is booked on (docs/configuration.md, "Orders: warehouse").

    From the ERP Connection's extra: ``sale_warehouses_by_location`` (store location -> ERP
    warehouse code), ``sale_warehouses_by_channel`` (sales channel -> code), and the default
    ``sale_warehouse`` (else the Connection's ``warehouse``, the one its stock is read from).
    """

    default: str | None = None
    by_location: dict[str, str] | None = None
    by_channel: dict[str, str] | None = None

    @classmethod
    def from_extra(cls, extra: dict[str, Any] | None, conn: str = "erp_default") -> WarehouseConfig:
        extra = extra or {}
        maps: dict[str, dict[str, str]] = {}
        for key in ("sale_warehouses_by_location", "sale_warehouses_by_channel"):
            value = extra.get(key) or {}
            if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()):
                raise ConfigError(f"Connection {conn}: extra {key!r} must map names to warehouse codes, "
                                  f"got {value!r}")
            maps[key] = {k: v.strip() for k, v in value.items()}
        default = extra.get("sale_warehouse") or extra.get("warehouse")
        if default is not None and (not isinstance(default, str) or not default.strip()):
            raise ConfigError(f"Connection {conn}: extra 'sale_warehouse' must be a warehouse code, got {default!r}")
        return cls(default=default.strip() if default else None, by_location=maps["sale_warehouses_by_location"],
                   by_channel=maps["sale_warehouses_by_channel"])

    def warehouse_for(self, order: Order) -> str | None:
        """The store location's warehouse, else the channel's, else the default (None: none configured,
        the ERP decides, which works only where it has one warehouse)."""
        if order.location and self.by_location and order.location in self.by_location:
            return self.by_location[order.location]
        if order.channel and self.by_channel and order.channel in self.by_channel:
            return self.by_channel[order.channel]
        return self.default


# --------------------------------------------------------------------------- the ERP's total


def total_tolerance(value: Any) -> Decimal:
    """Param ``total_tolerance`` (default 0.01 in the order currency): how far the ERP's computed
    total (its taxes included) may be from the store's before the order is held (``tax_mismatch``)."""
    if value is None or value == "":
        return TOTAL_TOLERANCE
    try:
        tol = Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"param total_tolerance={value!r} is not a number") from None
    if not tol.is_finite() or tol < 0:
        raise ConfigError(f"param total_tolerance={value!r} must be a number >= 0")
    return tol
