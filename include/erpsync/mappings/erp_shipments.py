"""Sandbox ERP shipments -> canonical Shipment -> sandbox storefront fulfillments (one per shipped package).

The ERP names items by item code; the store by SKU: ``sku_of`` resolves each code through the
cross-reference orders_sync bound when the order went out. A code it cannot resolve is a
MappingError (rule ``item_xref``), so the shipment waits in the dead letters instead of telling
the customer about the wrong item.

The ERP-side functions are re-exported by ``erp_sandbox`` and the storefront-side ones
(``fulfillment_to_storefront``, ``find_fulfillment``, ``fulfillment_ref``) by
``storefront_sandbox``: shipments_sync finds them through the adapters
(``erpsync.connectors.registry``), like the Tryton and Vendure ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from erpsync.errors import MappingError
from erpsync.mappings.engine import parse_time
from erpsync.model import Package, Shipment, ShipmentLine

Raw = Mapping[str, Any]

#: ERP carrier code -> the tracking company name the store knows (links to the carrier's tracking page)
CARRIERS: dict[str, str] = {
    "UPS": "UPS",
    "DHL": "DHL Express",
    "FEDEX": "FedEx",
    "USPS": "USPS",
    "DPD": "DPD",
    "GLS": "GLS",
    "ROYALMAIL": "Royal Mail",
}


def carrier_name(code: str) -> str:
    """A known carrier's store name; an unknown one is passed on as the ERP wrote it (never dropped)."""
    return CARRIERS.get(code.strip().upper().replace(" ", "").replace("_", ""), code.strip())


def _packages(raw: Raw) -> list[Any]:
    value = raw.get("packages") or []
    return value if isinstance(value, list) else [value]


def shipped_packages(raw: Raw) -> list[Raw]:
    """Packages handed to their carrier; pending ones (label printed, not collected) wait. A
    package that is not an object counts as shipped, so that the mapping refuses it by name."""
    return [p for p in _packages(raw) if not isinstance(p, Mapping) or (p.get("status") or "shipped") == "shipped"]


def shipment_done(raw: Raw) -> bool:
    """The ERP says the shipment left (a shipped one without packages is a dead letter)."""
    return str(raw.get("status") or "shipped") == "shipped"


def pending_packages(raw: Raw) -> int:
    """Packages of the shipment not yet handed to their carrier (they come when the ERP ships them)."""
    return len(_packages(raw)) - len(shipped_packages(raw))


def _time(value: Any, record: str, field: str) -> Any:
    try:
        return parse_time(value) if value else None
    except ValueError as exc:  # RuleViolation
        raise MappingError(record, field, "iso8601", value) from exc


def shipment_no(raw: Raw) -> str:
    return str(raw.get("shipment_no") or "?")


def shipment_order_no(raw: Raw) -> str | None:
    """The ERP sales order the shipment belongs to (its cross-reference names the store order)."""
    return str(raw["order_no"]) if raw.get("order_no") else None


def changed_at(raw: Raw) -> str | None:
    """When the ERP last changed the record (the flows' cursors follow it)."""
    value = raw.get("modified_at")
    return str(value) if value else None


def shipment_from_erp(raw: Raw, sku_of: Callable[[str], str | None], *, only_shipped: bool = True,
                      order_ref: str | None = None) -> Shipment:
    """The shipment with its shipped packages; ``order_ref`` (the store order bound to the ERP
    sales order) wins over the shipment's own free-text ``external_ref``."""
    record = f"erp shipment {raw.get('shipment_no', '?')}"
    if not raw.get("shipment_no"):
        raise MappingError(record, "shipment_no", "required", None)
    order = order_ref or raw.get("external_ref")
    if not order:
        raise MappingError(record, "external_ref", "required", None)
    packages = []
    for n, p in enumerate(shipped_packages(raw) if only_shipped else _packages(raw)):
        if not isinstance(p, Mapping):
            raise MappingError(record, f"packages[{n}]", "object", p)
        if not p.get("carrier") or not p.get("tracking_no"):
            raise MappingError(record, f"packages[{n}].tracking_no", "required", p.get("tracking_no"))
        lines = []
        for ln in p.get("lines") or []:
            if not isinstance(ln, Mapping):
                raise MappingError(record, f"packages[{n}].lines", "object", ln)
            code = str(ln.get("item_code") or "")
            sku = sku_of(code)
            if not sku:
                raise MappingError(record, f"packages[{n}].lines.item_code", "item_xref", code)
            qty = ln.get("qty")
            if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
                raise MappingError(record, f"packages[{n}].lines.qty", "quantity", qty)
            lines.append(ShipmentLine(sku=sku, quantity=qty))
        shipped = p.get("shipped_at") or raw.get("shipped_at")
        packages.append(Package(carrier=carrier_name(str(p["carrier"])), tracking_number=str(p["tracking_no"]),
                                lines=lines, shipped_at=_time(shipped, record, f"packages[{n}].shipped_at")))
    return Shipment(external_id=str(raw["shipment_no"]), order_external_id=str(order), packages=packages,
                    status=str(raw.get("status") or "shipped"),
                    updated_at=_time(raw.get("modified_at"), record, "modified_at"))


def fulfillment_to_storefront(p: Package, *, notify: bool = True) -> dict[str, Any]:
    """One fulfillment per package: its carrier, tracking number and the SKUs and quantities in it."""
    return {
        "tracking_company": p.carrier,
        "tracking_number": p.tracking_number,
        "line_items": [{"sku": ln.sku, "quantity": ln.quantity} for ln in p.lines],
        "notify_customer": notify,
    }


def find_fulfillment(order_raw: Raw | None, tracking: str) -> Raw | None:
    """The store order's fulfillment with this tracking number (a write whose answer was lost)."""
    for f in (order_raw or {}).get("fulfillments") or []:
        if f.get("tracking_number") == tracking:
            return {"fulfillment": f}
    return None


def fulfillment_ref(rec: Raw) -> str:
    """The store's id of a fulfillment in an ``add_fulfillment`` answer or a ``find_fulfillment`` hit."""
    return str((rec.get("fulfillment") or {}).get("id") or "")
