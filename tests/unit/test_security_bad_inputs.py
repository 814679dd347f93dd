"""A corpus of bad inputs through every record flow: each bad record is quarantined with its
reason, nothing crashes, nothing goes missing, and injection strings are stored as plain data.

The storefront double hands the records over as they are (no filtering), like an API that serves
whatever it holds; the quality gate is set to quarantine only (never to fail the batch) so that
every record reaches the flow's own checks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flow_doubles import FakeErp, FakeStorefront, make_ctx
from test_flows_customers import sf_customer
from test_flows_orders import sf_order

from erpsync.flows import customers, orders
from erpsync.state import StateStore
from erpsync.state.schema import metadata

INJECTIONS = ["'; DROP TABLE xref; --", "\" OR 1=1 --", "<script>alert(1)</script>", "${jndi:ldap://x/a}",
              "Robert'); DELETE FROM dead_letters;--"]
HUGE = "A" * 1_000_000


class RawStorefront(FakeStorefront):
    """Serves the corpus exactly as given: strings, None, records without ids or dates."""

    def __init__(self, customers: list[Any] | None = None, orders: list[Any] | None = None,
                 known: list[dict] | None = None) -> None:
        super().__init__(known or [], [])
        self.raw_customers = customers or []
        self.raw_orders = orders or []

    def list_customers(self, updated_since: Any = None) -> Iterator[Any]:
        return iter(copy.deepcopy(self.raw_customers))

    def list_orders(self, updated_since: Any = None, updated_before: Any = None) -> Iterator[Any]:
        return iter(copy.deepcopy(self.raw_orders))


def _without(rec: dict, *keys: str) -> dict:
    return {k: v for k, v in rec.items() if k not in keys}


def customer_corpus() -> list[tuple[str, Any, bool]]:
    """(label, raw record, must be quarantined)"""
    c = sf_customer
    return [
        ("malformed json", '{"id": "C9", "email": ', True),
        ("null record", None, True),
        ("a list", [1, 2], True),
        ("missing id", _without(c(1), "id"), True),
        ("missing email", _without(c(2), "email"), True),
        ("email of the wrong type", c(3, email=12345), True),
        ("addresses as a string", c(4, addresses="Main Street 1"), True),
        ("unknown country", c(5, addresses=[{**c(5)["addresses"][0], "country_code": "Atlantis"}]), True),
        ("huge name", c(6, first_name=HUGE), True),
        ("injection in the email", c(7, email=INJECTIONS[0]), True),
        ("duplicate keys (last wins)", json.loads('{"id": "C100008", "id": "C100008", "email": "x"}'), True),
        ("injection in the name (valid data)", c(9, last_name=INJECTIONS[4]), False),
        ("script in the company (valid data)", c(10, company=INJECTIONS[2]), False),
    ]


def order_corpus() -> list[tuple[str, Any, bool]]:
    cust = sf_customer(20)
    o = lambda n, **kw: sf_order(n, customer=cust, **kw)  # noqa: E731
    line = o(0)["line_items"][0]
    return [
        ("malformed json", '{"id": "O1", "line_items": [', True),
        ("null record", None, True),
        ("a number", 42, True),
        ("missing id", _without(o(1), "id"), True),
        ("missing line items", _without(o(2), "line_items"), True),
        ("quantity of the wrong type", o(3, line_items=[{**line, "quantity": "two"}]), True),
        ("negative quantity", o(4, line_items=[{**line, "quantity": -3}]), True),
        ("price with a comma", o(5, line_items=[{**line, "price": "12,50"}]), True),
        ("price as a float", o(6, total_price=31.85), True),
        ("unknown currency", o(7, currency="XXX"), True),
        ("huge sku", o(8, line_items=[{**line, "sku": HUGE}]), True),
        ("injection as sku", o(9, line_items=[{**line, "sku": INJECTIONS[0]}]), True),
        ("injection as the id (an odd but valid id)", o(10, id=INJECTIONS[1]), False),
        ("date that is no date", o(11, created_at="yesterday"), True),
        ("duplicate order id in the batch", o(12), False),
        ("duplicate order id in the batch (again)", o(12), False),
    ]


@pytest.fixture
def store(tmp_path) -> StateStore:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def _check(store: StateStore, flow: str, summary: Any, corpus: list[tuple[str, Any, bool]]) -> None:
    accounted = summary.done + summary.skipped + summary.quarantined + summary.queued
    assert accounted >= len(corpus), f"records went missing: {summary.to_dict()}"
    dead = store.list_dead_letters(flow=flow, limit=10_000)
    assert all(d.reason.strip() for d in dead)
    for label, raw, bad in corpus:
        rid = raw.get("id") if isinstance(raw, dict) else None
        if bad and isinstance(rid, str):
            assert any(d.external_id == rid for d in dead), f"{label}: {rid} was not quarantined"
    assert summary.quarantined >= sum(1 for _, _, bad in corpus if bad)
    # every table is still there and the injection strings did nothing
    names = set(sa.inspect(store.engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= names


PARAMS = {"quality_max_bad_share": 1.0, "quality_min_batch": 1}


def test_customers_corpus(store: StateStore) -> None:
    corpus = customer_corpus()
    erp = FakeErp()
    summary = customers.run(make_ctx(store, "customers_sync", erp, RawStorefront(customers=[r for _, r, _ in corpus]),
                                     **PARAMS))
    _check(store, "customers_sync", summary, corpus)
    names = {c.get("name") for c in erp.customers.values()}
    assert any(INJECTIONS[4] in (n or "") for n in names)  # stored verbatim, as data


def test_orders_corpus(store: StateStore) -> None:
    corpus = order_corpus()
    erp = FakeErp()
    erp.add_item("SKU-000001", "ITEM-000001")
    erp.add_item("SKU-000002", "ITEM-000002")
    sf = RawStorefront(orders=[r for _, r, _ in corpus], known=[sf_customer(20)])
    summary = orders.run(make_ctx(store, "orders_sync", erp, sf, **PARAMS))
    _check(store, "orders_sync", summary, corpus)
    assert len({o.get("external_ref") for o in erp.orders.values()}) == len(erp.orders)  # none twice
    assert store.get_xref("erp", "sales_order", INJECTIONS[1]) is not None  # bound verbatim: SQL is parameterised
