"""In-memory doubles of the EXTERNAL systems (an ERP and a storefront) for flow unit tests.

They stand in for the remote APIs behind the adapter interfaces, with just enough behaviour
(search, idempotent replay, commit-then-timeout) to exercise the flows; our own code (state
store, mappings, rules, flows) is always the real one.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from erpsync.connectors.base import ErpAdapter, Raw, StorefrontAdapter
from erpsync.errors import PermanentError, TransientError, UnknownOutcomeError


def _t(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeErp(ErpAdapter):
    """An ERP keeping customers, items and sales orders in dicts.

    ``commit_then_timeout(op)`` makes the next write of ``op`` commit and then raise
    UnknownOutcomeError, like a server that commits and whose answer is lost.
    ``fail(op, exc)`` makes the next call of ``op`` raise ``exc`` without committing.
    """

    def __init__(self) -> None:
        self.customers: dict[str, Raw] = {}
        self.items: dict[str, Raw] = {}  # by sku
        self.orders: dict[str, Raw] = {}
        self.calls: Counter[str] = Counter()
        self._faults: dict[str, list[Callable[[], None] | str]] = {}
        self._seq = 0

    # --- test controls
    def add_item(self, sku: str, item_code: str) -> None:
        self.items[sku] = {"item_code": item_code, "sku": sku, "active": True}

    def add_customer(self, **fields: Any) -> Raw:
        self._seq += 1
        rec = {"customer_no": f"CUST-{self._seq:06d}", "external_ref": None, "addresses": [], **fields}
        self.customers[rec["customer_no"]] = rec
        return rec

    def commit_then_timeout(self, op: str, times: int = 1) -> None:
        self._faults.setdefault(op, []).extend(["ctt"] * times)

    def fail(self, op: str, exc: Exception, times: int = 1) -> None:
        def boom() -> None:
            raise exc

        self._faults.setdefault(op, []).extend([boom] * times)

    def _fault(self, op: str) -> str | None:
        self.calls[op] += 1
        queue = self._faults.get(op)
        if not queue:
            return None
        f = queue.pop(0)
        if callable(f):
            f()
        return f if isinstance(f, str) else None

    def orders_by_ref(self, ref: str) -> list[Raw]:
        return [o for o in self.orders.values() if o.get("external_ref") == ref]

    # --- ErpAdapter
    def ping(self) -> None:
        return None

    def find_customers(
        self, *, email: str | None = None, name: str | None = None, postcode: str | None = None
    ) -> list[Raw]:
        self._fault("find_customers")
        out = []
        for c in self.customers.values():
            if email and (c.get("email") or "").strip().lower() != email.strip().lower():
                continue
            if name and name.lower() not in (c.get("name") or "").lower():
                continue
            if postcode and postcode.replace(" ", "").upper() not in {
                (a.get("postal_code") or "").replace(" ", "").upper() for a in c.get("addresses", [])
            }:
                continue
            out.append(copy.deepcopy(c))
        return out

    def create_customer(self, payload: Raw, *, idempotency_key: str) -> Raw:
        fault = self._fault("create_customer")
        if not payload.get("name"):
            raise PermanentError("name is required", system="erp", status=422)
        rec = self.add_customer(**copy.deepcopy(payload))
        if fault == "ctt":
            raise UnknownOutcomeError("read timeout after commit", system="erp")
        return copy.deepcopy(rec)

    def update_customer(self, erp_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        fault = self._fault("update_customer")
        self.customers[erp_id].update(copy.deepcopy(payload))
        if fault == "ctt":
            raise UnknownOutcomeError("read timeout after commit", system="erp")
        return copy.deepcopy(self.customers[erp_id])

    def list_items(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return iter(list(self.items.values()))

    def find_item_by_sku(self, sku: str) -> Raw | None:
        self._fault("find_item_by_sku")
        return copy.deepcopy(self.items.get(sku))

    def list_stock(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return iter([])

    def list_prices(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return iter([])

    def find_sales_order(self, external_ref: str) -> Raw | None:
        self._fault("find_sales_order")
        found = self.orders_by_ref(external_ref)
        return copy.deepcopy(found[0]) if found else None

    def create_sales_order(self, payload: Raw, *, idempotency_key: str) -> Raw:
        fault = self._fault("create_sales_order")
        if payload["customer_no"] not in self.customers:
            raise PermanentError(f"no customer {payload['customer_no']}", system="erp", status=422)
        order_no = f"SO-{len(self.orders) + 1:06d}"
        rec = {"order_no": order_no, "status": "open", **copy.deepcopy(payload)}
        self.orders[order_no] = rec
        if fault == "ctt":
            raise UnknownOutcomeError("read timeout after commit", system="erp")
        return copy.deepcopy(rec)

    def list_shipments(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        return iter([])


class FakeStorefront(StorefrontAdapter):
    """A storefront serving customers and orders from lists, filtered by ``updated_at``."""

    def __init__(self, customers: list[Raw] | None = None, orders: list[Raw] | None = None) -> None:
        self.customers = {c["id"]: c for c in customers or []}
        self.orders = {o["id"]: o for o in orders or []}
        self.fail_listing: Exception | None = None
        self.listed_since: list[dt.datetime | None] = []

    def ping(self) -> None:
        return None

    def _filter(
        self, records: list[Raw], since: dt.datetime | None, before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        self.listed_since.append(since)
        for r in sorted(records, key=lambda r: r["updated_at"]):
            at = _t(r["updated_at"])
            if (since is None or at >= since) and (before is None or at < before):
                yield copy.deepcopy(r)
        if self.fail_listing is not None:
            raise self.fail_listing

    def list_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._filter(list(self.customers.values()), updated_since)

    def get_customer(self, customer_id: str) -> Raw | None:
        c = self.customers.get(customer_id)
        return copy.deepcopy(c) if c else None

    def list_orders(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        return self._filter(list(self.orders.values()), updated_since, updated_before)

    def get_order(self, order_id: str) -> Raw | None:
        o = self.orders.get(order_id)
        return copy.deepcopy(o) if o else None

    def list_products(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return iter([])

    def upsert_product(self, payload: Raw, *, idempotency_key: str) -> Raw:
        raise NotImplementedError

    def list_inventory(self) -> Iterator[Raw]:
        return iter([])

    def set_inventory(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        raise NotImplementedError

    def add_fulfillment(self, order_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        raise NotImplementedError


__all__ = ["FakeErp", "FakeStorefront", "TransientError", "make_ctx"]


def make_ctx(
    store: Any,
    flow: str,
    erp: FakeErp,
    storefront: FakeStorefront,
    run_id: str = "run-1",
    **params: Any,
) -> Any:
    """A FlowContext over the doubles and a real state store, constructed directly (not
    ``FlowContext.for_run``): the doubles have no HTTP client to give a breaker or a throttle, and
    no test over them reads the log. Tests of breakers, budgets or masking build with ``for_run``."""
    import logging

    from erpsync.flows.base import FlowContext

    return FlowContext(
        flow=flow,
        run_id=run_id,
        store=store,
        erp=erp,
        storefront=storefront,
        params=dict(params),
        log=logging.getLogger(f"test.{flow}"),
    )
