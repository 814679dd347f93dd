"""The adapter interfaces every ERP and storefront connector implements.

Adapters do CRUD on the remote system and nothing else: they return raw records (dicts in the
remote system's own shape). Mapping to canonical records happens in ``erpsync.mappings``.
Every write takes an ``idempotency_key``; an adapter sends it where the system honours keys and
otherwise looks the record up by it before writing (see :meth:`ErpAdapter.find_sales_order`).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterator
from typing import Any

Raw = dict[str, Any]


class ErpAdapter(abc.ABC):
    """An ERP: master of customers (B2B), products, prices and stock; target of orders."""

    system: str = "erp"

    @abc.abstractmethod
    def ping(self) -> None:
        """Check reachability and credentials; raise ConfigError/ConnectorError with a clear line."""

    # customers
    @abc.abstractmethod
    def list_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]: ...

    @abc.abstractmethod
    def find_customers(
        self, *, email: str | None = None, name: str | None = None, postcode: str | None = None
    ) -> list[Raw]: ...

    @abc.abstractmethod
    def create_customer(self, payload: Raw, *, idempotency_key: str) -> Raw: ...

    @abc.abstractmethod
    def update_customer(self, erp_id: str, payload: Raw, *, idempotency_key: str) -> Raw: ...

    # catalog, stock, prices
    @abc.abstractmethod
    def list_items(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]: ...

    @abc.abstractmethod
    def find_item_by_sku(self, sku: str) -> Raw | None: ...

    @abc.abstractmethod
    def list_stock(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]: ...

    @abc.abstractmethod
    def list_prices(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]: ...

    # orders
    @abc.abstractmethod
    def find_sales_order(self, external_ref: str) -> Raw | None:
        """The sales order whose external reference is the storefront order id, if any."""

    @abc.abstractmethod
    def create_sales_order(self, payload: Raw, *, idempotency_key: str) -> Raw: ...

    # shipments
    @abc.abstractmethod
    def list_shipments(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]: ...


class StorefrontAdapter(abc.ABC):
    """An online store: master of orders and (B2C) customers; target of catalog and stock."""

    system: str = "storefront"
    #: most items one inventory write may carry (Shopify: 250)
    inventory_batch_limit: int = 250

    @abc.abstractmethod
    def ping(self) -> None: ...

    @abc.abstractmethod
    def list_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]: ...

    @abc.abstractmethod
    def get_customer(self, customer_id: str) -> Raw | None: ...

    @abc.abstractmethod
    def list_orders(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]: ...

    @abc.abstractmethod
    def get_order(self, order_id: str) -> Raw | None: ...

    @abc.abstractmethod
    def events(self, after: str | None = None, limit: int = 500) -> tuple[list[Raw], str | None]:
        """Events after the cursor ``after`` (oldest first) and the cursor to pass next time."""

    @abc.abstractmethod
    def list_products(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]: ...

    @abc.abstractmethod
    def upsert_product(self, payload: Raw, *, idempotency_key: str) -> Raw: ...

    @abc.abstractmethod
    def list_inventory(self) -> Iterator[Raw]: ...

    @abc.abstractmethod
    def set_inventory(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        """Set available quantities; ``len(items)`` must not exceed ``inventory_batch_limit``."""

    @abc.abstractmethod
    def add_fulfillment(self, order_id: str, payload: Raw, *, idempotency_key: str) -> Raw: ...
