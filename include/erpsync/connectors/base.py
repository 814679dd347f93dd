"""The adapter interfaces every ERP and storefront connector implements.

Adapters do CRUD on the remote system and nothing else: they return raw records (dicts in the
remote system's own shape). Mapping to canonical records happens in ``erpsync.mappings``.
Every write takes an ``idempotency_key``; an adapter sends it where the system honours keys and
otherwise looks the record up by it before writing (see :meth:`ErpAdapter.find_sales_order`).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Raw = dict[str, Any]
#: records per block when :func:`row_blocks` groups an adapter's records
BLOCK_ROWS = 10_000
#: the one field of a block that holds a value which is not a record (null, text, a list): the
#: bulk readers dead-letter it with that value, as the per-record paths do
NOT_A_RECORD = "_not_a_record"


@dataclass(frozen=True, slots=True)
class Rows:
    """A block of records of one shape from a bulk export: ``fields`` names the columns and each row
    holds one record's values in that order (a bulk comparison reads a million records without
    building a dict for each). A row whose length is not ``len(fields)`` is malformed."""

    fields: tuple[str, ...]
    rows: Sequence[Sequence[Any]]

    def records(self) -> Iterator[Raw]:
        """The rows as records (raises ValueError on a row of the wrong length)."""
        fields = self.fields
        for row in self.rows:
            yield dict(zip(fields, row, strict=True))


def row_blocks(records: Iterable[Raw], size: int = BLOCK_ROWS) -> Iterator[Rows]:
    """Records as :class:`Rows` blocks: consecutive records with the same keys share a block, so
    an adapter without a columnar export still feeds the bulk paths (every key of every record kept)."""
    fields: tuple[str, ...] | None = None
    rows: list[list[Any]] = []
    for raw in records:
        if not isinstance(raw, dict):  # kept, in a block of its own: the reader dead-letters it
            if rows and fields is not None:
                yield Rows(fields, rows)
            yield Rows((NOT_A_RECORD,), [[raw]])
            fields, rows = None, []
            continue
        keys = tuple(raw)
        if keys != fields or len(rows) >= size:
            if rows and fields is not None:
                yield Rows(fields, rows)
            fields, rows = keys, []
        rows.append(list(raw.values()))
    if rows and fields is not None:
        yield Rows(fields, rows)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a resumable read (``read_page``): its records in the system's stable order, the
    token of the next page (None after the last; hand it back to continue, in another process too)
    and how many records the whole window holds when the system says (progress and ETA)."""

    items: list[Raw]
    next_token: str | None
    total: int | None = None


class PagedReads:
    """Resumable reads, shared by both adapter interfaces; not abstract: an adapter without them
    still works for the historical migration, which then re-reads and skips on a resume."""

    def read_page(
        self, resource: str, *, updated_since: dt.datetime | None = None,
        updated_before: dt.datetime | None = None, token: str | None = None, limit: int = 100,
    ) -> Page:
        """One page of ``resource`` changed in [``updated_since``, ``updated_before``), from
        ``token`` (None: the first page), at most ``limit`` records."""
        raise unsupported(self, "resumable_paging", f"resumable reads of {resource}")


class ErpAdapter(PagedReads, abc.ABC):
    """An ERP: master of customers (B2B), products, prices and stock; target of orders."""

    system: str = "erp"

    @abc.abstractmethod
    def ping(self) -> None:
        """Check reachability and credentials; raise ConfigError/ConnectorError with a clear line."""

    # customers (the ERP's are found, created and updated, never listed: no flow reads them all)
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
    def list_shipments(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        """Shipments changed in [``updated_since``, ``updated_before``) (a backfill reads one slice)."""

    # Sales order listing, returns and erasure (issue 5). Not abstract, so an adapter written
    # before them still loads: each refuses with UnsupportedByConnector naming the capability
    # (``unsupported``, the one way to say a system has no such thing; a ConfigError: the task
    # stops with that one line). The flows read the capability matrix first and say once per run
    # what the connector lacks. The sandbox adapter implements them all.
    def list_sales_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        """Sales orders changed since the time (the daily reconciliation reads them)."""
        raise unsupported(self, "sales_order_listing", "listing sales orders")

    def create_return(self, payload: Raw, *, idempotency_key: str) -> Raw:
        """Open an RMA for a storefront return (``external_ref`` = the storefront return id)."""
        raise unsupported(self, "rmas", "returns (RMAs)")

    def find_return(self, external_ref: str) -> Raw | None:
        """The RMA whose external reference is the storefront return id, if any."""
        raise unsupported(self, "rmas", "returns (RMAs)")

    def list_returns(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        """RMAs changed in [since, before), each with its status, dispositions and credit memo."""
        raise unsupported(self, "rmas", "returns (RMAs)")

    def anonymize_customer(self, erp_id: str, *, idempotency_key: str) -> Raw:
        """Erase a customer's personal data as far as the ERP allows (its documents stay)."""
        raise unsupported(self, "erasure", "anonymising customers")

    # bulk stock (not abstract: an adapter without a bulk API falls back on ``list_stock``)
    def export_stock(self) -> Iterator[Raw]:
        """Every stock record, for full comparisons; override with the system's bulk export."""
        return self.list_stock()

    def export_stock_rows(self) -> Iterator[Rows]:
        """Every stock record as :class:`Rows` blocks (the drift check reads these); override when
        the system's export is columnar already."""
        return row_blocks(self.export_stock())

    def list_warehouses(self) -> list[str] | None:
        """The codes of the ERP's warehouses (what stock rows name as ``warehouse``), or None when
        the ERP cannot list them (inventory_sync then checks its location map on full reads only)."""
        return None

    def stock_for_items(self, item_codes: Sequence[str]) -> list[Raw]:
        """The stock records of every warehouse of these items; override with a filtered query."""
        wanted = set(item_codes)
        return [r for r in self.list_stock() if r.get("item_code") in wanted]


class StorefrontAdapter(PagedReads, abc.ABC):
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

    # returns, refunds and erasure requests (issue 5); not abstract, see ErpAdapter.list_sales_orders
    def list_returns(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        raise unsupported(self, "rmas", "returns")

    def get_return(self, return_id: str) -> Raw | None:
        raise unsupported(self, "rmas", "returns")

    def update_return(self, return_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        raise unsupported(self, "rmas", "returns")

    def refund_return(self, return_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        """Refund (part of) a return; returns ``{"refund": {...}}``."""
        raise unsupported(self, "rmas", "refunds")

    def list_erasure_requests(self, status: str | None = "pending") -> list[Raw]:
        raise unsupported(self, "erasure", "erasure requests")

    def complete_erasure_request(self, request_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        raise unsupported(self, "erasure", "erasure requests")

    # bulk stock (not abstract: an adapter without a bulk API falls back on ``list_inventory``)
    def export_inventory(self) -> Iterator[Raw]:
        """Every inventory level, for full comparisons; override with the store's bulk export."""
        return self.list_inventory()

    def export_inventory_rows(self) -> Iterator[Rows]:
        """Every inventory level as :class:`Rows` blocks (the drift check reads these); override
        when the store's export is columnar already."""
        return row_blocks(self.export_inventory())

    def inventory_for(self, skus: Sequence[str]) -> list[Raw]:
        """The levels of these SKUs at every location; override with a filtered query."""
        wanted = set(skus)
        return [r for r in self.list_inventory() if r.get("sku") in wanted]

    def list_locations(self) -> list[str] | None:
        """The store's location ids, or None when the store cannot list them."""
        return None

    # prices (pricing_sync); not abstract, so adapters without B2B price lists still load
    #: most prices one price write may carry
    price_batch_limit: int = 250

    def set_variant_prices(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        """Set ``[{"sku", "price", "compare_at_price"}]`` on variants; all or nothing."""
        raise unsupported(self, "variant_prices", "variant prices")

    def list_price_lists(self) -> Iterator[Raw]:
        raise unsupported(self, "price_lists", "price lists")

    def upsert_price_list(self, payload: Raw, *, idempotency_key: str) -> Raw:
        """Create or update a price list by ``handle``; returns ``{"price_list": {...}, "created"}``."""
        raise unsupported(self, "price_lists", "price lists")

    def list_price_list_prices(self, price_list_id: str) -> Iterator[Raw]:
        raise unsupported(self, "price_lists", "price lists")

    def change_price_list_prices(
        self, price_list_id: str, set_rows: list[Raw], delete_rows: list[Raw], *, idempotency_key: str
    ) -> Raw:
        """Set ``[{"sku", "min_qty", "price", "compare_at_price"}]`` and delete ``[{"sku", "min_qty"}]``."""
        raise unsupported(self, "price_lists", "price lists")


def unsupported(adapter: object, capability: str, what: str) -> Exception:
    """The one way to say "this system has no such thing": an :class:`UnsupportedByConnector`
    naming the adapter and the capability of the matrix it lacks."""
    from erpsync.errors import UnsupportedByConnector

    return UnsupportedByConnector(type(adapter).__name__, capability, what)
