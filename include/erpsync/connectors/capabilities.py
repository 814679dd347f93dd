"""The capability matrix: what each connector's system supports, declared once per adapter class.

Every adapter class carries ``capabilities = Capabilities(...)``: one typed declaration of what
its remote system can do, per capability below. The flows read it (:func:`capabilities_of`,
:func:`lacking`) before asking a system for something it has not got, and then say so once per
run (one log line and one dead letter naming the connector and the capability, entity
``capability``), never once per record. ``erpsync connectors list`` prints the matrix and
docs/adding-a-connector.md shows it (a test checks the doc's table against these declarations).

An adapter class that declares nothing (a test double, a third-party adapter written before the
matrix) gets a declaration derived from the methods it overrides (:func:`derived`), so nothing
that works today is refused.

Whether erpsync *relies* on a remote's idempotency keys stays the Connection's choice
(``idempotency_key_replay``, docs/configuration.md): ``idempotency_keys`` here says what the remote
does; a Connection cannot claim replay for a connector whose system is declared without keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: capability -> (side it applies to: "erp", "storefront" or "both"; the flows relying on it; what it means)
CAPABILITIES: dict[str, tuple[str, str, str]] = {
    "multi_location_stock": ("both", "inventory_sync, inventory_drift_check",
                             "stock per warehouse (ERP) / per stock location (store)"),
    "price_lists": ("both", "pricing_sync",
                    "customer-group and customer-specific (B2B, contract) price lists"),
    "quantity_breaks": ("both", "pricing_sync", "prices from a minimum quantity"),
    "multi_currency_prices": ("both", "pricing_sync", "prices in more than one currency"),
    "rmas": ("both", "returns_sync", "returns (RMAs) read and written, with their refunds or credit memos"),
    "erasure": ("both", "customer_erasure",
                "store: keeps erasure requests; ERP: anonymises a customer"),
    "webhooks": ("both", "orders_sync, shipments_sync, returns_sync, inventory_fast_lane, pricing_sync, customer_erasure (each keeps its cron sweep)",
                 "pushes signed change events (webhooks) to erpsync's receiver"),
    "bulk_stock_export": ("both", "inventory_drift_check, inventory_sync (first run)",
                          "every stock record in one bulk export, not record by record"),
    "resumable_paging": ("both", "historical_migration",
                         "read_page: stable page tokens, resumable in another process"),
    "idempotency_keys": ("both", "every write (only with idempotency_key_replay: true)",
                         "the remote replays a keyed write instead of writing again"),
    "sales_order_listing": ("erp", "orders_reconciliation", "lists sales orders changed since a time"),
    "expiring_sessions": ("both", "every flow (the adapter logs in again)",
                          "a login session or token the system can end mid-run (a static API token has none)"),
    "rate_limits": ("both", "every flow (the HTTP client waits Retry-After)",
                    "the system answers 429 with Retry-After when called too fast"),
}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one connector's system supports (see :data:`CAPABILITIES` for each field's meaning)."""

    name: str  #: the system as people call it ("Tryton 8.2")
    multi_location_stock: bool = False
    price_lists: bool = False
    quantity_breaks: bool = False
    multi_currency_prices: bool = False
    rmas: bool = False
    erasure: bool = False
    webhooks: bool = False
    bulk_stock_export: bool = False
    resumable_paging: bool = False
    idempotency_keys: bool = False
    sales_order_listing: bool = False
    expiring_sessions: bool = False
    rate_limits: bool = False
    #: why a capability is missing, where that helps the reader ("Vendure has no price lists ...")
    notes: tuple[tuple[str, str], ...] = ()

    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise KeyError(f"unknown capability {capability!r}; one of {sorted(CAPABILITIES)}")
        return bool(getattr(self, capability))

    def note(self, capability: str) -> str:
        return dict(self.notes).get(capability, "")

    def as_dict(self) -> dict[str, bool]:
        return {c: self.has(c) for c in CAPABILITIES}


# which overridden method stands for which capability (for adapters that declare nothing)
_DERIVE: dict[str, dict[str, tuple[str, ...]]] = {
    "erp": {"rmas": ("create_return", "list_returns"), "erasure": ("anonymize_customer",),
            "bulk_stock_export": ("export_stock_rows",), "resumable_paging": ("read_page",),
            "sales_order_listing": ("list_sales_orders",), "multi_location_stock": ("list_warehouses",)},
    "storefront": {"rmas": ("list_returns", "update_return"), "erasure": ("list_erasure_requests",),
                   "bulk_stock_export": ("export_inventory_rows",), "resumable_paging": ("read_page",),
                   "multi_location_stock": ("list_locations",)},
}


def derived(cls: type) -> Capabilities:
    """A declaration from the methods ``cls`` overrides (an adapter that declares none); the
    pricing capabilities are assumed present (its mapping still refuses what it cannot hold, one
    dead letter per refused target, as before the matrix)."""
    from erpsync.connectors.base import ErpAdapter, StorefrontAdapter

    base: type = ErpAdapter if issubclass(cls, ErpAdapter) else StorefrontAdapter
    side = "erp" if base is ErpAdapter else "storefront"
    flags: dict[str, Any] = {c: True for c in ("price_lists", "quantity_breaks", "multi_currency_prices")}
    for cap, methods in _DERIVE[side].items():
        flags[cap] = all(getattr(cls, m, None) is not getattr(base, m, None) for m in methods)
    flags["webhooks"] = side == "storefront"
    flags["multi_location_stock"] = flags["multi_location_stock"] or side == "erp"
    return Capabilities(name=f"{cls.__name__} (undeclared)", **flags)


def capabilities_of(adapter: object) -> Capabilities:
    """The declaration of an adapter (instance or class): its class's ``capabilities``, else derived."""
    cls = adapter if isinstance(adapter, type) else type(adapter)
    declared = cls.__dict__.get("capabilities")
    if isinstance(declared, Capabilities):
        return declared
    for klass in cls.__mro__[1:]:  # a subclass of a declared adapter inherits its declaration
        inherited = klass.__dict__.get("capabilities")
        if isinstance(inherited, Capabilities) and klass.__module__ != "erpsync.connectors.base":
            return inherited
    return derived(cls)


def lacking(adapter: object, *capabilities: str) -> list[str]:
    """The capabilities of ``capabilities`` the adapter's system has not got (declared False)."""
    caps = capabilities_of(adapter)
    return [c for c in capabilities if not caps.has(c)]


def unsupported_reason(adapter: object, capability: str, what: str) -> str:
    """The one line a flow says when its connector lacks ``capability``."""
    caps = capabilities_of(adapter)
    note = caps.note(capability)
    return (f"unsupported_by_connector: {caps.name} ({type(adapter).__name__}) lacks {capability}"
            f"{f' ({note})' if note else ''}; {what}")


def say_unsupported(ctx: Any, summary: Any, side: str, capability: str, what: str,
                    payload: dict[str, Any] | None = None) -> None:
    """Say once per run that the ``side`` ("erp"/"storefront") connector of ``ctx`` lacks
    ``capability``: one warning in the task log and one dead letter (entity ``capability``,
    external id ``<side>:<capability>``: the same open letter each run, its attempts counted)."""
    from erpsync.runctx import dead_letter

    adapter = ctx.erp if side == "erp" else ctx.storefront
    reason = unsupported_reason(adapter, capability, what)
    ctx.log.warning("%s: %s", ctx.flow, reason)
    dead_letter(ctx, summary, "capability", f"{side}:{capability}",
                {"connector": type(adapter).__name__, "capability": capability, **(payload or {})},
                reason, error_kind="unsupported")


def matrix(adapters: dict[str, type]) -> list[dict[str, str]]:
    """Rows for a table: one per capability, one column per connector ("yes"/"no"/"-" off its side)."""
    from erpsync.connectors.base import ErpAdapter

    rows = []
    for cap, (side, flows, _meaning) in CAPABILITIES.items():
        row = {"capability": cap, "flows": flows}
        for label, cls in adapters.items():
            cls_side = "erp" if issubclass(cls, ErpAdapter) else "storefront"
            row[label] = "-" if side not in ("both", cls_side) else (
                "yes" if capabilities_of(cls).has(cap) else "no")
        rows.append(row)
    return rows


def known_adapters() -> dict[str, type]:
    """The registry's built-in connectors, labelled ``<side>:<name>``, as classes."""
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
    from erpsync.connectors.tryton import TrytonErpAdapter
    from erpsync.connectors.vendure import VendureStorefrontAdapter

    return {"erp:sandbox": SandboxErpAdapter, "erp:tryton": TrytonErpAdapter,
            "storefront:sandbox": SandboxStorefrontAdapter, "storefront:vendure": VendureStorefrontAdapter}


def replace(caps: Capabilities, **changes: Any) -> Capabilities:
    """A copy with some capabilities changed (tests, a subclass with a plugin installed)."""
    return dataclasses.replace(caps, **changes)
