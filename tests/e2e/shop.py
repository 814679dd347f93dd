"""What people do in the real systems, for the end-to-end tests: a shopper orders in Vendure,
a merchandiser adds products in Tryton. Written against the systems' own APIs; the warehouse
work in Tryton (stock counts, shipping, receiving returns) is in tests/drivers/tryton.py."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from erpsync.connectors.tryton import TrytonErpAdapter
from erpsync.connectors.vendure import VendureStorefrontAdapter
from tests.drivers import tryton, vendure

ADDRESS = {"fullName": "Ada Lovelace", "streetLine1": "12 Analytical Row", "city": "Springfield",
           "postalCode": "62701", "countryCode": "US", "province": "IL"}


def add_product(erp: TrytonErpAdapter, sku: str, name: str, price: str, stock: int | None = None) -> dict[str, Any]:
    item = tryton.create_item(erp, {"code": sku, "name": name, "list_price": price, "cost_price": "1.00"})
    if stock is not None:
        tryton.set_stock(erp, {sku: stock})
    return item


def add_store_product(sf: VendureStorefrontAdapter, sku: str, name: str, price: str, stock: int = 100) -> None:
    sf.upsert_product({"name": name, "slug": sku.lower(), "variants": [
        {"sku": sku, "name": name, "price": int(Decimal(price) * 100), "stock_on_hand": stock}]},
        idempotency_key=f"product:{sku}")


def place_order(sf: VendureStorefrontAdapter, email: str, lines: dict[str, int], *, first: str = "Ada",
                last: str = "Lovelace") -> dict[str, Any]:
    """A paid order, as a shopper's checkout leaves it (draft order -> ArrangingPayment -> paid)."""
    order_id = sf.gql("mutation{createDraftOrder{id}}", write=True)["createDraftOrder"]["id"]
    for sku, qty in lines.items():
        variant = vendure.find_variant(sf, sku)
        assert variant, sku
        res = sf.gql("mutation($o:ID!,$i:AddItemToDraftOrderInput!){addItemToDraftOrder(orderId:$o,input:$i){"
                     "__typename ... on ErrorResult{message}}}", write=True, o=order_id,
                     i={"productVariantId": variant["id"], "quantity": qty})["addItemToDraftOrder"]
        assert res["__typename"] == "Order", res
    res = sf.gql("mutation($o:ID!,$i:CreateCustomerInput!){setCustomerForDraftOrder(orderId:$o,input:$i){"
                 "__typename ... on ErrorResult{message}}}", write=True, o=order_id,
                 i={"emailAddress": email, "firstName": first, "lastName": last})["setCustomerForDraftOrder"]
    assert res["__typename"] == "Order", res
    for m in ("setDraftOrderShippingAddress", "setDraftOrderBillingAddress"):
        sf.gql(f"mutation($o:ID!,$i:CreateAddressInput!){{{m}(orderId:$o,input:$i){{id}}}}", write=True,
               o=order_id, i=ADDRESS)
    methods = sf.gql("query($o:ID!){eligibleShippingMethodsForDraftOrder(orderId:$o){id}}",
                     o=order_id)["eligibleShippingMethodsForDraftOrder"]
    sf.gql("mutation($o:ID!,$m:ID!){setDraftOrderShippingMethod(orderId:$o,shippingMethodId:$m){"
           "__typename ... on ErrorResult{message}}}", write=True, o=order_id, m=methods[0]["id"])
    res = sf.gql("mutation($id:ID!){transitionOrderToState(id:$id,state:\"ArrangingPayment\"){"
                 "__typename ... on Order{state} ... on OrderStateTransitionError{message transitionError}}}",
                 write=True, id=order_id)["transitionOrderToState"]
    assert res["__typename"] == "Order", res
    order = sf.get_order(order_id)
    res = sf.gql("mutation($i:ManualPaymentInput!){addManualPaymentToOrder(input:$i){__typename "
                 "... on Order{state} ... on ErrorResult{message}}}", write=True,
                 i={"orderId": order_id, "method": "card", "transactionId": f"tx-{order['code']}",
                    "metadata": {}})["addManualPaymentToOrder"]
    assert res["__typename"] == "Order" and res["state"] == "PaymentSettled", res
    return sf.get_order(order_id)


def add_template(erp: TrytonErpAdapter, code: str, name: str, price: str, suffixes: list[str]) -> list[str]:
    """A Tryton template with a code and one product per suffix (a T-shirt in sizes): product codes
    are the template's code plus the suffix (``TEE`` + ``-M``)."""
    unit = erp.id_of("product.uom", "symbol", "u")
    erp.model("product.template", "create", [{
        "name": name, "code": code, "type": "goods", "default_uom": unit, "list_price": Decimal(price),
        "salable": True, "sale_uom": unit,
        "products": [["create", [{"suffix_code": s, "cost_price": Decimal("1.00")} for s in suffixes]]]}], write=True)
    return [f"{code}{s}" for s in suffixes]


def _template_of(erp: TrytonErpAdapter, sku: str) -> int:
    rows = erp.search_read("product.product", [("code", "=", sku), ("active", "in", [True, False])], ["template"])
    assert rows, sku
    return int(rows[0]["template"])


def write_template(erp: TrytonErpAdapter, sku: str, values: dict[str, Any]) -> None:
    """What a merchandiser edits on a product's template (name, list price, active), confirming
    Tryton's warnings as the client's "yes" does (deactivating a product with stock warns)."""
    template = _template_of(erp, sku)
    try:
        erp.model("product.template", "write", [template], values, write=True)
    except Exception as exc:  # a UserWarning: record the user's answer, then write again
        body = getattr(exc, "body", None)
        if not (isinstance(body, list) and body and body[0] == "UserWarning"):
            raise
        uid = int(base64.b64decode(str(erp._auth).split()[1]).decode().split(":")[1])
        erp.model("res.user.warning", "create", [{"user": uid, "name": body[1][0], "always": False}], write=True)
        erp.model("product.template", "write", [template], values, write=True)


def set_list_price(erp: TrytonErpAdapter, sku: str, price: str) -> None:
    write_template(erp, sku, {"list_price": Decimal(price)})


def retire_product(erp: TrytonErpAdapter, sku: str) -> None:
    """Retire a product in Tryton: its template is deactivated."""
    write_template(erp, sku, {"active": False})


def add_customer(sf: VendureStorefrontAdapter, email: str, first: str, last: str) -> dict[str, Any]:
    """A customer who signed up without ordering yet (an address book entry included)."""
    res = sf.gql("mutation($i:CreateCustomerInput!){createCustomer(input:$i){__typename ... on Customer{id} "
                 "... on ErrorResult{message}}}", write=True,
                 i={"emailAddress": email, "firstName": first, "lastName": last})["createCustomer"]
    assert res["__typename"] == "Customer", res
    sf.gql("mutation($id:ID!,$i:CreateAddressInput!){createCustomerAddress(customerId:$id,input:$i){id}}",
           write=True, id=res["id"], i={**ADDRESS, "fullName": f"{first} {last}", "defaultBillingAddress": True})
    return sf.get_customer(res["id"])


def record_return(sf: VendureStorefrontAdapter, code: str, lines: dict[str, int], *, reason: str,
                  amount: int | None = None) -> str:
    """What the merchant does in Vendure when goods come back: a refund of those order lines
    (Vendure has no return request; the manual payment method leaves the refund Pending until the
    money goes back). ``amount`` (minor units) overrides Vendure's own sum of the lines. Returns
    the store return id erpsync gives it (``<order code>-R<refund id>``)."""
    order = sf.get_order(code)
    by_sku = {ln["productVariant"]["sku"]: ln["id"] for ln in order["lines"]}
    payment = next(p for p in order["payments"] if p["state"] == "Settled")
    res = sf.gql("mutation($i:RefundOrderInput!){refundOrder(input:$i){__typename ... on Refund{id state} "
                 "... on ErrorResult{message}}}", write=True,
                 i={"paymentId": payment["id"], "reason": reason, "shipping": 0, "adjustment": 0,
                    "lines": [{"orderLineId": by_sku[sku], "quantity": qty} for sku, qty in lines.items()],
                    **({"amount": amount} if amount is not None else {})})["refundOrder"]
    assert res["__typename"] == "Refund" and res["state"] == "Pending", res
    return f"{code}-R{res['id']}"


def request_erasure(sf: VendureStorefrontAdapter, customer_id: str) -> None:
    """A person asks to be forgotten: the shop puts them in the customer group erpsync reads."""
    found = sf.gql("query{customerGroups(options:{filter:{name:{eq:\"erasure-requested\"}}}){items{id}}}")
    items = found["customerGroups"]["items"]
    group = items[0]["id"] if items else sf.gql(
        "mutation($i:CreateCustomerGroupInput!){createCustomerGroup(input:$i){id}}", write=True,
        i={"name": "erasure-requested"})["createCustomerGroup"]["id"]
    sf.gql("mutation($g:ID!,$c:[ID!]!){addCustomersToGroup(customerGroupId:$g,customerIds:$c){id}}", write=True,
           g=group, c=[customer_id])
