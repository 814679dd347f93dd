"""Warehouse and catalog work in Tryton, for the end-to-end and conformance tests: a
merchandiser adds a product, a stock count, a shipment picked, packed and shipped, a return
received. Each takes the adapter (its JSON-RPC client: ``model``, ``read``, ``search_read``,
``id_of``) and calls Tryton's own methods, as the Tryton client does; erpsync itself never
does these (the catalog and the warehouse are mastered in the ERP)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from erpsync.connectors.tryton import SHIPMENT_FIELDS, TrytonErpAdapter, TrytonError

Raw = dict[str, Any]


def create_item(erp: TrytonErpAdapter, payload: Raw) -> Raw:
    """A goods product (template + one variant): ``{"code", "name", "list_price", "cost_price",
    "description"}``; the product as the adapter reads it."""
    unit = erp.id_of("product.uom", "symbol", "u")
    price = Decimal(str(payload.get("list_price", "0")))
    template = {"name": payload["name"], "type": "goods", "default_uom": unit, "list_price": price,
                "salable": True, "sale_uom": unit,
                "products": [["create", [{"suffix_code": payload["code"],
                                          "description": payload.get("description") or "",
                                          "cost_price": Decimal(str(payload.get("cost_price", "0")))}]]]}
    erp.model("product.template", "create", [template], write=True)
    item = erp.find_item_by_sku(payload["code"])
    assert item is not None, f"product {payload['code']} not found after create"
    return item


def set_stock(erp: TrytonErpAdapter, levels: dict[str, int], *, warehouse: str | None = None) -> None:
    """Count a warehouse's storage (``warehouse``: its code; default: the Connection's warehouse):
    an inventory with ``{sku: quantity}``, confirmed."""
    wh_id = erp.warehouse_id() if warehouse is None else next(
        (i for i, code in erp.warehouses() if code == warehouse), None)
    if wh_id is None:
        raise TrytonError(f"Tryton has no warehouse {warehouse!r}", system=erp.system)
    storage = erp.read("stock.location", [wh_id], ["storage_location"])[0]["storage_location"]
    lines = [{"product": erp.id_of("product.product", "code", sku), "quantity": float(qty)}
             for sku, qty in levels.items()]
    inv_id, = erp.model("stock.inventory", "create", [{"location": storage, "lines": [["create", lines]]}],
                        write=True)
    erp.model("stock.inventory", "confirm", [inv_id], write=True)


def shipments_of_sale(erp: TrytonErpAdapter, reference: str) -> list[Raw]:
    """The customer shipments of the sale with this reference (the store order id), as
    ``list_shipments`` reads them."""
    sale = erp.find_sales_order(reference)
    if sale is None:
        return []
    return erp._complete_shipments(erp.read("stock.shipment.out", sale["shipments"], SHIPMENT_FIELDS))


def ship(erp: TrytonErpAdapter, shipment_id: int, *, tracking: str, carrier: str | None = None,
         quantities: dict[str, int] | None = None) -> Raw:
    """Warehouse work on a customer shipment: assign, pick, pack, set the tracking number, done.
    ``quantities`` (``{product code: quantity}``) ships only that much (a product left out: none):
    Tryton then makes a back-order shipment of the rest."""
    values: Raw = {"shipping_reference": tracking}
    if carrier:
        carriers = erp.search_read("carrier", [("party.name", "=", carrier)], ["id"], limit=1)
        if carriers:
            values["carrier"] = carriers[0]["id"]
    state = erp.read("stock.shipment.out", [shipment_id], ["state"])[0]["state"]
    if state in ("draft", "waiting"):
        if state == "draft":
            erp.model("stock.shipment.out", "wait", [shipment_id], write=True)
        if quantities is not None:  # pick less: the inventory moves, before they are assigned
            picks = erp.read("stock.shipment.out", [shipment_id], ["inventory_moves"])[0]["inventory_moves"]
            for move in erp.read("stock.move", picks, ["product.code", "quantity"]):
                qty = float(quantities.get(str(move["product.code"]), 0))
                if qty != float(move["quantity"]):
                    erp.model("stock.move", "write", [move["id"]], {"quantity": qty}, write=True)
        erp.model("stock.shipment.out", "assign_try", [shipment_id], write=True)
        state = erp.read("stock.shipment.out", [shipment_id], ["state"])[0]["state"]
        if state != "assigned":
            raise TrytonError(f"shipment {shipment_id} cannot be assigned (state {state}: not enough stock?)",
                              system=erp.system)
    if state == "assigned":
        erp.model("stock.shipment.out", "pick", [shipment_id], write=True)
        state = "picked"
    if state == "picked":
        erp.model("stock.shipment.out", "write", [shipment_id], values, write=True)
        erp.model("stock.shipment.out", "pack", [shipment_id], write=True)
        state = "packed"
    if state == "packed":
        erp.model("stock.shipment.out", "do", [shipment_id], write=True)
    return erp._complete_shipments(erp.read("stock.shipment.out", [shipment_id], SHIPMENT_FIELDS))[0]


def receive_return(erp: TrytonErpAdapter, rma: str) -> Raw:
    """Receive the goods of a return sale (its return shipment goes to done)."""
    sale = erp.find_sales_order(rma)
    if sale is None:
        raise TrytonError(f"no return sale {rma!r}", system=erp.system, status=404)
    ids = sale.get("shipment_returns") or []
    for method in ("receive", "do"):
        erp.model("stock.shipment.out.return", method, ids, write=True)
    return erp.get_sales_order(sale["id"])
