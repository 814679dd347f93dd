"""Reads of the sandbox that the tests and the chaos benchmark make and no flow does: every
customer of the sandbox ERP (no flow lists the ERP's customers: the adapter finds, creates and
updates them) and the storefront's event feed (erpsync takes events as webhooks). Both go
through the adapter's own clients, so they see what the adapter would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter

Raw = dict[str, Any]


def erp_customers(erp: SandboxErpAdapter, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
    """Every customer of the sandbox ERP changed since the time, page by page (``read_page``)."""
    token: str | None = None
    while True:
        page = erp.read_page("customers", updated_since=updated_since, token=token, limit=erp.page_size)
        yield from page.items
        if page.next_token is None:
            return
        token = page.next_token


def store_events(sf: SandboxStorefrontAdapter, after: str | None = None, limit: int = 500) -> tuple[list[Raw], str | None]:
    """The sandbox storefront's events after the cursor ``after`` (oldest first) and the cursor
    to pass next time (``GET /admin/api/events``)."""
    body = sf.http.request("GET", "/admin/api/events", params={"after": after or 0, "limit": limit}).body
    return list(body["items"]), body.get("next_cursor")
