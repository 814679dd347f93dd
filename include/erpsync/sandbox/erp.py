"""The simulated ERP: session login, page pagination, customers, items, stock, prices, orders, shipments.

Several warehouses (``--locations``, 3 by default) each hold part of every item's stock. A sales
order is booked on the warehouse it names (``warehouse``); one naming none is refused with 422
``warehouse_required`` when there are several, as Tryton refuses to confirm it, unless the ERP has
a default warehouse (the ``default_warehouse`` setting, like a Tryton user's preference; launcher
``--default-warehouse``, admin ``POST /_admin/settings``). An order beyond a warehouse's stock is
accepted and shows there as negative availability (``on_hand - allocated < 0``), as ERPs do.

Shipments appear when an order is shipped through ``POST /_admin/ship`` or, when the service runs
with ``auto_ship_seconds > 0``, lazily for every open order older than that (checked on reads of
orders and shipments, so no background thread and no timing races in tests).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.sandbox.data import (
    CURRENCY_RATES,
    LazyTable,
    Raw,
    SeedOptions,
    constant,
    customer_no,
    index_of,
    iso,
    now,
    seed_time,
)
from erpsync.sandbox.inventory import install_erp
from erpsync.sandbox.paging import erp_page
from erpsync.sandbox.server import HttpError, Request, Service
from erpsync.sandbox.transactions import install_erp_transactions

CUSTOMER_FIELDS = {"name", "email", "phone", "customer_group", "tax_exempt", "tax_id", "payment_terms",
                   "credit_limit", "currency", "addresses", "external_ref"}


class ErpService(Service):
    name = "erp"

    def __init__(
        self, options: SeedOptions, *, username: str = "erpsync", password: str = "erpsync-sandbox",
        session_ttl: float = 1800, auto_ship_seconds: float = 0, default_warehouse: str | None = None,
    ) -> None:
        self.username, self.password = username, password
        #: the launch settings; ``/_admin/reset`` returns to them, ``POST /_admin/settings`` changes them
        self.launch_settings: dict[str, Any] = {"default_warehouse": default_warehouse}
        self.session_ttl, self.auto_ship_seconds = session_ttl, auto_ship_seconds
        super().__init__(options)
        r = self.route
        r("POST", "/api/session", self.login, auth=False)
        r("DELETE", "/api/session", self.logout)
        r("GET", "/api/customers", self.list_customers)
        r("POST", "/api/customers", self.create_customer)
        r("GET", "/api/customers/search", self.search_customers)
        r("GET", "/api/customers/{customer_no}", self.get_customer)
        r("PUT", "/api/customers/{customer_no}", self.update_customer)
        r("PATCH", "/api/customers/{customer_no}", self.update_customer)
        r("GET", "/api/items", self.list_items)
        r("GET", "/api/items/by-sku/{sku}", self.item_by_sku)
        r("GET", "/api/items/{item_code}", self.get_item)
        r("GET", "/api/stock", self.list_stock)
        r("GET", "/api/prices", self.list_prices)
        r("GET", "/api/sales-orders", self.list_sales_orders)
        r("POST", "/api/sales-orders", self.create_sales_order)
        r("GET", "/api/sales-orders/{order_no}", self.get_sales_order)
        r("GET", "/api/shipments", self.list_shipments)
        self.admin("POST", "/_admin/ship", self.admin_ship)
        self.admin("POST", "/_admin/churn", self.admin_churn)
        self.admin("POST", "/_admin/prices", self.admin_prices)
        self.admin("POST", "/_admin/items", self.admin_items)
        self.admin("GET", "/_admin/settings", lambda req: (200, dict(self.settings)))
        self.admin("POST", "/_admin/settings", self.admin_settings)
        install_erp(self)  # stock export, reads by item, admin stock (sandbox/inventory.py)
        install_erp_transactions(self)  # packages, returns, credit memos, anonymise (sandbox/transactions.py)

    def reseed(self, options: SeedOptions) -> None:
        super().reseed(options)
        d = self.data
        self.settings = dict(self.launch_settings)
        self.sessions: dict[str, float] = {}
        self.items = LazyTable(options.skus, d.item, lambda i: seed_time(i, options.skus))
        self.stock = LazyTable(d.stock_count, d.stock, lambda i: seed_time(i, d.stock_count))
        self.prices = LazyTable(d.price_count, d.price, lambda i: seed_time(i, d.price_count))
        self.customers = LazyTable(options.customers, d.erp_customer, lambda i: seed_time(i, options.customers))
        self.orders = LazyTable(0, lambda i: {}, lambda i: 0.0)
        self.shipments = LazyTable(0, lambda i: {}, lambda i: 0.0)
        self.orders_by_ref: dict[str, list[int]] = {}
        self._index: dict[int, tuple[str, str, frozenset[str]]] | None = None
        self._churn_round = 0
        self._price_keys: dict[tuple[Any, ...], int] | None = None

    # ------------------------------------------------------------------ settings
    def _check_settings(self, settings: Raw) -> None:
        wh = settings.get("default_warehouse")
        if wh is not None and wh not in self.data.warehouses:
            raise HttpError(422, "unknown_warehouse",
                            f"default_warehouse {wh!r} is not a warehouse; warehouses: {self.data.warehouses}",
                            field="default_warehouse")

    def admin_settings(self, req: Request) -> tuple[int, Any]:
        """``{"default_warehouse": "MAIN"|null}``: merged into the settings until the next reset."""
        body = req.json_object()
        unknown = set(body) - set(self.launch_settings)
        if unknown:
            raise HttpError(422, "unknown_settings", f"unknown settings {sorted(unknown)}; "
                            f"allowed: {sorted(self.launch_settings)}")
        with self.lock:
            merged = {**self.settings, **body}
            self._check_settings(merged)
            self.settings = merged
            return 200, dict(self.settings)

    def order_warehouse(self, body: Raw) -> str:
        """The warehouse an order is booked on: the one it names, else the only one, else the
        default warehouse if the ERP has one; otherwise 422 (Tryton: "you must enter a warehouse")."""
        whs = self.data.warehouses
        wh = body.get("warehouse")
        if wh is not None:
            if wh not in whs:
                raise HttpError(422, "unknown_warehouse", f"no warehouse {wh!r}; warehouses: {whs}", field="warehouse")
            return str(wh)
        if len(whs) == 1:
            return whs[0]
        if self.settings.get("default_warehouse") in whs:
            return str(self.settings["default_warehouse"])
        raise HttpError(422, "warehouse_required",
                        f"you must enter a warehouse for the sale: the ERP has {len(whs)} warehouses ({', '.join(whs)}) "
                        "and no default warehouse", field="warehouse", warehouses=whs)

    # ------------------------------------------------------------------ auth
    def login(self, req: Request) -> tuple[int, Any]:
        body = req.json_object()
        if not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
            raise HttpError(400, "invalid_body", 'send {"username": ..., "password": ...}')
        if body["username"] != self.username or body["password"] != self.password:
            self.counters["logins_failed"] += 1
            raise HttpError(401, "invalid_credentials", "unknown user or wrong password")
        sid = secrets.token_hex(16)
        expires = now() + self.session_ttl
        self.sessions[sid] = expires
        self.counters["sessions_created"] += 1
        return 201, {"session_id": sid, "expires_at": iso(expires)}

    def logout(self, req: Request) -> tuple[int, Any]:
        self.sessions.pop(req.headers.get("x-session-id", ""), None)
        return 200, {"logged_out": True}

    def authorize(self, req: Request) -> None:
        sid = req.headers.get("x-session-id")
        if not sid:
            raise HttpError(401, "missing_session", "log in with POST /api/session and send X-Session-Id")
        expires = self.sessions.get(sid)
        if expires is None:
            raise HttpError(401, "invalid_session", "unknown session id")
        if expires <= now():
            self.counters["session_expired_hits"] += 1
            raise HttpError(401, "session_expired", "the session expired; log in again")

    def on_fault_actions(self, actions: list[str]) -> None:
        if "expire_sessions" in actions:
            with self.lock:
                for sid in self.sessions:
                    self.sessions[sid] = now() - 1

    def extra_stats(self) -> dict[str, Any]:
        return {"sessions_created": self.counters["sessions_created"],
                "logins_failed": self.counters["logins_failed"],
                "session_expired_hits": self.counters["session_expired_hits"],
                "sales_orders": len(self.orders), "shipments": len(self.shipments),
                "returns": self.counters["returns"], "credit_memos": self.counters["credit_memos"],
                "customers_anonymised": self.counters["customers_anonymised"],
                "duplicate_external_refs": self.counters["duplicate_external_refs"],
                "seed": self.options.to_dict()}

    # ------------------------------------------------------------------ customers
    def _customer_index(self, number: str) -> int:
        idx = index_of(number, "CUST-")
        if idx is None or self.customers.get(idx) is None:
            raise HttpError(404, "not_found", f"no customer {number}")
        return idx

    def _render_customer(self, idx: int, rec: Raw) -> Raw:
        def brk(r: Raw, h: int) -> None:
            choice = h % 3
            if choice == 0:
                r["email"] = "none"
            elif choice == 1 and r.get("addresses"):
                r["addresses"][0]["country"] = "Deutschland"
            else:
                r["modified_at"] = "31/12/2025"
        return self.malformed(f"erp-customer:{rec['customer_no']}", rec, brk)

    def list_customers(self, req: Request) -> tuple[int, Any]:
        return erp_page(req, self.customers, self._render_customer)

    def get_customer(self, req: Request) -> tuple[int, Any]:
        return 200, self.customers.get(self._customer_index(req.params["customer_no"]))

    def _search_index(self) -> dict[int, tuple[str, str, frozenset[str]]]:
        """(email, name, postcodes) per customer, normalised; built on the first search, kept current.

        Searching by name or postcode would otherwise derive every customer record per call.
        """
        if self._index is None:
            self._index = {}
            for i in range(len(self.customers)):
                self._reindex(i, self.customers.get(i))
        return self._index

    def _reindex(self, idx: int, rec: Raw | None) -> None:
        if self._index is None:
            return
        if rec is None:
            self._index.pop(idx, None)
            return
        self._index[idx] = ((rec.get("email") or "").strip().lower(), (rec.get("name") or "").lower(),
                            frozenset(_postcode(a.get("postal_code") or "") for a in rec.get("addresses") or []))

    def search_customers(self, req: Request) -> tuple[int, Any]:
        email = (req.arg("email") or "").strip().lower()
        name = (req.arg("name") or "").strip().lower()
        postcode = _postcode(req.arg("postcode") or "")
        if not (email or name or postcode):
            raise HttpError(422, "missing_criteria", "search by at least one of email, name, postcode")
        found = []
        for i, (e, n, pcs) in sorted(self._search_index().items()):
            if (email and e != email) or (name and name not in n) or (postcode and postcode not in pcs):
                continue
            found.append(self.customers.get(i))
            if len(found) >= 100:
                break
        return 200, {"data": found, "total": len(found)}

    def _validate_customer(self, body: Raw, *, partial: bool) -> None:
        unknown = set(body) - CUSTOMER_FIELDS
        if unknown:
            raise HttpError(422, "unknown_fields", f"unknown customer fields {sorted(unknown)}", fields=sorted(unknown))
        if not partial and not (isinstance(body.get("name"), str) and body["name"].strip()):
            raise HttpError(422, "validation_failed", "name is required", field="name")
        if body.get("email") is not None and "@" not in str(body["email"]):
            raise HttpError(422, "validation_failed", f"email {body['email']!r} is not an email address", field="email")
        if "currency" in body and body["currency"] not in CURRENCY_RATES:
            raise HttpError(422, "validation_failed", f"unknown currency {body['currency']!r}", field="currency")
        if "credit_limit" in body and body["credit_limit"] is not None:
            _decimal(body["credit_limit"], "credit_limit")
        for a in body.get("addresses") or []:
            if not isinstance(a, dict) or a.get("type") not in ("BILL_TO", "SHIP_TO"):
                raise HttpError(422, "validation_failed", "addresses need type BILL_TO or SHIP_TO", field="addresses")

    def create_customer(self, req: Request) -> tuple[int, Any]:
        body = req.json_object()
        self._validate_customer(body, partial=False)
        at = now()

        def make(idx: int) -> Raw:
            rec: Raw = {"customer_no": customer_no(idx), "name": "", "email": None, "phone": None,
                        "customer_group": "retail", "tax_exempt": False, "tax_id": None, "payment_terms": "PREPAID",
                        "credit_limit": "0.00", "currency": "USD", "addresses": [], "external_ref": None}
            rec.update(body)
            rec["modified_at"] = iso(at)
            return rec

        idx, rec = self.customers.add(make, at)
        self._reindex(idx, rec)
        return 201, rec

    def update_customer(self, req: Request) -> tuple[int, Any]:
        idx = self._customer_index(req.params["customer_no"])
        body = req.json_object()
        self._validate_customer(body, partial=True)
        old = self.customers.get(idx) or {}
        rec = {**old, **body}
        at = now()
        rec["modified_at"] = iso(at)
        self.customers.put(idx, rec, at)
        self._reindex(idx, rec)
        return 200, rec

    # ------------------------------------------------------------------ items, stock, prices
    def _render_item(self, idx: int, rec: Raw) -> Raw:
        def brk(r: Raw, h: int) -> None:
            r[("list_price", "sku", "modified_at")[h % 3]] = ("N/A", None, "yesterday")[h % 3]
        return self.malformed(f"item:{rec['item_code']}", rec, brk)

    def list_items(self, req: Request) -> tuple[int, Any]:
        sku = req.arg("sku")
        if sku:
            idx = index_of(sku, "SKU-")
            return erp_page(req, self.items, self._render_item,
                            indices=[idx] if idx is not None and 0 <= idx < len(self.items) else [])
        return erp_page(req, self.items, self._render_item)

    def get_item(self, req: Request) -> tuple[int, Any]:
        idx = index_of(req.params["item_code"], "ITEM-")
        rec = self.items.get(idx) if idx is not None and idx >= 0 else None
        if rec is None:
            raise HttpError(404, "not_found", f"no item {req.params['item_code']}")
        return 200, rec

    def item_by_sku(self, req: Request) -> tuple[int, Any]:
        idx = index_of(req.params["sku"], "SKU-")
        rec = self.items.get(idx) if idx is not None and idx >= 0 else None
        if rec is None:
            raise HttpError(404, "not_found", f"no item with sku {req.params['sku']}")
        return 200, rec

    def _render_stock(self, idx: int, rec: Raw) -> Raw:
        def brk(r: Raw, h: int) -> None:
            r[("on_hand", "allocated", "warehouse")[h % 3]] = (-3, "12.5", None)[h % 3]
        return self.malformed(f"stock:{rec['item_code']}@{rec['warehouse']}", rec, brk)

    def list_stock(self, req: Request) -> tuple[int, Any]:
        code = req.arg("item_code")
        if code:
            item = index_of(code, "ITEM-")
            locs = self.options.locations
            return erp_page(req, self.stock, self._render_stock,
                            indices=list(range(item * locs, item * locs + locs))
                            if item is not None and 0 <= item < self.options.skus else [])
        return erp_page(req, self.stock, self._render_stock)

    def _render_price(self, idx: int, rec: Raw) -> Raw:
        def brk(r: Raw, h: int) -> None:
            r[("price", "currency", "min_qty")[h % 3]] = ("", "EURO", 0)[h % 3]
        return self.malformed(f"price:{idx}", rec, brk)

    def list_prices(self, req: Request) -> tuple[int, Any]:
        code, cust = req.arg("item_code"), req.arg("customer_no")
        if not code and not cust:
            return erp_page(req, self.prices, self._render_price)
        base_rows = self.options.skus * self.data.PRICE_ROWS
        candidates: Sequence[int] = range(len(self.prices))
        if cust:
            c = index_of(cust, "CUST-")
            candidates = (range(base_rows + (c // 20) * self.data.CUSTOMER_PRICES,
                                base_rows + (c // 20 + 1) * self.data.CUSTOMER_PRICES)
                          if c is not None and c % 20 == 0 else range(0))
        elif code:
            item = index_of(code, "ITEM-")
            head = range(item * self.data.PRICE_ROWS, (item + 1) * self.data.PRICE_ROWS) if item is not None else range(0)
            candidates = [*head, *range(base_rows, len(self.prices))]
        indices = [i for i in candidates if (rec := self.prices.get(i)) is not None
                   and (not code or rec["item_code"] == code) and (not cust or rec["customer_no"] == cust)]
        return erp_page(req, self.prices, self._render_price, indices=indices)

    # ------------------------------------------------------------------ sales orders and shipments
    def _validate_order(self, body: Raw) -> None:
        cust = body.get("customer_no")
        if not isinstance(cust, str):
            raise HttpError(422, "validation_failed", "customer_no is required", field="customer_no")
        idx = index_of(cust, "CUST-")
        if idx is None or self.customers.get(idx) is None:
            raise HttpError(422, "unknown_customer", f"no customer {cust}", field="customer_no")
        if body.get("currency") not in CURRENCY_RATES:
            raise HttpError(422, "validation_failed", f"unknown currency {body.get('currency')!r}", field="currency")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            raise HttpError(422, "validation_failed", "an order needs at least one line", field="lines")
        for n, line in enumerate(lines, start=1):
            if not isinstance(line, dict):
                raise HttpError(422, "validation_failed", f"line {n} is not an object", field="lines")
            code = line.get("item_code")
            item = index_of(code, "ITEM-") if isinstance(code, str) else None
            if item is None or self.items.get(item) is None:
                raise HttpError(422, "unknown_item", f"line {n}: no item {code!r}", field=f"lines[{n}].item_code")
            qty = _decimal(line.get("qty"), f"lines[{n}].qty")
            if qty <= 0:
                raise HttpError(422, "validation_failed", f"line {n}: qty must be positive", field=f"lines[{n}].qty")
            _decimal(line.get("unit_price"), f"lines[{n}].unit_price")
        if "total" in body:
            _decimal(body["total"], "total")

    def create_sales_order(self, req: Request) -> tuple[int, Any]:
        body = req.json_object()
        self._validate_order(body)
        warehouse = self.order_warehouse(body)
        at = now()

        def make(idx: int) -> Raw:
            rec: Raw = {"order_no": f"SO-{idx + 1:06d}", "external_ref": None, "order_date": iso(at),
                        "exchange_rate": "1", "shipping": None, "payments": [], "taxes": [], "discounts": [],
                        "total": "0.00"}
            rec.update({k: v for k, v in body.items() if k not in ("order_no", "status", "modified_at")})
            rec.update(status="open", warehouse=warehouse, modified_at=iso(at))
            return rec

        idx, rec = self.orders.add(make, at)
        ref = rec.get("external_ref")
        if ref:
            if self.orders_by_ref.get(ref):
                self.counters["duplicate_external_refs"] += 1
            self.orders_by_ref.setdefault(ref, []).append(idx)
        for line in rec["lines"]:
            self._move_stock(line["item_code"], allocated=int(Decimal(str(line["qty"]))), at=at, warehouse=warehouse)
        return 201, rec

    def _move_stock(self, code: str, *, allocated: int = 0, on_hand: int = 0, at: float,
                    warehouse: str | None = None) -> None:
        """Move stock of one item in ``warehouse`` (an order's; the first one for orders made before
        orders had one). Nothing is clamped: an order beyond the stock there leaves ``on_hand -
        allocated`` negative, and shipping it leaves ``on_hand`` negative, as ERPs show it."""
        item = index_of(code, "ITEM-")
        if item is None:
            return
        whs = self.data.warehouses
        j = item * self.options.locations + (whs.index(warehouse) if warehouse in whs else 0)
        rec = dict(self.stock.get(j) or {})
        if not rec:
            return
        rec["allocated"] = max(0, rec["allocated"] + allocated)
        rec["on_hand"] = rec["on_hand"] + on_hand
        rec["modified_at"] = iso(at)
        self.stock.put(j, rec, at)
        self.webhooks.emit("stock.changed", code, at)

    def list_sales_orders(self, req: Request) -> tuple[int, Any]:
        self._auto_ship()
        ref = req.arg("external_ref")
        indices = self.orders_by_ref.get(ref, []) if ref is not None else None
        return erp_page(req, self.orders, lambda i, r: r, indices=indices)

    def get_sales_order(self, req: Request) -> tuple[int, Any]:
        self._auto_ship()
        return 200, self.orders.get(self._order_index(req.params["order_no"]))

    def _order_index(self, number: str) -> int:
        idx = index_of(number, "SO-")
        if idx is None or self.orders.get(idx) is None:
            raise HttpError(404, "not_found", f"no sales order {number}")
        return idx

    def list_shipments(self, req: Request) -> tuple[int, Any]:
        self._auto_ship()
        number = req.arg("order_no")
        indices = None
        if number:
            indices = [i for i in range(len(self.shipments)) if (self.shipments.get(i) or {}).get("order_no") == number]
        return erp_page(req, self.shipments, lambda i, r: r, indices=indices)

    def _auto_ship(self) -> None:
        if self.auto_ship_seconds <= 0:
            return
        cutoff = now() - self.auto_ship_seconds
        for i in range(len(self.orders)):
            order = self.orders.get(i)
            if order is not None and order["status"] == "open" and self.orders.time_of(i) <= cutoff:
                self._ship(i, carrier="UPS", lines=None)

    def _ship(self, idx: int, *, carrier: str, lines: list[Raw] | None) -> Raw:
        order = dict(self.orders.get(idx) or {})
        if order.get("status") not in ("open", "partially_shipped"):
            raise HttpError(409, "not_shippable", f"order {order.get('order_no')} is {order.get('status')}")
        at = now()
        ship_lines = lines or [{"item_code": ln["item_code"], "qty": ln["qty"]} for ln in order["lines"]]
        n = len(self.shipments) + 1
        tracking = f"1Z{self.options.seed % 1000:03d}{n:09d}"

        def make(sidx: int) -> Raw:
            return {"shipment_no": f"SHP-{sidx + 1:06d}", "order_no": order["order_no"],
                    "external_ref": order.get("external_ref"), "status": "shipped",
                    "packages": [{"carrier": carrier, "tracking_no": tracking, "lines": ship_lines}],
                    "shipped_at": iso(at), "modified_at": iso(at)}

        _, shipment = self.shipments.add(make, at)
        self.webhooks.emit("shipment.created", shipment["shipment_no"], at)
        for ln in ship_lines:
            q = int(Decimal(str(ln["qty"])))
            self._move_stock(ln["item_code"], allocated=-q, on_hand=-q, at=at, warehouse=order.get("warehouse"))
        order["status"] = "partially_shipped" if lines else "shipped"
        order["modified_at"] = iso(at)
        self.orders.put(idx, order, at)
        return shipment

    def admin_ship(self, req: Request) -> tuple[int, Any]:
        body = req.json_object()
        with self.lock:
            if body.get("order_no"):
                idx = self._order_index(body["order_no"])
            elif body.get("external_ref") and self.orders_by_ref.get(body["external_ref"]):
                idx = self.orders_by_ref[body["external_ref"]][-1]
            else:
                raise HttpError(404, "not_found", "send the order_no or external_ref of an existing sales order")
            return 201, self._ship(idx, carrier=str(body.get("carrier", "UPS")), lines=body.get("lines"))

    def admin_churn(self, req: Request) -> tuple[int, Any]:
        """Change ``count`` random records of ``entity`` as ERP users would (for incremental syncs)."""
        body = req.json_object()
        entity, count = body.get("entity"), int(body.get("count", 1))
        tables = {"items": self.items, "stock": self.stock, "prices": self.prices, "customers": self.customers}
        if entity not in tables:
            raise HttpError(422, "invalid_entity", f"entity must be one of {sorted(tables)}")
        with self.lock:
            self._churn_round += 1
            r = random.Random(body.get("seed", self.options.seed * 7919 + self._churn_round))
            table = tables[entity]
            at = now()
            changed = []
            for idx in r.sample(range(len(table)), k=min(count, len(table))):
                rec = dict(table.get(idx) or {})
                if entity == "items":
                    rec["list_price"] = str((Decimal(rec["list_price"]) * Decimal("1.10")).quantize(Decimal("0.01")))
                elif entity == "stock":
                    rec["on_hand"] = rec["on_hand"] + r.randint(1, 20)
                elif entity == "prices":
                    rec["price"] = str((Decimal(rec["price"]) * Decimal("0.95")).quantize(Decimal("0.01")))
                else:
                    rec["phone"] = f"+1-555-{r.randint(1000, 9999)}"
                rec["modified_at"] = iso(at)
                table.put(idx, rec, at)
                if entity == "customers":
                    self._reindex(idx, rec)
                changed.append(rec.get("customer_no") or (rec["item_code"] if entity != "stock"
                                                          else f"{rec['item_code']}@{rec['warehouse']}"))
                if entity in ("stock", "prices"):
                    self.webhooks.emit("stock.changed" if entity == "stock" else "price.changed", rec["item_code"], at)
            return 200, {"entity": entity, "changed": changed}


    # ------------------------------------------------------------------ admin: prices and items
    @staticmethod
    def _price_identity(rec: Raw) -> tuple[Any, ...]:
        return (rec.get("item_code"), str(rec.get("price_list") or "").upper(), rec.get("currency"),
                rec.get("customer_group") or None, rec.get("customer_no") or None, int(rec.get("min_qty") or 1))

    def admin_prices(self, req: Request) -> tuple[int, Any]:
        """What ERP users do to prices: ``{"set": [rows]}`` upserts price rows by (item_code,
        price_list, currency, customer_group, customer_no, min_qty) (a sale is a row of a ``SALE...``
        list with its dates); ``{"scale": {"factor": "0.1", "price_list"?, "item_codes"?}}`` multiplies
        matching prices (the 90 % cut). Changed rows get ``modified_at`` now."""
        body = req.json_object()
        with self.lock:
            at = now()
            if self._price_keys is None and body.get("set"):
                self._price_keys = {self._price_identity(self.prices.get(i) or {}): i for i in range(len(self.prices))}
            changed: list[str] = []
            for row in body.get("set") or []:
                if not isinstance(row, dict) or not row.get("item_code") or not row.get("price_list"):
                    raise HttpError(422, "validation_failed", "each row needs item_code, price_list, currency, price")
                rec = {"item_code": row["item_code"], "price_list": row["price_list"],
                       "customer_group": row.get("customer_group"), "customer_no": row.get("customer_no"),
                       "currency": row.get("currency", "USD"), "min_qty": row.get("min_qty", 1),
                       "price": str(row.get("price")), "valid_from": row.get("valid_from"),
                       "valid_to": row.get("valid_to"), "modified_at": iso(at)}
                ident = self._price_identity(rec)
                assert self._price_keys is not None
                if ident in self._price_keys:
                    self.prices.put(self._price_keys[ident], rec, at)
                else:
                    idx, _ = self.prices.add(constant(rec), at)
                    self._price_keys[ident] = idx
                changed.append(rec["item_code"])
            scale = body.get("scale")
            if scale:
                try:
                    factor = Decimal(str(scale.get("factor")))
                except InvalidOperation:
                    raise HttpError(422, "validation_failed", "scale.factor must be a number") from None
                only_list, codes = scale.get("price_list"), set(scale.get("item_codes") or [])
                for i in range(len(self.prices)):
                    rec = dict(self.prices.get(i) or {})
                    if not rec or (only_list and rec.get("price_list") != only_list) or (codes and rec["item_code"] not in codes):
                        continue
                    rec["price"] = str((Decimal(rec["price"]) * factor).quantize(Decimal("0.01")))
                    rec["modified_at"] = iso(at)
                    self.prices.put(i, rec, at)
                    changed.append(rec["item_code"])
            for code in sorted(set(changed)):
                self.webhooks.emit("price.changed", code, at)
            return 200, {"changed": len(changed), "item_codes": sorted(set(changed))[:1000]}

    def admin_items(self, req: Request) -> tuple[int, Any]:
        """Change one item as an ERP user would: ``{"item_code", "active": false, "cost": "9.50", ...}``."""
        body = req.json_object()
        code = str(body.get("item_code") or "")
        with self.lock:
            idx = index_of(code, "ITEM-")
            rec = self.items.get(idx) if idx is not None and idx >= 0 else None
            if idx is None or rec is None:
                raise HttpError(404, "not_found", f"no item {code}")
            at = now()
            rec = {**rec, **{k: v for k, v in body.items() if k != "item_code"}, "modified_at": iso(at)}
            self.items.put(idx, rec, at)
            return 200, rec


def _postcode(value: str) -> str:
    return value.replace(" ", "").upper()


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise HttpError(422, "validation_failed", f"{field} must be a number or a decimal string", field=field)
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise HttpError(422, "validation_failed", f"{field}: {value!r} is not a number", field=field) from None
    if not d.is_finite():
        raise HttpError(422, "validation_failed", f"{field}: {value!r} is not a number", field=field)
    return d
