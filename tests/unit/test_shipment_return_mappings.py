"""Golden tests of the shipment and return mappings (literal dicts in, canonical records out): the
sandbox's, then Tryton's (erp_tryton) and Vendure's (storefront_vendure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from erpsync.errors import MappingError
from erpsync.mappings import erp_tryton, storefront_vendure
from erpsync.mappings.erp_shipments import carrier_name, fulfillment_to_storefront, shipment_from_erp
from erpsync.mappings.returns import refund_lines, return_from_storefront, return_to_erp, returned_lines
from erpsync.model import Package, Return, ReturnLine, Shipment, ShipmentLine
from erpsync.rules.refunds import ReturnedLine

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


# --------------------------------------------------------------------------- Tryton and Vendure
# Literal raw records as erpsync.connectors.tryton / .vendure return them (taken from Tryton 8.2
# and Vendure 3.7 answers), mapped through the modules the adapters name.


UTC = dt.UTC

TRYTON_MOVE = {"id": 3, "product": 2, "product.code": "BOOK-1", "quantity": 2.0, "state": "done",
               "origin": "sale.line,1", "sale": 1, "sale.reference": "WAUF1FDC5WSYY23E", "sale.number": "1"}
TRYTON_SHIPMENT = {
    "id": 1, "number": "1", "reference": None, "state": "done", "customer": 5, "customer.code": "5",
    "shipping_reference": "1ZPARTIAL1", "carrier": 1, "carrier.party.name": "UPS", "effective_date": "2026-12-03",
    "planned_date": "2026-12-03", "packages": [], "outgoing_moves": [TRYTON_MOVE],
    "create_date": "2026-12-03T07:54:42.979367Z", "write_date": "2026-12-03T07:55:06.049291Z",
    "sale_reference": "WAUF1FDC5WSYY23E", "sale_number": "1",
}


def test_tryton_shipment_is_one_package_with_its_tracking_number() -> None:
    s = erp_tryton.shipment_from_erp(TRYTON_SHIPMENT, {}.get)
    assert s == Shipment(
        external_id="1", order_external_id="WAUF1FDC5WSYY23E", status="shipped",
        packages=[Package(carrier="UPS", tracking_number="1ZPARTIAL1", lines=[ShipmentLine(sku="BOOK-1", quantity=2)],
                          shipped_at=dt.datetime(2026, 12, 3, tzinfo=UTC))],
        updated_at=dt.datetime(2026, 12, 3, 7, 55, 6, 49291, tzinfo=UTC))
    assert (erp_tryton.shipment_no(TRYTON_SHIPMENT), erp_tryton.shipment_order_no(TRYTON_SHIPMENT)) == ("1", "1")
    assert erp_tryton.changed_at(TRYTON_SHIPMENT) == "2026-12-03T07:55:06.049291Z"
    assert (len(erp_tryton.shipped_packages(TRYTON_SHIPMENT)), erp_tryton.pending_packages(TRYTON_SHIPMENT)) == (1, 0)
    # the store order bound to the sale wins; a bound item code gives its SKU
    bound = erp_tryton.shipment_from_erp(TRYTON_SHIPMENT, {"BOOK-1": "NOTEBOOK-A5"}.get, order_ref="ORDER-9")
    assert bound.order_external_id == "ORDER-9" and bound.packages[0].lines[0].sku == "NOTEBOOK-A5"
    # ... and Vendure gets one fulfilment with the tracking code and the carrier as its method
    assert storefront_vendure.fulfillment_to_storefront(s.packages[0]) == {
        "tracking_code": "1ZPARTIAL1", "carrier": "UPS", "lines": [{"sku": "BOOK-1", "quantity": 2}],
        "state": "Shipped"}


def test_tryton_packed_shipment_gives_a_package_each_and_waits_until_shipped() -> None:
    packed = {**TRYTON_SHIPMENT, "carrier.party.name": "DHL", "shipping_reference": "JD-SHIPMENT",
              "outgoing_moves": [TRYTON_MOVE, {**TRYTON_MOVE, "id": 4, "product.code": "PEN-1", "quantity": 1.0},
                                 {**TRYTON_MOVE, "id": 5, "product.code": "CAP-1", "quantity": 3.0, "state": "cancelled"}],
              "packages": [{"id": 7, "number": "P1", "shipping_reference": "JD-1", "moves": [3], "parent": None},
                           {"id": 8, "number": "P2", "shipping_reference": None, "moves": [4, 5], "parent": None},
                           {"id": 9, "number": "BOX", "shipping_reference": "JD-9", "moves": [], "parent": None}]}
    s = erp_tryton.shipment_from_erp(packed)
    assert [(p.carrier, p.tracking_number, [(ln.sku, ln.quantity) for ln in p.lines]) for p in s.packages] == [
        ("DHL Express", "JD-1", [("BOOK-1", 2)]), ("DHL Express", "JD-SHIPMENT", [("PEN-1", 1)])]
    waiting = {**packed, "state": "waiting", "shipping_reference": None}
    assert erp_tryton.shipped_packages(waiting) == [] and erp_tryton.pending_packages(waiting) == 2
    assert erp_tryton.shipment_from_erp(waiting).packages == []
    assert erp_tryton.shipment_from_erp({**TRYTON_SHIPMENT, "state": "cancelled"}).status == "cancelled"


def test_tryton_shipped_without_tracking_or_order_is_refused() -> None:
    with pytest.raises(MappingError, match="shipping_reference"):
        erp_tryton.shipment_from_erp({**TRYTON_SHIPMENT, "shipping_reference": " "})
    with pytest.raises(MappingError, match="sale_reference"):
        erp_tryton.shipment_from_erp({**TRYTON_SHIPMENT, "sale_reference": None})
    with pytest.raises(MappingError, match="whole_quantity"):
        erp_tryton.shipment_from_erp({**TRYTON_SHIPMENT, "outgoing_moves": [{**TRYTON_MOVE, "quantity": 1.5}]})


VENDURE_ORDER = {
    "id": "1", "code": "WAUF1FDC5WSYY23E", "state": "PartiallyShipped", "updatedAt": "2026-12-03T07:54:38.579Z",
    "orderPlacedAt": "2026-12-03T07:54:38.816Z", "currencyCode": "USD", "customer": {"id": "1"},
    "lines": [
        {"id": "1", "quantity": 3, "unitPrice": 800, "unitPriceWithTax": 800, "linePrice": 2400,
         "linePriceWithTax": 2400, "discounts": [], "taxLines": [{"taxRate": 0}], "productVariant": {"sku": "BOOK-1"}},
        {"id": "2", "quantity": 2, "unitPrice": 1000, "unitPriceWithTax": 1200, "linePrice": 2000,
         "linePriceWithTax": 2400, "discounts": [{"amount": -200}], "taxLines": [{"taxRate": 20}],
         "productVariant": {"sku": "PEN-1"}},
    ],
}
VENDURE_RETURN = {
    "id": "1", "createdAt": "2026-12-03T07:55:14.811Z", "updatedAt": "2026-12-03T07:55:14.811Z", "total": 800,
    "reason": "too small", "state": "Pending", "transactionId": None, "method": "card", "paymentId": "1",
    "metadata": {}, "lines": [{"orderLineId": "1", "quantity": 1}], "order": VENDURE_ORDER,
}


def test_vendure_refund_with_lines_is_the_store_return() -> None:
    ret = storefront_vendure.return_from_storefront(VENDURE_RETURN)
    assert ret == Return(rma="WAUF1FDC5WSYY23E-R1", order_external_id="WAUF1FDC5WSYY23E", currency="USD",
                         status="requested", lines=[ReturnLine(sku="BOOK-1", quantity=1, reason="too small")],
                         updated_at=dt.datetime(2026, 12, 3, 7, 55, 14, 811000, tzinfo=UTC))
    assert storefront_vendure.return_id(VENDURE_RETURN) == "WAUF1FDC5WSYY23E-R1"
    assert storefront_vendure.changed_at(VENDURE_RETURN) == "2026-12-03T07:55:14.811Z"
    assert storefront_vendure.refunds_of(VENDURE_RETURN) == []  # pending: no money back yet
    settled = {**VENDURE_RETURN, "state": "Settled", "transactionId": "2"}
    assert storefront_vendure.return_from_storefront(settled).refund_amount == Decimal("8.00")
    assert storefront_vendure.refunds_of(settled) == [
        {"id": "1", "amount": Decimal("8.00"), "currency": "USD", "note": "2"}]
    assert storefront_vendure.return_from_storefront({**VENDURE_RETURN, "state": "Failed"}).status == "rejected"
    with pytest.raises(MappingError, match="order_line"):
        storefront_vendure.return_from_storefront({**VENDURE_RETURN, "lines": [{"orderLineId": "99", "quantity": 1}]})
    with pytest.raises(MappingError, match="lines"):
        storefront_vendure.return_from_storefront({**VENDURE_RETURN, "lines": []})


def test_vendure_returned_lines_and_what_goes_back_to_vendure() -> None:
    assert storefront_vendure.returned_lines(VENDURE_ORDER, [{"sku": "PEN-1", "quantity": 1}]) == [
        ReturnedLine(sku="PEN-1", unit_price=Decimal("10.00"), ordered_qty=2, returned_qty=1,
                     line_discount=Decimal("2.00"), line_tax=Decimal("4.00"), tax_rate=Decimal("0.20"))]
    credited = Return(rma="WAUF1FDC5WSYY23E-R1", order_external_id="2", currency="USD", status="credited",
                      lines=[ReturnLine(sku="BOOK-1", quantity=1, reason="too small", disposition="restock")],
                      credit_memo_id="2", credit_memo_amount=Decimal("8.00"))
    assert storefront_vendure.refund_to_storefront(credited, Decimal("8.00")) == {
        "transaction_id": "2", "currency": "USD", "amount": 800}
    assert storefront_vendure.refund_to_storefront(credited, None)["amount"] is None
    assert storefront_vendure.return_update_to_storefront("open", erp_reference="2") == {
        "status": "open", "note": "opened in the ERP as 2"}
    assert storefront_vendure.return_update_to_storefront("credited", credited=credited) == {
        "status": "credited", "note": "credited by the ERP: credit memo 2 8.00 USD; BOOK-1 x1 restock"}
    assert storefront_vendure.refund_ref({"refund": {"id": "1"}}) == "1"
    order = {"fulfillments": [{"id": "4", "state": "Shipped", "method": "UPS", "trackingCode": "1ZPARTIAL1"}]}
    assert storefront_vendure.fulfillment_ref(storefront_vendure.find_fulfillment(order, "1ZPARTIAL1")) == "4"
    assert storefront_vendure.find_fulfillment(order, "other") is None
    assert storefront_vendure.erasure_request({"id": "7", "emailAddress": "ada@example.com", "updatedAt": "x"}) == {
        "id": "7", "customer_id": "7", "email": "ada@example.com", "requested_at": None}


TRYTON_RETURN = {
    "id": 2, "number": "2", "reference": "WAUF1FDC5WSYY23E-R1", "state": "processing", "party": 5, "party.code": "5",
    "sale_date": None, "currency.code": "USD", "untaxed_amount": "-8.00", "tax_amount": "0.00",
    "total_amount": "-8.00", "shipment_state": "sent", "invoice_state": "none", "shipments": [],
    "shipment_returns": [1], "description": "Return of 1 (WAUF1FDC5WSYY23E)", "comment": "",
    "create_date": "2026-12-03T07:55:26.112Z", "write_date": "2026-12-03T07:55:27.946672Z",
    "lines": [{"id": 4, "type": "line", "product": 2, "product.code": "BOOK-1", "quantity": -1.0,
               "unit_price": "8.0000", "amount": "-8.00", "description": "too small"}],
    "origin_sale": {"number": "1", "reference": "WAUF1FDC5WSYY23E"},
    "return_shipments": [{"id": 1, "number": "1", "state": "done", "effective_date": "2026-12-03",
                          "write_date": "2026-12-03T07:55:27.998861Z",
                          "inventory_moves": [{"id": 14, "product": 2, "product.code": "BOOK-1", "quantity": 1.0,
                                               "state": "done", "to_location.type": "storage"}]}],
    "credit_notes": [],
}


def test_tryton_return_sale_is_the_rma_and_its_credit() -> None:
    credited = erp_tryton.return_from_erp(TRYTON_RETURN, {}.get)
    assert credited == Return(
        rma="WAUF1FDC5WSYY23E-R1", order_external_id="WAUF1FDC5WSYY23E", currency="USD", status="credited",
        lines=[ReturnLine(sku="BOOK-1", quantity=1, reason="too small", disposition="restock")],
        credit_memo_id="2", credit_memo_amount=Decimal("8.00"),
        updated_at=dt.datetime(2026, 12, 3, 7, 55, 27, 946672, tzinfo=UTC))
    assert erp_tryton.rma_no(TRYTON_RETURN) == "2"
    waiting = {**TRYTON_RETURN, "return_shipments": [{**TRYTON_RETURN["return_shipments"][0], "state": "draft",
                                                      "inventory_moves": []}]}
    opened = erp_tryton.return_from_erp(waiting, {}.get)
    assert (opened.status, opened.credit_memo_id, opened.lines[0].disposition) == ("open", None, "pending")
    assert erp_tryton.return_from_erp({**TRYTON_RETURN, "state": "cancelled"}, {}.get).status == "rejected"
    scrapped = {**TRYTON_RETURN, "return_shipments": [{**TRYTON_RETURN["return_shipments"][0], "inventory_moves": [
        {**TRYTON_RETURN["return_shipments"][0]["inventory_moves"][0], "to_location.type": "lost_found"}]}]}
    assert erp_tryton.return_from_erp(scrapped, {}.get).lines[0].disposition == "scrap"
    # with a chart of accounts the posted credit notes are the memo
    invoiced = {**TRYTON_RETURN, "credit_notes": [{"id": 9, "number": "CN-9", "state": "posted",
                                                   "total_amount": "-8.00"}]}
    memo = erp_tryton.return_from_erp(invoiced, {}.get)
    assert (memo.credit_memo_id, memo.credit_memo_amount) == ("CN-9", Decimal("8.00"))
    with pytest.raises(MappingError, match="negative_on_return"):
        erp_tryton.return_from_erp({**TRYTON_RETURN, "lines": [{**TRYTON_RETURN["lines"][0], "quantity": 1.0}]})


def test_store_return_to_a_tryton_return_sale() -> None:
    ret = storefront_vendure.return_from_storefront(VENDURE_RETURN)
    assert erp_tryton.return_to_erp(ret, "1", lambda sku: sku) == {
        "reference": "WAUF1FDC5WSYY23E-R1", "sale": "1",
        "lines": [{"product": "BOOK-1", "quantity": 1, "description": "too small"}]}
    with pytest.raises(MappingError, match="item_xref"):
        erp_tryton.return_to_erp(ret, "1", {}.get)


def test_sandbox_rma_as_canonical_and_what_goes_back_to_the_sandbox_store() -> None:
    from erpsync.mappings import erp_sandbox, storefront_sandbox

    rma = {"rma_no": "RMA-000001", "external_ref": "R100001", "order_no": "SO-000001", "currency": "USD",
           "status": "credited", "modified_at": "2026-11-23T10:00:00Z",
           "lines": [{"item_code": "ITEM-000002", "qty": 2, "reason": "too small", "disposition": "restock"},
                     {"item_code": "ITEM-000003", "qty": 1, "reason": "broken", "disposition": None}],
           "credit_memo": {"memo_no": "CM-000001", "amount": "21.67", "lines": [{"item_code": "ITEM-000002", "qty": 2}]}}
    credited = erp_sandbox.return_from_erp(rma, SKUS.get)
    assert credited == Return(rma="R100001", order_external_id="SO-000001", currency="USD", status="credited",
                              lines=[ReturnLine(sku="SKU-000002", quantity=2, reason="too small", disposition="restock")],
                              credit_memo_id="CM-000001", credit_memo_amount=Decimal("21.67"),
                              updated_at=dt.datetime(2026, 11, 23, 10, tzinfo=UTC))
    opened = erp_sandbox.return_from_erp({**rma, "status": "open", "credit_memo": None}, SKUS.get)
    assert [(ln.sku, ln.quantity, ln.disposition) for ln in opened.lines] == [
        ("SKU-000002", 2, "restock"), ("SKU-000003", 1, "pending")]
    with pytest.raises(MappingError, match="rma_status"):
        erp_sandbox.return_from_erp({**rma, "status": "lost"}, SKUS.get)
    assert storefront_sandbox.return_update_to_storefront("credited", credited=credited) == {
        "status": "credited", "dispositions": {"SKU-000002": "restock"},
        "credit_memo": {"memo_no": "CM-000001", "amount": "21.67"}}
    assert storefront_sandbox.refund_to_storefront(credited, Decimal("21.67")) == {
        "line_items": [{"sku": "SKU-000002", "quantity": 2}], "currency": "USD", "note": "CM-000001",
        "amount": "21.67"}
    assert storefront_sandbox.refunds_of({"refunds": [{"id": "RF1", "amount": "21.67", "currency": "USD",
                                                      "note": "CM-000001"}]}) == [
        {"id": "RF1", "amount": Decimal("21.67"), "currency": "USD", "note": "CM-000001"}]
    assert erp_sandbox.pending_packages(SHIPMENT) == 1 and erp_sandbox.shipment_order_no(SHIPMENT) == "SO-000001"
    order = {"fulfillments": [{"id": "F1", "tracking_number": "1Z1"}]}
    assert storefront_sandbox.fulfillment_ref(storefront_sandbox.find_fulfillment(order, "1Z1")) == "F1"
