"""Resumable reads (``read_page``) of the sandbox adapters over HTTP: pages in a stable order, a
token that continues in another adapter (another process), and the size of the window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.errors import ConfigError

pytestmark = pytest.mark.integration

SINCE = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
BEFORE = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def _all_pages(read: Any, resource: str, limit: int, token: str | None = None) -> tuple[list[str], int | None]:
    ids: list[str] = []
    total = None
    while True:
        page = read(resource, updated_since=SINCE, updated_before=BEFORE, token=token, limit=limit)
        total = page.total if token is None else total
        ids += [str(r.get("id") or r.get("item_code")) for r in page.items]
        if page.next_token is None:
            return ids, total
        token = page.next_token


def test_storefront_pages_resume_from_a_token_in_another_adapter(clean_sandbox: Any, storefront_adapter: Any) -> None:
    expected = [str(o["id"]) for o in storefront_adapter.list_orders(updated_since=SINCE, updated_before=BEFORE)]
    assert len(expected) > 30
    ids, total = _all_pages(storefront_adapter.read_page, "orders", limit=7)
    assert ids == expected and total == len(expected)
    first = storefront_adapter.read_page("orders", updated_since=SINCE, updated_before=BEFORE, limit=10)
    other = SandboxStorefrontAdapter(clean_sandbox.storefront_url, clean_sandbox.token)
    rest, _ = _all_pages(other.read_page, "orders", limit=10, token=first.next_token)
    assert [str(o["id"]) for o in first.items] + rest == expected
    # the count route does not shadow an order id
    one = requests.get(f"{clean_sandbox.storefront_url}/admin/api/orders/{expected[0]}",
                       headers={"Authorization": f"Bearer {clean_sandbox.token}"}, timeout=5)
    assert one.json()["id"] == expected[0]
    with pytest.raises(ConfigError, match="cannot page 'stock'"):
        storefront_adapter.read_page("stock")


def test_erp_pages_carry_the_total(clean_sandbox: Any, erp_adapter: Any) -> None:
    expected = [str(i["item_code"]) for i in erp_adapter.list_items()]
    ids, total = _all_pages(lambda *a, **k: erp_adapter.read_page(*a, **{**k, "updated_since": None,
                                                                          "updated_before": None}), "items", 16)
    assert ids == expected and total == len(expected)
    other = SandboxErpAdapter(clean_sandbox.erp_url, clean_sandbox.erp_user, clean_sandbox.erp_password)
    assert [i["item_code"] for i in other.read_page("items", token="2", limit=16).items] == expected[16:32]
