"""The typed contract of a connector's mapping module (issue 18).

A mapping module is looked up by the flows at run time (``registry.erp_mapping`` /
``storefront_mapping``); these Protocols name the functions every ERP or storefront mapping
must provide, with their types. ``mypy`` (``make test``) checks each built-in mapping module
against them (the assignments under ``TYPE_CHECKING`` below), and
``tests/unit/test_capability_matrix.py`` checks at run time that the mapping of every registered
connector has each member. A mapping may have more (stock, prices, returns: see
docs/adding-a-connector.md); these are the ones no flow can do without.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from erpsync.model import Customer, Order

Raw = dict[str, Any]


class ErpMapping(Protocol):
    """customers_sync, orders_sync, shipments and reconciliation map ERP records through these."""

    def customer_from_erp(self, raw: Mapping[str, Any]) -> Customer: ...
    def customer_to_erp(self, c: Customer) -> Raw: ...
    def customer_update_to_erp(self, c: Customer) -> Raw: ...
    def order_to_erp(self, o: Order, customer_no: str) -> Raw: ...
    def customer_no(self, raw: Mapping[str, Any]) -> str: ...
    def customer_external_ref(self, raw: Mapping[str, Any]) -> str | None: ...
    def order_no(self, raw: Mapping[str, Any]) -> str: ...
    def item_code(self, raw: Mapping[str, Any]) -> str | None: ...


class StorefrontMapping(Protocol):
    """customers_sync, orders_sync, pricing and inventory map store records through these."""

    def customer_from_storefront(self, raw: Raw) -> Customer: ...
    def order_from_storefront(self, raw: Raw) -> Order: ...
    def order_id(self, raw: Any) -> str: ...
    def published_prices(self, product: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]: ...
    def store_level_of(self, raw: Raw) -> Raw | None: ...


ERP_MEMBERS = tuple(n for n in vars(ErpMapping) if not n.startswith("_"))
STOREFRONT_MEMBERS = tuple(n for n in vars(StorefrontMapping) if not n.startswith("_"))

if TYPE_CHECKING:  # mypy checks each built-in mapping module against its contract
    from erpsync.mappings import erp_sandbox, erp_tryton, storefront_sandbox, storefront_vendure

    _erp: list[ErpMapping] = [erp_sandbox, erp_tryton]
    _store: list[StorefrontMapping] = [storefront_sandbox, storefront_vendure]
