"""Adapter for the sandbox storefront (``erpsync.sandbox.storefront``): bearer token, cursors, events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from erpsync.connectors.base import Raw, StorefrontAdapter
from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.connectors.sandbox_erp import _reason, iso_z
from erpsync.errors import AuthError, ConfigError, TransientError


class SandboxStorefrontAdapter(StorefrontAdapter):
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

    def _cursor(self, path: str, **params: Any) -> Iterator[Raw]:
        query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        query["limit"] = self.page_size
        while True:
            body = self.http.request("GET", path, params=query).body
            yield from body["items"]
            if not body.get("next_cursor"):
                return
            query = {"limit": self.page_size, "cursor": body["next_cursor"]}

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

    def events(self, after: str | None = None, limit: int = 500) -> tuple[list[Raw], str | None]:
        body = self.http.request("GET", "/admin/api/events", params={"after": after or 0, "limit": limit}).body
        return list(body["items"]), body.get("next_cursor")

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

    def add_fulfillment(self, order_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        return self.http.request("POST", f"/admin/api/orders/{order_id}/fulfillments", json=payload,
                                 idempotency_key=idempotency_key).body
