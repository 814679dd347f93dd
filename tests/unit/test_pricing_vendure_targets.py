"""pricing_sync with a Vendure-like storefront (the storefront_vendure mapping, in-memory store):
what Vendure has no place for (contract, group, other-currency, quantity-break prices) is one
dead letter per target with its reason, never dropped in silence, and the base prices go on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from erpsync.connectors.base import Raw
from erpsync.flows import pricing
from erpsync.state import StateStore
from tests.fixtures.clock import pricing_clock
from tests.unit.flow_doubles import FakeErp, FakeStorefront, make_ctx

ROWS = [
    {"item_code": "ITEM-1", "price_list": "LIST", "currency": "USD", "min_qty": 1, "price": "19.99"},
    {"item_code": "ITEM-2", "price_list": "LIST", "currency": "USD", "min_qty": 1, "price": "9.99"},
    {"item_code": "ITEM-1", "price_list": "WHOLESALE", "customer_group": "wholesale", "currency": "USD",
     "min_qty": 1, "price": "15.99"},
    {"item_code": "ITEM-1", "price_list": "WHOLESALE", "customer_group": "wholesale", "currency": "USD",
     "min_qty": 10, "price": "14.99"},
    {"item_code": "ITEM-1", "price_list": "CONTRACT-CUST-000021", "customer_no": "CUST-000021", "currency": "USD",
     "min_qty": 1, "price": "17.00"},
    {"item_code": "ITEM-1", "price_list": "LIST-EUR", "currency": "EUR", "min_qty": 1, "price": "18.39"},
    {"item_code": "ITEM-2", "price_list": "LIST", "currency": "USD", "min_qty": 10, "price": "8.99"},
]


class PricedErp(FakeErp):
    def list_prices(self, updated_since: Any = None) -> Iterator[Raw]:
        return iter([{**r, "modified_at": "2026-11-24T10:00:00Z"} for r in ROWS])


class VendureLike(FakeStorefront):
    """Vendure's shapes (money in minor units, one price per variant) behind the interface."""

    mapping = "erpsync.mappings.storefront_vendure"

    def __init__(self) -> None:
        super().__init__()
        self.prices = {"SKU-1": 1999, "SKU-2": 1000}
        self.writes: list[list[Raw]] = []

    def list_products(self, updated_since: Any = None) -> Iterator[Raw]:
        return iter([{"id": str(n), "slug": sku.lower(), "variants": [{"sku": sku, "price": cents}]}
                     for n, (sku, cents) in enumerate(self.prices.items(), 1)])

    def set_variant_prices(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        assert all(i["currency"] == "USD" for i in items)
        self.writes.append(items)
        self.prices.update({i["sku"]: i["price"] for i in items})
        return {"updated": len(items)}


@pytest.fixture
def store(tmp_path: Any) -> Iterator[StateStore]:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def test_unsupported_prices_are_one_dead_letter_per_target_and_base_prices_go_on(store: StateStore) -> None:
    erp, sf = PricedErp(), VendureLike()
    erp.add_item("SKU-1", "ITEM-1")
    erp.add_item("SKU-2", "ITEM-2")
    with pricing_clock("2026-11-24T12:00:00Z"):
        summary = pricing.run(make_ctx(store, "pricing_sync", erp, sf, "r1"))
    assert summary.done == 1 and summary.failed == 0, summary.render()
    assert sf.writes == [[{"sku": "SKU-2", "price": 999, "currency": "USD"}]]  # SKU-1 shows its price already
    assert summary.reasons["unsupported_target"] == 5  # rows skipped ...
    assert summary.reasons["unsupported_by_storefront"] == 4  # ... and one dead letter per target
    letters = {d.external_id: d for d in store.list_dead_letters(flow="pricing_sync")}
    assert set(letters) == {"customer-cust-000021-usd", "group-wholesale-usd", "currency-eur", "qty-10-usd"}
    assert {d.entity for d in letters.values()} == {"price_target"} and summary.quarantined == 4
    group = letters["group-wholesale-usd"]
    assert group.reason.startswith("unsupported_by_storefront: Vendure has no customer-group price lists")
    assert "2 price row(s) for group-wholesale-usd not published" in group.reason
    assert group.payload["rows"] == 2 and group.payload["example"]["price_list"] == "WHOLESALE"
    assert "no customer-specific price lists" in letters["customer-cust-000021-usd"].reason
    assert "shop currency USD only" in letters["currency-eur"].reason
    assert "no quantity-break prices" in letters["qty-10-usd"].reason

    # the next run files them again (one open letter each, its attempts counted) and writes nothing
    with pricing_clock("2026-11-24T13:00:00Z"):
        again = pricing.run(make_ctx(store, "pricing_sync", erp, sf, "r2"))
    assert again.done == 0 and len(sf.writes) == 1
    after = {d.external_id: d for d in store.list_dead_letters(flow="pricing_sync")}
    assert set(after) == set(letters) and after["group-wholesale-usd"].attempts == 2
