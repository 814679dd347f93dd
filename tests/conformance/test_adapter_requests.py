"""The requests the production Tryton and Vendure adapters send, checked against the vendors' own
rules (issue 18 item 4): a recording proxy (erpsync.sandbox.contract.proxy) sits between the
adapter and the real server of the conformance suite's pair, the adapter is built from the pair's
Connection as the flows build it (only the host points at the proxy), and it does what the flows
do: log in, read a listing page by page across page boundaries, write, lose its session and
recover, and have a write refused. Every exchange is checked against the rule book
(erpsync.sandbox.contract.tryton / .vendure, each rule citing its docs page) and the test names
the rules it meant to exercise, so a rule that never applied fails it instead of passing.

Each rule is shown to catch a request that breaks it in tests/unit/test_contract_rule_books.py.
The real pair is the conformance suite's (one per session: the servers start once).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from erpsync.connectors.registry import build_erp, build_storefront
from erpsync.connectors.tryton import TrytonErpAdapter
from erpsync.connectors.vendure import VendureStorefrontAdapter
from erpsync.errors import PermanentError
from erpsync.sandbox.contract import tryton as tryton_rules
from erpsync.sandbox.contract import vendure as vendure_rules
from erpsync.sandbox.contract.proxy import RecordingProxy
from tests.conformance.drivers import TrytonErpDriver, VendureStoreDriver, tag

pytestmark = pytest.mark.e2e

PAGE = 3  # small pages: every listing crosses page boundaries


def _connection(pair: Any, name: str) -> dict[str, Any]:
    return pair.connections()[name]


# --------------------------------------------------------------------------- Tryton


@pytest.fixture(scope="module")
def tryton_setup(conformance_pair: Any) -> Iterator[tuple[dict[str, Any], TrytonErpDriver]]:
    """The Connection, and a driver over an adapter talking to Tryton directly (the test's own
    set-up goes around the proxy: only what the production adapter sends is checked)."""
    c = _connection(conformance_pair, "erp_default")
    direct = build_erp(c["extra"]["adapter"], c["host"], c["login"], c["password"], {**c["extra"], "page_size": PAGE})
    assert isinstance(direct, TrytonErpAdapter)
    yield c, TrytonErpDriver(direct)
    direct.http.close()


def test_tryton_adapter_requests_keep_trytons_rules(tryton_setup: tuple[dict[str, Any], TrytonErpDriver]) -> None:
    c, setup = tryton_setup
    url = urlsplit(c["host"])
    database = url.path.strip("/")
    customer_no, item = setup.new_customer(), setup.item_code("2.50")
    while sum(1 for _ in setup.adapter.list_items()) <= PAGE:  # the listing must cross a page boundary
        setup.item_code("1.00")

    book = tryton_rules.rule_book(database=database)
    with RecordingProxy(f"{url.scheme}://{url.netloc}", book) as proxy:
        adapter = build_erp(c["extra"]["adapter"], f"{proxy.url}/{database}", c["login"], c["password"],
                            {**c["extra"], "page_size": PAGE})
        assert isinstance(adapter, TrytonErpAdapter)
        driver = TrytonErpDriver(adapter)
        try:
            adapter.ping()  # common.db.login, then the user's preferences
            items = list(adapter.list_items())
            assert len(items) > PAGE and len({i["id"] for i in items}) == len(items)
            ref = f"req-{tag()}"
            sale = adapter.create_sales_order(driver.order(ref, item, customer_no, "2.50", 2),
                                              idempotency_key=f"order:{ref}")
            assert sale["reference"] == ref

            logins = _count(proxy, lambda b: b.get("method") == "common.db.login")
            driver.expire_session()  # common.db.logout: Tryton forgets the session
            assert adapter.find_sales_order(ref) is not None  # 401, logged in again, answered
            assert _count(proxy, lambda b: b.get("method") == "common.db.login") == logins + 1

            call, words = driver.refusal()
            with pytest.raises(PermanentError, match=words):
                call()
        finally:
            adapter.http.close()

    proxy.recorder.assert_clean(exercised=[r.id for r in book])  # every Tryton rule applied, none broken


class _UnorderedPages(TrytonErpAdapter):
    """A deliberately broken adapter: pages without an order (Tryton may then return the pages'
    rows in any sequence, so a record can be read twice or never)."""

    def search_read(self, model: str, domain: list[Any], fields: list[str], *, order: list[Any] | None = None,
                    limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        return super().search_read(model, domain, fields, order=None, limit=limit, offset=offset)


def test_a_tryton_adapter_paging_without_an_order_breaks_the_rule(
        tryton_setup: tuple[dict[str, Any], TrytonErpDriver]) -> None:
    c, setup = tryton_setup
    url = urlsplit(c["host"])
    database = url.path.strip("/")
    while sum(1 for _ in setup.adapter.list_items()) <= PAGE:  # a second page, whatever ran before
        setup.item_code("1.00")
    with RecordingProxy(f"{url.scheme}://{url.netloc}", tryton_rules.rule_book(database=database)) as proxy:
        broken = _UnorderedPages(f"{proxy.url}/{database}", c["login"], c["password"], page_size=PAGE)
        try:
            list(broken.list_items())
        finally:
            broken.http.close()
    with pytest.raises(AssertionError, match=r"tryton\.search\.paging: page at offset 3 of product\.product"):
        proxy.recorder.assert_clean()


# --------------------------------------------------------------------------- Vendure


@pytest.fixture(scope="module")
def vendure_setup(conformance_pair: Any) -> Iterator[tuple[dict[str, Any], VendureStoreDriver]]:
    c = _connection(conformance_pair, "storefront_default")
    direct = build_storefront(c["extra"]["adapter"], c["host"], c["password"], {**c["extra"], "page_size": PAGE})
    assert isinstance(direct, VendureStorefrontAdapter)
    yield c, VendureStoreDriver(direct)
    direct.http.close()


def _count(proxy: RecordingProxy, match: Any) -> int:
    return sum(1 for e in proxy.recorder.exchanges if isinstance(e.body, dict) and match(e.body))


def _error_result_mutations(adapter: VendureStorefrontAdapter) -> set[str]:
    """The Admin API mutations whose result is a union with ErrorResult members, read off the
    running server's schema."""
    ref = "kind name ofType { kind name ofType { kind name } }"
    fields = adapter.gql(f"{{ __type(name: \"Mutation\") {{ fields {{ name type {{ {ref} }} }} }} }}")["__type"]["fields"]
    out = set()
    unions: dict[str, bool] = {}
    for f in fields:
        t = f["type"]
        while t.get("ofType") and t["kind"] in ("NON_NULL", "LIST"):
            t = t["ofType"]
        if t["kind"] != "UNION":
            continue
        if t["name"] not in unions:
            members = adapter.gql("query($n:String!){ __type(name: $n) { possibleTypes { name interfaces { name } } } }",
                                  n=t["name"])["__type"]["possibleTypes"]
            unions[t["name"]] = any(i["name"] == "ErrorResult" for m in members for i in m["interfaces"] or [])
        if unions[t["name"]]:
            out.add(f["name"])
    return out


def test_vendure_adapter_requests_keep_vendures_rules(vendure_setup: tuple[dict[str, Any], VendureStoreDriver]) -> None:
    c, setup = vendure_setup
    while sum(1 for _ in setup.adapter.list_customers()) <= PAGE:  # the listing must cross a page boundary
        setup.insert()
    refused, words = _refusal_through(setup)  # its product and order are made around the proxy

    # the Connection names its channel (extra channel_token): the default channel's own token, so
    # the channel rule applies while the records stay where the rest of the suite reads them
    channel = str(setup.adapter.gql("{ activeChannel { token } }")["activeChannel"]["token"])
    book = vendure_rules.rule_book(channel_token=channel)
    with RecordingProxy(c["host"], book) as proxy:
        adapter = build_storefront(c["extra"]["adapter"], proxy.url, c["password"],
                                   {**c["extra"], "page_size": PAGE, "channel_token": channel})
        assert isinstance(adapter, VendureStorefrontAdapter)
        driver = VendureStoreDriver(adapter)
        try:
            adapter.ping()  # login, then activeAdministrator
            customers = list(adapter.list_customers(updated_since=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)))
            assert len(customers) > PAGE and len({x["id"] for x in customers}) == len(customers)
            sku = f"REQ-{tag()}".upper()
            driver.upsert(sku)  # createProduct, createProductVariants
            assert adapter.set_variant_prices([{"sku": sku, "price": 725, "currency": adapter.channel_currency()}],
                                              idempotency_key=f"price:{sku}") == {"updated": 1}

            logins = _count(proxy, lambda b: "login(" in str(b.get("query")))
            driver.expire_session()  # logout: Vendure forgets the token
            assert adapter.find_variants([sku])[sku]["price"] == 725  # FORBIDDEN, logged in again, answered
            assert _count(proxy, lambda b: "login(" in str(b.get("query"))) == logins + 1

            with pytest.raises(PermanentError, match=words):
                refused(adapter)  # addFulfillmentToOrder answered with an ErrorResult
        finally:
            adapter.http.close()

    rec = proxy.recorder
    rec.assert_clean(exercised=[r.id for r in book])  # every Vendure rule applied, none broken
    # the refusal came back as an ErrorResult (not in 'errors') and the rule saw its words
    assert any(isinstance(e.answer, dict) and "errorCode" in str(e.answer) for e in rec.exchanges)

    # the rule book's list of ErrorResult mutations is the server's: each one listed is such a union,
    # and every such mutation the adapter sent is listed (else its refusals would go unchecked)
    unions = _error_result_mutations(setup.adapter)
    assert not vendure_rules.ERROR_RESULT_MUTATIONS - unions, vendure_rules.ERROR_RESULT_MUTATIONS - unions
    sent = {name for e in rec.exchanges if (doc := vendure_rules.document(e)) and vendure_rules.operation(doc) == "mutation"
            for _, name, _ in vendure_rules.root_fields(doc)}
    assert not (sent & unions) - vendure_rules.ERROR_RESULT_MUTATIONS, (sent & unions) - vendure_rules.ERROR_RESULT_MUTATIONS


def _refusal_through(setup: VendureStoreDriver) -> tuple[Any, str]:
    """The conformance driver's refusal (a fulfilment of more than was ordered): its product and
    order made by ``setup``, the refused call made by the adapter it is given."""
    sku = f"CONF-{tag()}".upper()
    setup.product(sku, "3.00")
    order = setup.place_order(sku)
    payload = {"lines": [{"sku": sku, "quantity": 5}], "tracking_code": f"T{tag()}", "carrier": "UPS"}
    return (lambda adapter: adapter.add_fulfillment(str(order["code"]), payload, idempotency_key=f"conf:{tag()}"),
            "Vendure refused the fulfilment")
