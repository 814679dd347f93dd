"""Adapter for the sandbox ERP (``erpsync.sandbox.erp``): session login, page pagination, keyed writes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec

from erpsync.connectors.base import ErpAdapter, Page, Raw, Rows
from erpsync.connectors.capabilities import Capabilities
from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.errors import AuthError, ConfigError, ConnectorError, TransientError

SESSION_ERRORS = {"session_expired", "invalid_session", "missing_session"}
#: stock lists page by the API's maximum (changed stock at 1M SKU-locations is thousands of rows)
STOCK_PAGE_SIZE = 1000
EXPORT_LIMIT = 50_000
BY_KEYS = 1000


def iso_z(value: dt.datetime) -> str:
    """The wire form of a time filter: UTC, ``Z`` suffix (naive times are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ExportPage(msgspec.Struct):
    """One page of a sandbox bulk export (ERP stock, store levels)."""

    fields: list[str]
    rows: list[tuple[Any, ...]]  # tuples: the garbage collector stops tracking them (a million rows)
    next_after: int | None = None


_EXPORT_PAGE = msgspec.json.Decoder(ExportPage)


def decode_export(content: bytes) -> Any:
    """``decode`` of the export calls: msgspec straight into :class:`ExportPage` (twice the speed of
    ``json.loads``); any other answer (an error body) decodes as plain JSON."""
    try:
        return _EXPORT_PAGE.decode(content)
    except msgspec.ValidationError:
        return msgspec.json.decode(content)


def export_pages(system: str, path: str, fetch: Callable[[int], Any]) -> Iterator[Rows]:
    """The sandbox's bulk exports: ``fetch(after)`` returns one page decoded by :data:`decode_export`;
    each page is one block, until ``next_after`` is null. A page of another shape stops the read."""
    after = -1
    while True:
        body = fetch(after)
        if not isinstance(body, ExportPage):
            raise ConnectorError(f"{system} GET {path}: the answer is not an export page: {str(body)[:200]}",
                                 system=system, body=body)
        yield Rows(tuple(body.fields), body.rows)
        if body.next_after is None:
            return
        after = body.next_after


class SandboxErpAdapter(ErpAdapter):
    """Logs in lazily, logs in again once when the session expired, pages through lists."""
    #: the capability matrix (erpsync.connectors.capabilities): the sandbox ERP has everything
    capabilities = Capabilities(
        name="sandbox ERP", multi_location_stock=True, price_lists=True, quantity_breaks=True,
        multi_currency_prices=True, rmas=True, erasure=True, bulk_stock_export=True, resumable_paging=True,
        idempotency_keys=True, sales_order_listing=True, expiring_sessions=True, rate_limits=True, webhooks=True)

    def __init__(
        self, base_url: str, username: str, password: str, *, timeout: float = 10.0, page_size: int = 100,
        retry: RetryPolicy | None = None, connection_id: str = "erp_default",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.username, self._password = username, password
        self.page_size = page_size
        self.connection_id = connection_id
        self.http = HttpClient(self.base_url, system=self.system, timeout=(min(3.05, timeout), timeout), retry=retry)
        self._session_id: str | None = None
        self._login_lock = threading.Lock()

    def fork(self) -> SandboxErpAdapter:
        """The same ERP with its own HTTP session, for one worker thread. It starts with this
        adapter's ERP session (one login for all the workers, not one each: a login costs a
        request of the ERP's budget) and logs in on its own when that session expires."""
        other = SandboxErpAdapter(self.base_url, self.username, self._password, page_size=self.page_size,
                                  retry=self.http.retry, connection_id=self.connection_id)
        other.http.timeout = self.http.timeout
        other.http.throttle = self.http.throttle  # one rate budget per system, whatever the thread
        other.http.key_replay = self.http.key_replay
        other._session_id = self._session_id
        return other

    # ------------------------------------------------------------------ session
    def login(self, *, retry: RetryPolicy | None = None) -> str:
        resp = self.http.request("POST", "/api/session", json={"username": self.username, "password": self._password},
                                 retry=retry)
        self._session_id = resp.body["session_id"]
        return self._session_id

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request with the session header; on an expired session, log in again once and resend."""
        for attempt in (1, 2):
            with self._login_lock:
                sid = self._session_id or self.login()
            try:
                return self.http.request(method, path, headers={"X-Session-Id": sid}, **kwargs)
            except AuthError as exc:
                code = exc.body.get("error") if isinstance(exc.body, dict) else None
                if attempt == 2 or exc.status != 401 or code not in SESSION_ERRORS:
                    raise
                with self._login_lock:
                    if self._session_id == sid:
                        self._session_id = None
        raise AssertionError("unreachable")  # pragma: no cover

    def ping(self) -> None:
        """Log in once without retries; unreachable host or refused login -> one-line ConfigError."""
        fix_host = f"start the sandbox with `make sandbox` or fix the host of Connection {self.connection_id}"
        try:
            self.login(retry=RetryPolicy.none())
        except AuthError as exc:
            code = exc.body.get("error") if isinstance(exc.body, dict) else exc.status
            raise ConfigError(
                f"ERP at {self.base_url} refused the login of user {self.username!r} ({code}): "
                f"fix login/password of Connection {self.connection_id}") from None
        except TransientError as exc:
            raise ConfigError(f"ERP at {self.base_url} is unreachable ({_reason(exc)}): {fix_host}") from None

    # ------------------------------------------------------------------ lists
    #: what ``read_page`` reads (the historical migration's sources)
    RESOURCES = {"customers": "/api/customers", "items": "/api/items", "shipments": "/api/shipments",
                 "sales_orders": "/api/sales-orders", "returns": "/api/returns"}

    def _page(
        self, path: str, updated_since: dt.datetime | None, updated_before: dt.datetime | None, page: int,
        page_size: int, **params: Any,
    ) -> Page:
        query = {k: v for k, v in params.items() if v is not None}
        query.update({k: iso_z(v) for k, v in (("updated_since", updated_since), ("updated_before", updated_before))
                      if v is not None})
        body = self._call("GET", path, params={**query, "page": page, "page_size": page_size}).body
        return Page(list(body["data"]), str(page + 1) if body.get("has_more") else None, body.get("total"))

    def _pages(
        self, path: str, updated_since: dt.datetime | None = None, *, page_size: int | None = None,
        updated_before: dt.datetime | None = None, **params: Any,
    ) -> Iterator[Raw]:
        page = 1
        while True:
            got = self._page(path, updated_since, updated_before, page, page_size or self.page_size, **params)
            yield from got.items
            if got.next_token is None:
                return
            page += 1

    def read_page(
        self, resource: str, *, updated_since: dt.datetime | None = None,
        updated_before: dt.datetime | None = None, token: str | None = None, limit: int = 100,
    ) -> Page:
        """Page numbers as tokens; ``total`` from the API. Lists are in key order."""
        if resource not in self.RESOURCES:
            raise ConfigError(f"ERP adapter 'sandbox' cannot page {resource!r}; it pages {', '.join(self.RESOURCES)}")
        return self._page(self.RESOURCES[resource], updated_since, updated_before, int(token or 1),
                          max(1, min(limit, 1000)))

    def find_customers(
        self, *, email: str | None = None, name: str | None = None, postcode: str | None = None
    ) -> list[Raw]:
        params = {k: v for k, v in {"email": email, "name": name, "postcode": postcode}.items() if v}
        if not params:
            raise ValueError("find_customers needs email, name or postcode")
        return list(self._call("GET", "/api/customers/search", params=params).body["data"])

    def create_customer(self, payload: Raw, *, idempotency_key: str) -> Raw:
        return self._call("POST", "/api/customers", json=payload, idempotency_key=idempotency_key).body

    def update_customer(self, erp_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        return self._call("PATCH", f"/api/customers/{erp_id}", json=payload, idempotency_key=idempotency_key).body

    def list_items(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._pages("/api/items", updated_since)

    def find_item_by_sku(self, sku: str) -> Raw | None:
        resp = self._call("GET", f"/api/items/by-sku/{sku}", allow_statuses=(404,))
        return None if resp.status == 404 else resp.body

    def list_stock(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._pages("/api/stock", updated_since, page_size=max(self.page_size, STOCK_PAGE_SIZE))

    def export_stock(self) -> Iterator[Raw]:
        """Every stock record through the bulk export (50,000 array rows a call)."""
        for block in self.export_stock_rows():
            yield from block.records()

    def export_stock_rows(self) -> Iterator[Rows]:
        """The bulk export as it comes: one block of array rows per call (50,000), decoded by msgspec."""
        path = "/api/stock/export"
        return export_pages(self.system, path, lambda after: self._call(
            "GET", path, decode=decode_export, params={"after": after, "limit": EXPORT_LIMIT}).body)

    def stock_for_items(self, item_codes: Sequence[str]) -> list[Raw]:
        codes = list(dict.fromkeys(item_codes))
        out: list[Raw] = []
        for i in range(0, len(codes), BY_KEYS):
            chunk = ",".join(codes[i : i + BY_KEYS])
            out.extend(self._call("GET", "/api/stock/by-items", params={"item_codes": chunk}).body["data"])
        return out

    def list_prices(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._pages("/api/prices", updated_since)

    # ------------------------------------------------------------------ orders and shipments
    def find_sales_order(self, external_ref: str) -> Raw | None:
        data = self._call("GET", "/api/sales-orders", params={"external_ref": external_ref, "page_size": 10}).body["data"]
        return data[0] if data else None

    def create_sales_order(self, payload: Raw, *, idempotency_key: str) -> Raw:
        return self._call("POST", "/api/sales-orders", json=payload, idempotency_key=idempotency_key).body

    def list_sales_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._pages("/api/sales-orders", updated_since)

    def list_shipments(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        return self._pages("/api/shipments", updated_since, updated_before=updated_before)

    # ------------------------------------------------------------------ returns and personal data
    def create_return(self, payload: Raw, *, idempotency_key: str) -> Raw:
        return self._call("POST", "/api/returns", json=payload, idempotency_key=idempotency_key).body

    def find_return(self, external_ref: str) -> Raw | None:
        data = self._call("GET", "/api/returns", params={"external_ref": external_ref, "page_size": 10}).body["data"]
        return data[0] if data else None

    def list_returns(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        return self._pages("/api/returns", updated_since, updated_before=updated_before)

    def anonymize_customer(self, erp_id: str, *, idempotency_key: str) -> Raw:
        return self._call("POST", f"/api/customers/{erp_id}/anonymize", json={},
                          idempotency_key=idempotency_key).body


def _reason(exc: TransientError) -> str:
    text = str(exc)
    for reason in ("connection refused", "host not found", "connect timeout", "cannot connect", "read timeout"):
        if reason in text:
            return reason
    return f"HTTP {exc.status}" if exc.status else text
