"""Which orders go to the ERP, and the totals check."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from erpsync.model import Discount, Order, OrderLine, OrderStatus, TaxLine
from erpsync.rules.orders import Disposition, check_totals, disposition


def order(status: OrderStatus = OrderStatus.PAID, total: str = "43.10") -> Order:
    return Order(
        external_id="O1",
        number="#1",
        customer_external_id="C1",
        customer_email="a@b.test",
        currency="USD",
        placed_at=dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        lines=[
            OrderLine(
                line_id="L1",
                sku="S1",
                quantity=2,
                unit_price=Decimal("10.00"),
                discount=Decimal("1.00"),
                taxes=[TaxLine(code="T", rate=Decimal("0.1"), amount=Decimal("1.90"))],
            )
        ],
        status=status,
        shipping_amount=Decimal("7.95"),
        taxes=[TaxLine(code="T", rate=Decimal("0.1"), amount=Decimal("0.80"))],
        discounts=[Discount(code="D", amount=Decimal("5.00"))],
        total=Decimal(total),
    )


def test_totals_add_up() -> None:
    # 19.00 lines + 7.95 shipping + 1.90 + 0.80 tax - 5.00 discount = 24.65
    check = check_totals(order(total="24.65"))
    assert check.ok and check.computed == Decimal("24.65")


@pytest.mark.parametrize(
    ("total", "ok"), [("24.66", True), ("24.64", True), ("24.67", False), ("24.63", False)]
)
def test_totals_tolerance_is_one_cent(total: str, ok: bool) -> None:
    assert check_totals(order(total=total)).ok is ok


def test_totals_mismatch_reason_names_both_figures() -> None:
    assert check_totals(order(total="30.00")).reason == "total_mismatch: computed 24.65 != total_price 30.00"


@pytest.mark.parametrize(
    ("status", "synced", "expected"),
    [
        (OrderStatus.PAID, False, Disposition.SYNC),
        (OrderStatus.PAID, True, Disposition.ALREADY_SYNCED),
        (OrderStatus.PENDING, False, Disposition.UNPAID),
        (OrderStatus.CANCELLED, False, Disposition.CANCELLED_UNSYNCED),
        (OrderStatus.CANCELLED, True, Disposition.NEEDS_MANUAL_CANCEL),
        (OrderStatus.REFUNDED, False, Disposition.REFUNDED_UNSYNCED),
        (OrderStatus.REFUNDED, True, Disposition.ALREADY_SYNCED),
    ],
)
def test_disposition(status: OrderStatus, synced: bool, expected: Disposition) -> None:
    assert disposition(order(status), synced=synced) is expected
