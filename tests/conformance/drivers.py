"""Drivers of the conformance suite: per connector, its adapter and what a person or the test
server does on the other end (add a record, invalidate a session, answer 429), so one set of
checks (``checks.py``) runs over every connector.

A new connector adds a driver here (a subclass of :class:`ErpDriver` or :class:`StoreDriver`)
and a ``pytest.param`` in ``conftest.py``; everything it drives goes through the adapter and its
mapping as the flows use them. What the test server cannot do (no sessions to expire, no 429s)
is said by the connector's capability matrix and the check is skipped naming that capability.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from erpsync.connectors.capabilities import Capabilities, capabilities_of
from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.model import Customer, Order, OrderLine

Raw = dict[str, Any]
_n = itertools.count(1)


def tag() -> str:
    """A unique suffix: the suite's records never collide with each other or the seed."""
    return f"{uuid.uuid4().hex[:6]}{next(_n)}"


@contextlib.contextmanager
def lose_answer(adapter: Any, match: Callable[[str, str, Any], bool]) -> Iterator[list[int]]:
    """The commit-then-timeout fault on any server: the first request ``match``-ing (method, url,
    json) reaches the server and is processed, then its answer is dropped (a read timeout)."""
    session = adapter.http.session
    real = session.request
    lost: list[int] = []

    def request(method: str, url: str, **kw: Any) -> Any:
        resp = real(method, url, **kw)
        if not lost and match(method, url, kw.get("json")):
            lost.append(resp.status_code)
            raise requests.exceptions.ReadTimeout("answer lost on the way back (conformance suite)")
        return resp

    session.request = request
    try:
        yield lost
    finally:
        del session.request


class Driver:
    label: str = ""
    side: str = ""
    #: the finest step of the times the system shows (the sandbox's wire format is whole seconds)
    resolution: dt.timedelta = dt.timedelta(milliseconds=1)

    def __init__(self, adapter: Any) -> None:
        self.adapter = adapter

    @property
    def caps(self) -> Capabilities:
        return capabilities_of(self.adapter)

    # paging ---------------------------------------------------------------------------------
    #: the listing the paging check reads (page size 3 is set by the fixture)
    def records(self) -> Iterator[Raw]:
        raise NotImplementedError

    def key(self, raw: Raw) -> str:
        raise NotImplementedError

    def insert(self) -> str:
        """Add one record of the paged listing on the server; its key."""
        raise NotImplementedError

    def touch(self, read: list[Raw]) -> str:
        """Change one of the records ``read`` (of the paged listing) on the server, as a person or
        the shop would mid-run, so its change time moves to now; its key."""
        raise NotImplementedError

    # sessions and throttling ------------------------------------------------------------------
    def expire_session(self) -> None:
        """Invalidate the adapter's session or token on the server (not in the adapter)."""
        raise NotImplementedError

    def throttle_once(self, retry_after: float) -> None:
        """Make the server answer the next request 429 with ``Retry-After``."""
        raise NotImplementedError

    def throttled(self) -> int:
        """How many 429s the server has answered."""
        raise NotImplementedError

    # refusals ------------------------------------------------------------------------------------
    def refusal(self) -> tuple[Callable[[], Any], str]:
        """A call through the adapter that the system refuses, and the system's own words for it."""
        raise NotImplementedError


# ----------------------------------------------------------------------------------------- ERPs


class ErpDriver(Driver):
    side = "erp"

    @property
    def mapping(self) -> Any:
        return erp_mapping(self.adapter)

    #: the fields of a sales order that hold its last change, first one set wins
    changed_fields: tuple[str, ...] = ()
    #: (customer number, item code) the paged sales orders are booked for, made on first use
    _booking: tuple[str, str] | None = None

    def records(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        """The ERP listing the suite pages through: sales orders, as orders_reconciliation reads
        them (no flow lists the ERP's customers: the adapter finds, creates and updates them)."""
        if not self.caps.has("sales_order_listing"):
            pytest.skip(f"{self.label} lacks capability sales_order_listing (the ERP listing the suite pages)")
        return self.adapter.list_sales_orders(updated_since=updated_since)

    def key(self, raw: Raw) -> str:
        return str(self.mapping.sales_order_summary(raw)["order_no"])

    def customer(self) -> Customer:
        t = tag()
        return Customer(external_id=f"conf-{t}", email=f"conf.{t}@example.com", first_name="Con", last_name=f"Form{t}")

    def new_customer(self) -> str:
        """A customer made through the adapter and its mapping, as customers_sync does; its number."""
        c = self.customer()
        raw = self.adapter.create_customer(self.mapping.customer_to_erp(c), idempotency_key=f"conf:{c.external_id}")
        return str(self.mapping.customer_no(raw))

    def insert(self) -> str:
        """A booked sales order of one line, as orders_sync writes it; its number."""
        if self._booking is None:
            self._booking = (self.new_customer(), self.item_code("2.50"))
        customer_no, item = self._booking
        ref = f"conf-page-{tag()}"
        raw = self.adapter.create_sales_order(self.order(ref, item, customer_no, "2.50", 1),
                                              idempotency_key=f"order:{ref}")
        return self.key(raw)

    def updated_at(self, raw: Raw) -> dt.datetime:
        """The sales order's last change as the ERP shows it (the time an ``updated_since`` compares)."""
        text = next((str(raw[f]) for f in self.changed_fields if raw.get(f)), None)
        assert text is not None, f"{self.label}: no {' or '.join(self.changed_fields)} on {raw}"
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert when.tzinfo is not None, f"{self.label}: {text} has no time zone"
        return when

    def item_code(self, price: str) -> str:
        """An item the ERP sells (created when the ERP lets the suite create items)."""
        raise NotImplementedError

    def order(self, ref: str, item_code: str, customer_no: str, unit_price: str, qty: int) -> Raw:
        line = OrderLine(line_id="1", sku=item_code, quantity=qty, unit_price=Decimal(unit_price), item_code=item_code)
        o = Order(external_id=ref, number=f"#{ref}", customer_external_id=None, customer_email="conf@example.com",
                  currency="USD", placed_at=dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC), lines=[line],
                  total=Decimal(unit_price) * qty)
        return self.mapping.order_to_erp(o, customer_no)

    def is_order_create(self, method: str, url: str, body: Any) -> bool:
        raise NotImplementedError

    def lines(self, raw: Raw) -> list[tuple[Decimal, Decimal]]:
        """(unit price, quantity) of each goods line of a sales order as the ERP holds it."""
        raise NotImplementedError


class SandboxErpDriver(ErpDriver):
    label = "erp:sandbox"
    resolution = dt.timedelta(seconds=1)
    changed_fields = ("modified_at",)

    def __init__(self, adapter: Any, sandbox: Any) -> None:
        super().__init__(adapter)
        self.sandbox = sandbox

    def item_code(self, price: str) -> str:
        raw = self.adapter.find_item_by_sku("SKU-000002")
        return str(self.mapping.item_code(raw))

    def is_order_create(self, method: str, url: str, body: Any) -> bool:
        return method == "POST" and url.endswith("/api/sales-orders")

    def touch(self, read: list[Raw]) -> str:
        """The warehouse ships an open sales order read (its ``modified_at`` moves to now)."""
        order = next((r for r in read if r.get("status") in ("open", "partially_shipped")), None)
        assert order is not None, f"{self.label}: no open sales order among {[self.key(r) for r in read]} to ship"
        self.sandbox.admin("erp", "POST", "ship", {"order_no": order["order_no"]})
        return self.key(order)

    def lines(self, raw: Raw) -> list[tuple[Decimal, Decimal]]:
        return [(Decimal(str(ln["unit_price"])), Decimal(str(ln["qty"]))) for ln in raw["lines"]]

    def expire_session(self) -> None:
        sid = self.adapter._session_id or self.adapter.login()
        requests.delete(f"{self.sandbox.erp_url}/api/session", headers={"X-Session-Id": sid}, timeout=5)

    def throttle_once(self, retry_after: float) -> None:
        self.sandbox.set_faults("erp", rate_limit={"rate": 1.0, "retry_after": retry_after}, max_faults=1)

    def throttled(self) -> int:
        return int(self.sandbox.admin("erp", "GET", "faults")["injected"].get("rate_limit", 0))

    def refusal(self) -> tuple[Callable[[], Any], str]:
        no = self.new_customer()
        payload = {**self.order(f"conf-{tag()}", self.item_code("1.00"), no, "1.00", 1), "currency": "XYZ"}
        return (lambda: self.adapter.create_sales_order(payload, idempotency_key=f"conf:{tag()}"),
                "unknown currency 'XYZ'")


class TrytonErpDriver(ErpDriver):
    label = "erp:tryton"
    changed_fields = ("write_date", "create_date")

    def item_code(self, price: str) -> str:
        from tests.drivers import tryton

        code = f"CONF-{tag()}".upper()
        tryton.create_item(self.adapter, {"code": code, "name": f"Conformance {code}", "list_price": price,
                                          "cost_price": "1.00"})
        tryton.set_stock(self.adapter, {code: 100})
        return code

    def is_order_create(self, method: str, url: str, body: Any) -> bool:
        return isinstance(body, dict) and body.get("method") == "model.sale.sale.create"

    def touch(self, read: list[Raw]) -> str:
        """A clerk writes a comment on the first sale read (its ``write_date`` moves to now)."""
        sale = read[0]
        self.adapter.model("sale.sale", "write", [sale["id"]], {"comment": f"touched {tag()}"}, write=True)
        return self.key(sale)

    def lines(self, raw: Raw) -> list[tuple[Decimal, Decimal]]:
        return [(Decimal(str(ln["unit_price"])), Decimal(str(ln["quantity"])))
                for ln in raw["lines"] if ln.get("type", "line") == "line"]

    def expire_session(self) -> None:
        if self.adapter._auth is None:
            self.adapter.login()
        self.adapter._post("common.db.logout", [], auth=self.adapter._auth)  # Tryton drops the session

    def refusal(self) -> tuple[Callable[[], Any], str]:
        no = self.new_customer()
        payload = self.order(f"conf-{tag()}", self.item_code("1.00"), no, "1.00", 1)
        payload["lines"][0]["unit_price"] = "1.123456789"  # more digits than Tryton's unit price holds
        return (lambda: self.adapter.create_sales_order(payload, idempotency_key=f"conf:{tag()}"),
                "UserError: The number of digits in the value")


# ---------------------------------------------------------------------------------- storefronts


class StoreDriver(Driver):
    side = "storefront"

    @property
    def mapping(self) -> Any:
        return storefront_mapping(self.adapter)

    def order_updated_at(self, raw: Raw) -> dt.datetime:
        when = self.mapping.order_from_storefront(raw).updated_at
        assert when is not None, raw
        return when

    def order_key(self, raw: Raw) -> str:
        return str(self.mapping.order_id(raw))

    def product(self, sku: str, price: str) -> None:
        """A product with one variant ``sku`` (as catalog_sync would publish it)."""
        raise NotImplementedError

    def upsert(self, sku: str) -> Raw:
        raise NotImplementedError

    def count_sku(self, sku: str) -> int:
        return sum(1 for p in self.adapter.list_products() for v in p.get("variants") or [] if v.get("sku") == sku)

    def is_product_create(self, method: str, url: str, body: Any) -> bool:
        raise NotImplementedError

    def location(self) -> str:
        locations = self.adapter.list_locations()
        assert locations, "the store lists no location"
        return str(locations[0])


class SandboxStoreDriver(StoreDriver):
    label = "storefront:sandbox"
    resolution = dt.timedelta(seconds=1)

    def __init__(self, adapter: Any, sandbox: Any) -> None:
        super().__init__(adapter)
        self.sandbox = sandbox

    def records(self) -> Iterator[Raw]:
        return self.adapter.list_orders()

    def key(self, raw: Raw) -> str:
        return self.order_key(raw)

    def insert(self) -> str:
        resp = requests.post(f"{self.sandbox.storefront_url}/admin/api/orders",
                             headers={"Authorization": f"Bearer {self.sandbox.token}"},
                             json={"email": f"conf.{tag()}@example.com", "first_name": "Con", "last_name": "Form",
                                   "line_items": [{"sku": "SKU-000003", "quantity": 1}]}, timeout=10)
        resp.raise_for_status()
        return self.order_key(resp.json())

    def touch(self, read: list[Raw]) -> str:
        """The merchant cancels the first order read (its ``updated_at`` moves to now)."""
        key = self.order_key(read[0])
        requests.post(f"{self.sandbox.storefront_url}/admin/api/orders/{key}/cancel",
                      headers={"Authorization": f"Bearer {self.sandbox.token}"}, timeout=10).raise_for_status()
        return key

    def upsert(self, sku: str) -> Raw:
        return self.adapter.upsert_product(
            {"handle": sku.lower(), "title": f"Conformance {sku}", "status": "active",
             "variants": [{"sku": sku, "title": sku, "price": "5.00"}]}, idempotency_key=f"conf:{sku}")

    def is_product_create(self, method: str, url: str, body: Any) -> bool:
        return method == "POST" and url.endswith("/admin/api/products")

    def product(self, sku: str, price: str) -> None:
        self.upsert(sku)

    def throttle_once(self, retry_after: float) -> None:
        self.sandbox.set_faults("storefront", rate_limit={"rate": 1.0, "retry_after": retry_after}, max_faults=1)

    def throttled(self) -> int:
        return int(self.sandbox.admin("storefront", "GET", "faults")["injected"].get("rate_limit", 0))

    def refusal(self) -> tuple[Callable[[], Any], str]:
        missing = f"O9{tag()}"
        return (lambda: self.adapter.add_fulfillment(missing, {"lines": [], "tracking_number": "T1"},
                                                     idempotency_key=f"conf:{tag()}"),
                f"no order {missing}")


class VendureStoreDriver(StoreDriver):
    label = "storefront:vendure"

    def __init__(self, adapter: Any, database: str | None = None) -> None:
        super().__init__(adapter)
        #: Vendure's PostgreSQL database (the tie check sets change times there: no API does)
        self.database = database

    def records(self) -> Iterator[Raw]:
        return self.adapter.list_customers()

    def key(self, raw: Raw) -> str:
        return str(raw["id"])

    def insert(self) -> str:
        from tests.e2e import shop

        t = tag()
        return str(shop.add_customer(self.adapter, f"conf.{t}@example.com", "Con", f"Form{t}")["id"])

    def touch(self, read: list[Raw]) -> str:
        """The merchant edits the first customer read (its ``updatedAt`` moves to now)."""
        key = self.key(read[0])
        res = self.adapter.gql("mutation($i:UpdateCustomerInput!){updateCustomer(input:$i){__typename "
                               "... on ErrorResult{message}}}", write=True,
                               i={"id": key, "lastName": f"Touched{tag()}"})["updateCustomer"]
        assert res["__typename"] == "Customer", res
        return key

    def same_change_time(self, keys: list[str]) -> None:
        """Give these customers one ``updatedAt`` (as one transaction writing them all would):
        straight in Vendure's database, a whole millisecond (the API shows milliseconds)."""
        import psycopg

        from tests.e2e.conftest import realsys

        assert self.database, "the Vendure driver was made without its database"
        with psycopg.connect(host=realsys.PG_HOST, port=realsys.PG_PORT, user=realsys.PG_USER,
                             password=realsys.PG_PASSWORD or None, dbname=self.database, autocommit=True) as conn:
            conn.execute('UPDATE customer SET "updatedAt" = date_trunc(\'milliseconds\', now()) '
                         "WHERE id = ANY(%s)", ([int(k) for k in keys],))

    def upsert(self, sku: str) -> Raw:
        return self.adapter.upsert_product(
            {"name": f"Conformance {sku}", "slug": sku.lower(),
             "variants": [{"sku": sku, "name": sku, "price": 500, "stock_on_hand": 10}]}, idempotency_key=f"conf:{sku}")

    def product(self, sku: str, price: str) -> None:
        from tests.e2e import shop

        shop.add_store_product(self.adapter, sku, f"Conformance {sku}", price, stock=20)

    def is_product_create(self, method: str, url: str, body: Any) -> bool:
        return isinstance(body, dict) and "createProduct(" in str(body.get("query", ""))

    def place_order(self, sku: str) -> Raw:
        from tests.e2e import shop

        return shop.place_order(self.adapter, f"conf.{tag()}@example.com", {sku: 1})

    def expire_session(self) -> None:
        self.adapter.gql("mutation{logout{success}}", write=True)  # Vendure forgets the token

    def refusal(self) -> tuple[Callable[[], Any], str]:
        sku = f"CONF-{tag()}".upper()
        self.product(sku, "3.00")
        order = self.place_order(sku)
        payload = {"lines": [{"sku": sku, "quantity": 5}], "tracking_code": f"T{tag()}", "carrier": "UPS"}
        return (lambda: self.adapter.add_fulfillment(str(order["code"]), payload, idempotency_key=f"conf:{tag()}"),
                "Vendure refused the fulfilment")
