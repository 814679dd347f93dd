"""Adapter for the sandbox storefront (``erpsync.sandbox.storefront``): bearer token, cursors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from erpsync.connectors.base import Page, Raw, Rows, StorefrontAdapter
from erpsync.connectors.capabilities import Capabilities
from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.connectors.sandbox_erp import EXPORT_LIMIT, _reason, decode_export, export_pages, iso_z
from erpsync.errors import AuthError, ConfigError, TransientError


class SandboxStorefrontAdapter(StorefrontAdapter):
    #: the capability matrix (erpsync.connectors.capabilities): the sandbox store has everything
    capabilities = Capabilities(
        name="sandbox storefront", multi_location_stock=True, price_lists=True, quantity_breaks=True,
        multi_currency_prices=True, rmas=True, erasure=True, webhooks=True, bulk_stock_export=True,
        resumable_paging=True, idempotency_keys=True, rate_limits=True,
        notes=(("expiring_sessions", "a static bearer token: no session to expire"),))
    inventory_batch_limit = 250

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 10.0, page_size: int = 100,
        retry: RetryPolicy | None = None, connection_id: str = "storefront_default",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page_size = min(page_size, 250)
        self.connection_id = connection_id
        self.http = HttpClient(self.base_url, system=self.system, timeout=(min(3.05, timeout), timeout), retry=retry,
                               headers={"Authorization": f"Bearer {token}"})

    def ping(self) -> None:
        try:
            self.http.request("GET", "/admin/api/shop", retry=RetryPolicy.none())
        except AuthError as exc:
            code = exc.body.get("error") if isinstance(exc.body, dict) else exc.status
            raise ConfigError(
                f"storefront at {self.base_url} refused the API token ({code}): set the token as the password "
                f"of Connection {self.connection_id}") from None
        except TransientError as exc:
            raise ConfigError(
                f"storefront at {self.base_url} is unreachable ({_reason(exc)}): start the sandbox with "
                f"`make sandbox` or fix the host of Connection {self.connection_id}") from None

    #: what ``read_page`` reads (the historical migration's sources); each has ``<path>/count``
    RESOURCES = {"customers": "/admin/api/customers", "orders": "/admin/api/orders",
                 "returns": "/admin/api/returns", "products": "/admin/api/products"}

    def _page(self, path: str, cursor: str | None, limit: int, **params: Any) -> Page:
        query: dict[str, Any] = {"limit": limit, "cursor": cursor} if cursor else {
            **{k: v for k, v in params.items() if v is not None}, "limit": limit}
        body = self.http.request("GET", path, params=query).body
        return Page(list(body["items"]), body.get("next_cursor") or None)

    def _cursor(self, path: str, **params: Any) -> Iterator[Raw]:
        cursor: str | None = None
        while True:
            got = self._page(path, cursor, self.page_size, **params)
            yield from got.items
            if got.next_token is None:
                return
            cursor = got.next_token

    def read_page(
        self, resource: str, *, updated_since: dt.datetime | None = None,
        updated_before: dt.datetime | None = None, token: str | None = None, limit: int = 100,
    ) -> Page:
        """The store's cursors as tokens (they carry the filters and the last id, so they stay valid
        while records change); the first page also asks ``<path>/count`` for the window's size."""
        if resource not in self.RESOURCES:
            raise ConfigError(f"storefront adapter 'sandbox' cannot page {resource!r}; "
                              f"it pages {', '.join(self.RESOURCES)}")
        path = self.RESOURCES[resource]
        window = {"updated_since": self._since(updated_since), "updated_before": self._since(updated_before)}
        got = self._page(path, token, max(1, min(limit, 250)), **window)
        if token is not None:
            return got
        resp = self.http.request("GET", f"{path}/count", params={k: v for k, v in window.items() if v},
                                 allow_statuses=(404,))
        return Page(got.items, got.next_token, None if resp.status == 404 else int(resp.body["count"]))

    @staticmethod
    def _since(value: dt.datetime | None) -> str | None:
        return iso_z(value) if value is not None else None

    def list_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._cursor("/admin/api/customers", updated_since=self._since(updated_since))

    def get_customer(self, customer_id: str) -> Raw | None:
        resp = self.http.request("GET", f"/admin/api/customers/{customer_id}", allow_statuses=(404,))
        return None if resp.status == 404 else resp.body

    def list_orders(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        return self._cursor("/admin/api/orders", updated_since=self._since(updated_since),
                            updated_before=self._since(updated_before))

    def get_order(self, order_id: str) -> Raw | None:
        resp = self.http.request("GET", f"/admin/api/orders/{order_id}", allow_statuses=(404,))
        return None if resp.status == 404 else resp.body

    def list_products(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._cursor("/admin/api/products", updated_since=self._since(updated_since))

    def upsert_product(self, payload: Raw, *, idempotency_key: str) -> Raw:
        return self.http.request("POST", "/admin/api/products", json=payload, idempotency_key=idempotency_key).body

    def list_inventory(self) -> Iterator[Raw]:
        return self._cursor("/admin/api/inventory_levels")

    def set_inventory(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        if len(items) > self.inventory_batch_limit:
            raise ValueError(f"{len(items)} inventory items in one call; split into batches of "
                             f"{self.inventory_batch_limit}")
        return self.http.request("POST", "/admin/api/inventory_levels/set", json={"items": items},
                                 idempotency_key=idempotency_key).body

    def set_variant_prices(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        self._check_batch(len(items))
        return self.http.request("POST", "/admin/api/variants/prices", json={"items": items},
                                 idempotency_key=idempotency_key).body

    def list_price_lists(self) -> Iterator[Raw]:
        return self._cursor("/admin/api/price_lists")

    def upsert_price_list(self, payload: Raw, *, idempotency_key: str) -> Raw:
        return self.http.request("POST", "/admin/api/price_lists", json=payload, idempotency_key=idempotency_key).body

    def list_price_list_prices(self, price_list_id: str) -> Iterator[Raw]:
        return self._cursor(f"/admin/api/price_lists/{price_list_id}/prices")

    def change_price_list_prices(
        self, price_list_id: str, set_rows: list[Raw], delete_rows: list[Raw], *, idempotency_key: str
    ) -> Raw:
        self._check_batch(len(set_rows) + len(delete_rows))
        return self.http.request("POST", f"/admin/api/price_lists/{price_list_id}/prices",
                                 json={"set": set_rows, "delete": delete_rows}, idempotency_key=idempotency_key).body

    def _check_batch(self, n: int) -> None:
        if n > self.price_batch_limit:
            raise ValueError(f"{n} prices in one call; split into batches of {self.price_batch_limit}")

    def export_inventory(self) -> Iterator[Raw]:
        """Every level through the bulk export (50,000 array rows a call)."""
        for block in self.export_inventory_rows():
            yield from block.records()

    def export_inventory_rows(self) -> Iterator[Rows]:
        """The bulk export as it comes: one block of array rows per call (50,000), decoded by msgspec."""
        path = "/admin/api/inventory_levels/export"
        return export_pages(self.system, path, lambda after: self.http.request(
            "GET", path, decode=decode_export, params={"after": after, "limit": EXPORT_LIMIT}).body)

    def inventory_for(self, skus: Sequence[str]) -> list[Raw]:
        wanted = list(dict.fromkeys(skus))
        out: list[Raw] = []
        for i in range(0, len(wanted), 1000):
            out.extend(self.http.request("GET", "/admin/api/inventory_levels/by-skus",
                                         params={"skus": ",".join(wanted[i : i + 1000])}).body["data"])
        return out

    def list_locations(self) -> list[str] | None:
        return [str(loc["id"]) for loc in self._cursor("/admin/api/locations")]

    def add_fulfillment(self, order_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        return self.http.request("POST", f"/admin/api/orders/{order_id}/fulfillments", json=payload,
                                 idempotency_key=idempotency_key).body

    def list_returns(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        return self._cursor("/admin/api/returns", updated_since=self._since(updated_since),
                            updated_before=self._since(updated_before))

    def get_return(self, return_id: str) -> Raw | None:
        resp = self.http.request("GET", f"/admin/api/returns/{return_id}", allow_statuses=(404,))
        return None if resp.status == 404 else resp.body

    def update_return(self, return_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        return self.http.request("PUT", f"/admin/api/returns/{return_id}", json=payload,
                                 idempotency_key=idempotency_key).body

    def refund_return(self, return_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        return self.http.request("POST", f"/admin/api/returns/{return_id}/refunds", json=payload,
                                 idempotency_key=idempotency_key).body

    def list_erasure_requests(self, status: str | None = "pending") -> list[Raw]:
        params = {"status": status} if status else {}
        return list(self.http.request("GET", "/admin/api/privacy/erasure_requests", params=params).body["items"])

    def complete_erasure_request(self, request_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        return self.http.request("POST", f"/admin/api/privacy/erasure_requests/{request_id}/complete", json=payload,
                                 idempotency_key=idempotency_key).body
