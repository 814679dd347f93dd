"""The Vendure order mapping reads every tax line of every order line (issue 16 item 6): code (the
tax rate's name, which ``tax_map`` maps to an ERP tax), rate and amount, adding up to Vendure's
own line tax; the order's one id is its code, its channel its channel code."""

from __future__ import annotations

from decimal import Decimal

from erpsync.mappings import storefront_vendure as m


def order(lines: list[dict]) -> dict:
    total = sum(ln["linePriceWithTax"] for ln in lines) + 500
    return {"id": "7", "code": "AB12CD", "state": "PaymentSettled", "currencyCode": "USD",
            "orderPlacedAt": "2026-12-07T10:00:00Z", "updatedAt": "2026-12-07T10:00:00Z",
            "customer": {"id": "3", "emailAddress": "ada@example.com"}, "channels": [{"code": "__default_channel__"}],
            "lines": lines, "shipping": 500, "shippingWithTax": 500, "totalWithTax": total, "payments": []}


def line(n: int, sku: str, qty: int, unit: int, tax_lines: list[dict]) -> dict:
    price = qty * unit
    tax = sum(round(price * t["taxRate"] / 100) for t in tax_lines)
    return {"id": str(n), "quantity": qty, "unitPrice": unit, "linePrice": price, "linePriceWithTax": price + tax,
            "discounts": [], "taxLines": tax_lines, "productVariant": {"sku": sku, "name": sku}}


def test_every_tax_line_is_mapped_and_adds_up() -> None:
    raw = order([line(1, "MUG", 2, 1250, [{"description": "Standard VAT", "taxRate": 10}]),
                 line(2, "TEE", 1, 2000, [{"description": "State tax", "taxRate": 6},
                                          {"description": "City tax", "taxRate": 2}]),
                 line(3, "CAP", 3, 730, [{"description": "No tax", "taxRate": 0}])])
    o = m.order_from_storefront(raw)
    mug, tee, cap = o.lines
    assert [(t.code, t.rate, t.amount) for t in mug.taxes] == [("Standard VAT", Decimal("10"), Decimal("2.50"))]
    assert [(t.code, t.rate, t.amount) for t in tee.taxes] == [
        ("State tax", Decimal("6"), Decimal("1.20")), ("City tax", Decimal("2"), Decimal("0.40"))]
    assert cap.taxes == []  # a 0 % rate is no tax
    assert o.computed_total() == o.total  # the tax counted once, as Vendure charged it
    assert m.order_id(raw) == "AB12CD" == o.external_id and o.channel == "__default_channel__"
