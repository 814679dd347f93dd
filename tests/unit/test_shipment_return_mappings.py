"""Golden tests of the shipment and return mappings (literal dicts in, canonical records out)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from erpsync.errors import MappingError
from erpsync.mappings.erp_shipments import carrier_name, fulfillment_to_storefront, shipment_from_erp
from erpsync.mappings.returns import refund_lines, return_from_storefront, return_to_erp, returned_lines

SKUS = {"ITEM-000002": "SKU-000002", "ITEM-000003": "SKU-000003"}

SHIPMENT = {
    "shipment_no": "SHP-000001", "order_no": "SO-000001", "external_ref": "O100001", "status": "shipped",
    "shipped_at": "2026-11-23T10:00:00Z", "modified_at": "2026-11-23T10:00:00Z",
    "packages": [
        {"carrier": "UPS", "tracking_no": "1Z1", "status": "shipped", "lines": [{"item_code": "ITEM-000002", "qty": 1}]},
        {"carrier": "dhl", "tracking_no": "JD2", "lines": [{"item_code": "ITEM-000002", "qty": 1},
                                                           {"item_code": "ITEM-000003", "qty": 2}]},
        {"carrier": "UPS", "tracking_no": "1Z3", "status": "pending", "lines": [{"item_code": "ITEM-000003", "qty": 1}]},
    ],
}


def test_shipment_packages_become_fulfillments_and_pending_ones_wait() -> None:
    s = shipment_from_erp(SHIPMENT, SKUS.get)
    assert s.order_external_id == "O100001" and [p.tracking_number for p in s.packages] == ["1Z1", "JD2"]
    assert fulfillment_to_storefront(s.packages[1]) == {
        "tracking_company": "DHL Express", "tracking_number": "JD2", "notify_customer": True,
        "line_items": [{"sku": "SKU-000002", "quantity": 1}, {"sku": "SKU-000003", "quantity": 2}],
    }
    assert len(shipment_from_erp(SHIPMENT, SKUS.get, only_shipped=False).packages) == 3


def test_unknown_item_code_and_carrier() -> None:
    with pytest.raises(MappingError, match="item_xref"):
        shipment_from_erp(SHIPMENT, {"ITEM-000002": "SKU-000002"}.get)
    assert carrier_name("Fed_Ex") == "FedEx" and carrier_name("Bicycle Courier") == "Bicycle Courier"


STORE_RETURN = {
    "id": "R100001", "order_id": "O100001", "currency": "USD", "status": "requested",
    "line_items": [{"line_item_id": "L1", "sku": "SKU-000002", "quantity": 2, "reason": "too small"}],
    "refunds": [], "updated_at": "2026-11-23T10:00:00Z",
}


def test_store_return_to_erp_rma() -> None:
    ret = return_from_storefront(STORE_RETURN)
    assert ret.refund_amount is None and ret.lines[0].quantity == 2
    codes = {v: k for k, v in SKUS.items()}
    assert return_to_erp(ret, "SO-000001", codes.get) == {
        "external_ref": "R100001", "order_no": "SO-000001", "currency": "USD",
        "lines": [{"item_code": "ITEM-000002", "qty": 2, "reason": "too small"}],
    }
    with pytest.raises(MappingError, match="item_xref"):
        return_to_erp(ret, "SO-000001", {}.get)
    refunded = return_from_storefront({**STORE_RETURN, "refunds": [{"amount": "10.00"}, {"amount": "0.37"}]})
    assert refunded.refund_amount == Decimal("10.37")


def test_credit_memo_lines_priced_from_the_store_order() -> None:
    rma = {"rma_no": "RMA-000001", "credit_memo": {"memo_no": "CM-1", "amount": "21.67",
                                                   "lines": [{"item_code": "ITEM-000002", "qty": 2}]}}
    lines = refund_lines(rma, SKUS.get)
    assert lines == [{"sku": "SKU-000002", "quantity": 2}]
    order = {"line_items": [{"sku": "SKU-000002", "quantity": 3, "price": "10.10", "total_discount": "0.00",
                             "tax_lines": [{"price": "2.20", "rate": "0.0725"}]}]}
    (rl,) = returned_lines(order, lines)
    assert (rl.unit_price, rl.ordered_qty, rl.returned_qty, rl.line_tax, rl.tax_rate) == (
        Decimal("10.10"), 3, 2, Decimal("2.20"), Decimal("0.0725"))
