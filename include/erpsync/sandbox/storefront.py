"""The simulated storefront (Shopify-like): bearer token, cursor pagination, events feed, writes.

Seeded events: ``customer.created`` for every seeded customer (seq 1..C), then ``order.created`` for
every seeded order (seq C+1..C+O); live changes append events after that.

Realistic by default, each switchable (launcher options, ``POST /_admin/settings``): a checkout
takes its units from the store's levels and is refused beyond them (``inventory_policy`` ``deny``;
``continue`` lets levels go negative, ``untracked`` ignores them), and orders are taxed (by the
shipping country, or a flat ``tax_rate``; ``taxes: false`` charges none).
"""

from __future__ import annotations

import random
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.sandbox.data import (
    CURRENCY_RATES,
    Dataset,
    LazyTable,
    Raw,
    SeedOptions,
    constant,
    index_of,
    iso,
    now,
    parse_time,
    seed_time,
    sf_customer_id,
    sf_product_id,
)
from erpsync.sandbox.inventory import install_storefront, take_stock
from erpsync.sandbox.paging import count_page, cursor_page
from erpsync.sandbox.server import HttpError, Request, Service
from erpsync.sandbox.transactions import install_storefront_transactions

INVENTORY_BATCH_LIMIT = 250
PRODUCT_FIELDS = {"id", "handle", "title", "description", "vendor", "product_type", "status", "tags", "variants"}


class StorefrontService(Service):
    name = "storefront"

    def __init__(self, options: SeedOptions, *, token: str = "sandbox-token", inventory_policy: str = "deny",
                 taxes: bool = True, tax_rate: str | None = None, tax_code: str = "TAX") -> None:
        self.token = token
        #: the launch settings; ``/_admin/reset`` returns to them, ``POST /_admin/settings`` changes them
        self.launch_settings: dict[str, Any] = {"inventory_policy": inventory_policy, "taxes": taxes,
                                                "tax_rate": tax_rate, "tax_code": tax_code}
        _check_settings(self.launch_settings)
        super().__init__(options)
        r = self.route
        r("GET", "/admin/api/shop", self.shop)
        r("GET", "/admin/api/locations", self.locations)
        r("GET", "/admin/api/customers", self.list_customers)
        # window sizes (before the "{id}" routes, which would take "count" for an id)
        r("GET", "/admin/api/customers/count", lambda req: count_page(req, self.customers))
        r("GET", "/admin/api/orders/count", lambda req: count_page(req, self.orders))
        r("GET", "/admin/api/products/count", lambda req: count_page(req, self.products))
        r("GET", "/admin/api/customers/{id}", self.get_customer)
        r("PUT", "/admin/api/customers/{id}", self.update_customer)
        r("GET", "/admin/api/orders", self.list_orders)
        r("POST", "/admin/api/orders", self.place_order)
        r("GET", "/admin/api/orders/{id}", self.get_order)
        r("POST", "/admin/api/orders/{id}/cancel", self.cancel_order)
        r("POST", "/admin/api/orders/{id}/fulfillments", self.add_fulfillment)
        r("GET", "/admin/api/events", self.list_events)
        r("GET", "/admin/api/products", self.list_products)
        r("POST", "/admin/api/products", self.upsert_product)
        r("GET", "/admin/api/products/{id}", self.get_product)
        r("GET", "/admin/api/inventory_levels", self.list_inventory)
        r("POST", "/admin/api/inventory_levels/set", self.set_inventory)
        r("POST", "/admin/api/variants/prices", self.set_variant_prices)
        r("GET", "/admin/api/price_lists", self.list_price_lists)
        r("POST", "/admin/api/price_lists", self.upsert_price_list)
        r("GET", "/admin/api/price_lists/{id}/prices", self.list_price_list_prices)
        r("POST", "/admin/api/price_lists/{id}/prices", self.change_price_list_prices)
        self.admin("POST", "/_admin/orders/generate", self.admin_generate)
        self.admin("GET", "/_admin/settings", lambda req: (200, dict(self.settings)))
        self.admin("POST", "/_admin/settings", self.admin_settings)
        install_storefront(self)  # stock export, reads by sku, checkout stock (sandbox/inventory.py)
        install_storefront_transactions(self)  # returns, refunds, erasure requests (sandbox/transactions.py)

    def reseed(self, options: SeedOptions) -> None:
        super().reseed(options)
        d: Dataset = self.data
        o = options
        self.settings = dict(self.launch_settings)
        self.customers = LazyTable(o.customers, d.sf_customer, lambda i: seed_time(i, o.customers))
        self.orders = LazyTable(o.orders, d.sf_order, self._seed_order_time)
        self.products = LazyTable(d.sf_product_count, d.sf_product,
                                  lambda k: seed_time(d.sf_product_item(k), o.skus) + 60)
        self.inventory = LazyTable(d.stock_count, d.sf_inventory, lambda j: seed_time(j, d.stock_count) + 120)
        self.extra_inventory: dict[tuple[str, str], int] = {}
        self.created_handles: dict[str, int] = {}
        self.created_skus: dict[str, int] = {}
        self.price_lists = LazyTable(0, lambda i: {}, lambda i: 0.0)
        self.price_list_handles: dict[str, int] = {}
        self.price_list_prices: dict[int, dict[tuple[str, int], Raw]] = {}
        self.events: list[Raw] = []
        self.seeded_events = o.customers + o.orders
        self._email_index: dict[str, int] | None = None
        self._generated = 0

    def _seed_order_time(self, i: int) -> float:
        """Seeded orders' ``updated_at`` grows with the index (see ``Dataset.sf_order``)."""
        return parse_time(self.data.sf_order(i)["updated_at"])

    # ------------------------------------------------------------------ settings
    def admin_settings(self, req: Request) -> tuple[int, Any]:
        """Merge ``{"inventory_policy", "taxes", "tax_rate", "tax_code"}`` into the settings (until
        the next reset, which returns to the launch settings)."""
        body = req.json_object()
        unknown = set(body) - set(self.launch_settings)
        if unknown:
            raise HttpError(422, "unknown_settings", f"unknown settings {sorted(unknown)}; "
                            f"allowed: {sorted(self.launch_settings)}")
        with self.lock:
            merged = {**self.settings, **body}
            _check_settings(merged)
            self.settings = merged
            return 200, dict(self.settings)

    def order_tax(self) -> tuple[str, Decimal] | None:
        """(code, rate) of a new order's taxes: None = by shipping country; rate 0 = untaxed."""
        st = self.settings
        if not st["taxes"]:
            return (str(st["tax_code"]), Decimal("0"))
        if st["tax_rate"] is not None:
            return (str(st["tax_code"]), Decimal(str(st["tax_rate"])))
        return None

    # ------------------------------------------------------------------ auth and shop
    def authorize(self, req: Request) -> None:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            raise HttpError(401, "missing_token", "send Authorization: Bearer <token>")
        if auth[len("Bearer "):].strip() != self.token:
            raise HttpError(401, "invalid_token", "the access token is not valid for this shop")

    def shop(self, req: Request) -> tuple[int, Any]:
        return 200, {"shop": {"name": "erpsync sandbox store", "currency": "USD",
                              "currencies": sorted(CURRENCY_RATES), "locations": self.data.warehouses}}

    def locations(self, req: Request) -> tuple[int, Any]:
        return 200, {"items": [{"id": w, "name": w.title()} for w in self.data.warehouses], "next_cursor": None}

    def extra_stats(self) -> dict[str, Any]:
        return {"orders": len(self.orders), "customers": len(self.customers), "products": len(self.products),
                "price_lists": len(self.price_lists),
                "price_list_prices": sum(len(p) for p in self.price_list_prices.values()),
                "events": self.seeded_events + len(self.events),
                "customer_notifications": self.counters["customer_notifications"], "seed": self.options.to_dict()}

    def _event(self, kind: str, entity_id: str, at: float) -> None:
        self.events.append({"seq": self.seeded_events + len(self.events) + 1, "type": kind, "id": entity_id,
                            "at": iso(at)})
        self.webhooks.emit(kind, entity_id, at)

    # ------------------------------------------------------------------ customers
    def _customer_idx(self, cid: str) -> int:
        idx = index_of(cid, "C", offset=100001)
        if idx is None or idx < 0 or self.customers.get(idx) is None:
            raise HttpError(404, "not_found", f"no customer {cid}")
        return idx

    def _render_customer(self, idx: int, rec: Raw) -> Raw:
        def brk(r: Raw, h: int) -> None:
            choice = h % 3
            if choice == 0:
                r["email"] = "not-an-email"
            elif choice == 1 and r.get("addresses"):
                r["addresses"][0]["country_code"] = "Germany"
            else:
                r["updated_at"] = None
        return self.malformed(f"sf-customer:{rec['id']}", rec, brk)

    def list_customers(self, req: Request) -> tuple[int, Any]:
        return cursor_page(req, self.customers, self._render_customer)

    def get_customer(self, req: Request) -> tuple[int, Any]:
        return 200, self.customers.get(self._customer_idx(req.params["id"]))

    def update_customer(self, req: Request) -> tuple[int, Any]:
        idx = self._customer_idx(req.params["id"])
        body = req.json_object()
        allowed = {"email", "first_name", "last_name", "company", "phone", "group", "tax_exempt", "addresses"}
        if set(body) - allowed:
            raise HttpError(422, "unknown_fields", f"customer fields allowed: {sorted(allowed)}")
        at = now()
        rec = {**(self.customers.get(idx) or {}), **body, "updated_at": iso(at)}
        self.customers.put(idx, rec, at)
        self._email_index = None
        self._event("customer.updated", rec["id"], at)
        return 200, rec

    def _find_customer_by_email(self, email: str) -> int | None:
        if self._email_index is None:
            self._email_index = {}
            for i in range(len(self.customers)):
                rec = self.customers.get(i) or {}
                self._email_index.setdefault((rec.get("email") or "").strip().lower(), i)
        return self._email_index.get(email.strip().lower())

    def _new_customer(self, email: str, first: str, last: str, at: float) -> Raw:
        def make(idx: int) -> Raw:
            return {"id": sf_customer_id(idx), "email": email, "first_name": first, "last_name": last,
                    "company": "", "phone": "", "group": "retail", "tax_exempt": False, "addresses": [],
                    "created_at": iso(at), "updated_at": iso(at)}

        idx, rec = self.customers.add(make, at)
        if self._email_index is not None:
            self._email_index.setdefault(email.strip().lower(), idx)
        self._event("customer.created", rec["id"], at)
        return rec

    # ------------------------------------------------------------------ orders
    def _order_idx(self, oid: str) -> int:
        idx = index_of(oid, "O", offset=100001)
        if idx is None or idx < 0 or self.orders.get(idx) is None:
            raise HttpError(404, "not_found", f"no order {oid}")
        return idx

    def _render_order(self, idx: int, rec: Raw) -> Raw:
        def brk(r: Raw, h: int) -> None:
            choice = h % 6
            line = r["line_items"][0]
            if choice == 0:
                line["sku"] = f"SKU-UNKNOWN-{h % 1000:03d}"
            elif choice == 1:
                line["quantity"] = "two"
            elif choice == 2:
                line["price"] = "12,50"
            elif choice == 3:
                r["email"] = None
                r["customer"] = None
            elif choice == 4:
                r["created_at"] = "yesterday"
            else:
                r["currency"] = "XXX"
        return self.malformed(f"sf-order:{rec['id']}", rec, brk)

    def list_orders(self, req: Request) -> tuple[int, Any]:
        return cursor_page(req, self.orders, self._render_order)

    def get_order(self, req: Request) -> tuple[int, Any]:
        return 200, self.orders.get(self._order_idx(req.params["id"]))

    def _create_order(self, r: random.Random, *, customer: Raw | None, email: str, currency: str,
                      lines: list[tuple[int | str, int]], financial_status: str = "paid",
                      discount_code: str | None = None, shipping_address: Raw | None = None,
                      gateway: str | None = None, source_name: str | None = None,
                      location_id: str | None = None) -> Raw:
        at = now()

        def make(idx: int) -> Raw:
            rec = self.data.build_order(
                r, order_index=idx, customer=customer, email=email, currency=currency, lines=lines, created=at,
                updated=at, financial_status=financial_status, discount_code=discount_code,
                shipping_address=shipping_address, gateway=gateway, tax=self.order_tax())
            if source_name:  # the sales channel, as Shopify's source_name ("web", "pos", an app)
                rec["source_name"] = source_name
            if location_id:  # the store location the checkout took the stock from (it ships it)
                rec["location_id"] = location_id
            return rec

        _, rec = self.orders.add(make, at)
        self._event("order.created", rec["id"], at)
        if financial_status == "paid":
            self._event("order.paid", rec["id"], at)
        return rec

    def place_order(self, req: Request) -> tuple[int, Any]:
        """A shopper checks out: creates the order (and the customer unless guest) plus events."""
        body = req.json_object()
        currency = body.get("currency", "USD")
        if currency not in CURRENCY_RATES:
            raise HttpError(422, "validation_failed", f"unknown currency {currency!r}", field="currency")
        raw_lines = body.get("line_items")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise HttpError(422, "validation_failed", "line_items must list at least one {sku, quantity}")
        lines: list[tuple[int | str, int]] = []
        for n, ln in enumerate(raw_lines, start=1):
            item = index_of(str(ln.get("sku", "")), "SKU-") if isinstance(ln, dict) else None
            if item is None or not 0 <= item < self.options.skus:
                raise HttpError(422, "unknown_sku", f"line {n}: unknown sku {ln.get('sku') if isinstance(ln, dict) else ln!r}")
            qty = ln.get("quantity", 1)
            if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
                raise HttpError(422, "validation_failed", f"line {n}: quantity must be a positive whole number")
            lines.append((item, qty))
        at = now()
        customer = None
        email = str(body.get("email") or "").strip()
        if body.get("customer_id"):
            customer = self.customers.get(self._customer_idx(body["customer_id"]))
            assert customer is not None  # _customer_idx answers 404 for a customer it does not hold
            email = email or customer["email"]
        elif not body.get("guest"):
            if "@" not in email:
                raise HttpError(422, "validation_failed", "email is required unless guest is true", field="email")
            found = self._find_customer_by_email(email)
            customer = (self.customers.get(found) if found is not None else
                        self._new_customer(email, str(body.get("first_name", "")), str(body.get("last_name", "")), at))
        elif "@" not in email:
            raise HttpError(422, "validation_failed", "a guest checkout needs an email", field="email")
        source_name = body.get("source_name")
        if source_name is not None and (not isinstance(source_name, str) or not source_name.strip()):
            raise HttpError(422, "validation_failed", "source_name must be a channel name", field="source_name")
        status = body.get("financial_status", "paid")
        if status not in ("paid", "pending"):
            raise HttpError(422, "validation_failed", "financial_status must be paid or pending")
        r = random.Random(f"{self.options.seed}:{len(self.orders)}")
        # refused beyond the store's levels unless inventory_policy or the order says otherwise
        behaviour = body.get("inventory_behaviour", "decrement_obeying_policy")
        if behaviour not in INVENTORY_BEHAVIOURS:
            raise HttpError(422, "validation_failed", f"inventory_behaviour must be one of {list(INVENTORY_BEHAVIOURS)}",
                            field="inventory_behaviour")
        location = take_stock(self, lines, policy=INVENTORY_BEHAVIOURS[behaviour])
        rec = self._create_order(r, customer=customer, email=email, currency=currency, lines=lines,
                                 financial_status=status, discount_code=body.get("discount_code"),
                                 shipping_address=body.get("shipping_address"), gateway=body.get("gateway"),
                                 source_name=source_name, location_id=location)
        return 201, rec

    def cancel_order(self, req: Request) -> tuple[int, Any]:
        idx = self._order_idx(req.params["id"])
        rec = dict(self.orders.get(idx) or {})
        if rec.get("cancelled_at"):
            return 200, rec
        at = now()
        rec.update(cancelled_at=iso(at), updated_at=iso(at))
        self.orders.put(idx, rec, at)
        self._event("order.cancelled", rec["id"], at)
        return 200, rec

    def add_fulfillment(self, req: Request) -> tuple[int, Any]:
        idx = self._order_idx(req.params["id"])
        body = req.json_object()
        order = dict(self.orders.get(idx) or {})
        if order.get("cancelled_at"):
            raise HttpError(409, "order_cancelled", f"order {order['id']} is cancelled")
        ordered: dict[str, int] = {}
        for ln in order["line_items"]:
            ordered[ln["sku"]] = ordered.get(ln["sku"], 0) + int(ln["quantity"])
        done: dict[str, int] = {}
        for f in order.get("fulfillments", []):
            for ln in f["line_items"]:
                done[ln["sku"]] = done.get(ln["sku"], 0) + ln["quantity"]
        wanted = body.get("line_items") or [{"sku": s, "quantity": q - done.get(s, 0)}
                                             for s, q in ordered.items() if q - done.get(s, 0) > 0]
        for ln in wanted:
            s, q = ln.get("sku"), ln.get("quantity")
            if s not in ordered:
                raise HttpError(422, "unknown_line", f"order {order['id']} has no line with sku {s!r}")
            if isinstance(q, bool) or not isinstance(q, int) or q <= 0 or done.get(s, 0) + q > ordered[s]:
                raise HttpError(422, "over_fulfillment",
                                f"sku {s}: ordered {ordered[s]}, fulfilled {done.get(s, 0)}, asked {q!r}")
        if not wanted:
            raise HttpError(422, "nothing_to_fulfill", f"order {order['id']} is already fulfilled")
        at = now()
        fulfillment = {"id": f"F{order['id'][1:]}-{len(order.get('fulfillments', [])) + 1}", "order_id": order["id"],
                       "status": "success", "tracking_company": body.get("tracking_company"),
                       "tracking_number": body.get("tracking_number"), "location_id": body.get("location_id"),
                       "notify_customer": bool(body.get("notify_customer", False)),
                       "line_items": [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in wanted],
                       "created_at": iso(at)}
        for ln in wanted:
            done[ln["sku"]] = done.get(ln["sku"], 0) + ln["quantity"]
        order["fulfillments"] = [*order.get("fulfillments", []), fulfillment]
        if fulfillment["notify_customer"]:
            self.counters["customer_notifications"] += 1
        order["fulfillment_status"] = "fulfilled" if all(done.get(s, 0) >= q for s, q in ordered.items()) else "partial"
        order["updated_at"] = iso(at)
        self.orders.put(idx, order, at)
        self._event("order.updated", order["id"], at)
        return 201, {"fulfillment": fulfillment}

    # ------------------------------------------------------------------ events
    def _seeded_event(self, seq: int) -> Raw:
        c = self.options.customers
        if seq <= c:
            i = seq - 1
            return {"seq": seq, "type": "customer.created", "id": sf_customer_id(i),
                    "at": iso(seed_time(i, c) - 3600)}
        i = seq - c - 1
        return {"seq": seq, "type": "order.created", "id": f"O{i + 100001}",
                "at": iso(seed_time(i, self.options.orders))}

    def list_events(self, req: Request) -> tuple[int, Any]:
        after = req.int_arg("after", 0, minimum=0)
        limit = req.int_arg("limit", 100, minimum=1, maximum=1000)
        last = self.seeded_events + len(self.events)
        items = []
        for seq in range(after + 1, min(last, after + limit) + 1):
            items.append(self._seeded_event(seq) if seq <= self.seeded_events
                         else self.events[seq - self.seeded_events - 1])
        return 200, {"items": items, "next_cursor": str(items[-1]["seq"] if items else after)}

    # ------------------------------------------------------------------ products
    def _product_idx_by_handle(self, handle: str) -> int | None:
        if handle in self.created_handles:
            return self.created_handles[handle]
        item = index_of(handle.upper(), "SKU-")
        if item is None or not 0 <= item < self.options.skus or item % 5 == 4:
            return None
        return (item // 5) * 4 + item % 5

    def _product_idx(self, pid: str) -> int:
        num = index_of(pid, "P", offset=100001)
        if num is not None and 0 <= num < self.options.skus and num % 5 != 4:
            return (num // 5) * 4 + num % 5
        for idx in self.created_handles.values():
            if (self.products.get(idx) or {}).get("id") == pid:
                return idx
        raise HttpError(404, "not_found", f"no product {pid}")

    def _render_product(self, idx: int, rec: Raw) -> Raw:
        def brk(r: Raw, h: int) -> None:
            if r.get("variants"):
                r["variants"][0]["price"] = "abc"
        return self.malformed(f"product:{rec['id']}", rec, brk)

    def list_products(self, req: Request) -> tuple[int, Any]:
        return cursor_page(req, self.products, self._render_product)

    def get_product(self, req: Request) -> tuple[int, Any]:
        return 200, self.products.get(self._product_idx(req.params["id"]))

    def upsert_product(self, req: Request) -> tuple[int, Any]:
        """Create or update by ``handle`` (default: the first variant's sku, lower-cased)."""
        body = req.json_object()
        if set(body) - PRODUCT_FIELDS:
            raise HttpError(422, "unknown_fields", f"product fields allowed: {sorted(PRODUCT_FIELDS)}")
        variants = body.get("variants")
        if not isinstance(variants, list) or not variants or not all(
                isinstance(v, dict) and isinstance(v.get("sku"), str) and v["sku"] for v in variants):
            raise HttpError(422, "validation_failed", "variants must list at least one variant with a sku")
        for v in variants:
            try:
                if v.get("price") is not None and not Decimal(str(v["price"])).is_finite():
                    raise ValueError
            except (ValueError, ArithmeticError):
                raise HttpError(422, "validation_failed", f"variant {v['sku']}: price {v.get('price')!r}") from None
        if not isinstance(body.get("title"), str) or not body["title"].strip():
            raise HttpError(422, "validation_failed", "title is required", field="title")
        handle = str(body.get("handle") or variants[0]["sku"]).lower()
        at = now()
        idx = self._product_idx_by_handle(handle)
        if idx is not None:
            old = self.products.get(idx) or {}
            # a variant field left out of the body keeps its value (like Shopify's productUpdate)
            old_variants = {v.get("sku"): v for v in old.get("variants") or []}
            body = {**body, "variants": [{**old_variants.get(v["sku"], {}), **v} for v in variants]}
            rec = {**old, **{k: v for k, v in body.items() if k != "id"}, "handle": handle, "updated_at": iso(at)}
            self.products.put(idx, rec, at)
            self._index_skus(idx, rec)
            return 200, {"product": rec, "created": False}

        def make(k: int) -> Raw:
            rec: Raw = {"id": sf_product_id(self.options.skus + len(self.created_handles)), "handle": handle,
                        "description": "", "vendor": "", "product_type": "", "status": "active", "tags": [],
                        "created_at": iso(at)}
            rec.update({k2: v for k2, v in body.items() if k2 != "id"})
            rec.update(handle=handle, updated_at=iso(at))
            return rec

        idx, rec = self.products.add(make, at)
        self.created_handles[handle] = idx
        self._index_skus(idx, rec)
        return 201, {"product": rec, "created": True}

    def _index_skus(self, idx: int, rec: Raw) -> None:
        for v in rec.get("variants") or []:
            self.created_skus[v["sku"]] = idx

    def _product_idx_by_sku(self, sku_code: str) -> int | None:
        if sku_code in self.created_skus:
            return self.created_skus[sku_code]
        item = index_of(sku_code, "SKU-")
        if item is None or not 0 <= item < self.options.skus or item % 5 == 4:
            return None
        return (item // 5) * 4 + item % 5

    # ------------------------------------------------------------------ prices
    @staticmethod
    def _price_error(n: int, p: Any) -> str | None:
        if not isinstance(p, dict) or not isinstance(p.get("sku"), str):
            return "not an object with a sku"
        for name in ("price", "compare_at_price"):
            value = p.get(name)
            if value is None and name == "compare_at_price":
                continue
            try:
                if isinstance(value, bool | float) or Decimal(str(value)) < 0:
                    return f"{name} {value!r} must be a decimal string >= 0"
            except ArithmeticError:
                return f"{name} {value!r} is not a number"
        qty = p.get("min_qty", 1)
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            return f"min_qty {qty!r} must be a whole number >= 1"
        return None

    def set_variant_prices(self, req: Request) -> tuple[int, Any]:
        """``{"items": [{"sku", "price", "compare_at_price"}]}``: at most 250, all or nothing."""
        items = req.json_object().get("items")
        if not isinstance(items, list) or not items:
            raise HttpError(422, "validation_failed", 'send {"items": [{"sku", "price", "compare_at_price"}]}')
        if len(items) > INVENTORY_BATCH_LIMIT:
            raise HttpError(413, "batch_too_large", f"{len(items)} items; the limit is {INVENTORY_BATCH_LIMIT}",
                            limit=INVENTORY_BATCH_LIMIT, received=len(items))
        errors = []
        for n, it in enumerate(items):
            problem = self._price_error(n, it)
            if problem is None and self._product_idx_by_sku(it["sku"]) is None:
                problem = f"unknown sku {it['sku']!r}"
            if problem:
                errors.append({"index": n, "sku": it.get("sku") if isinstance(it, dict) else None, "error": problem})
        if errors:
            raise HttpError(422, "validation_failed", f"{len(errors)} of {len(items)} prices rejected; nothing was set",
                            errors=errors[:250])
        at = now()
        for it in items:
            idx = self._product_idx_by_sku(it["sku"])
            assert idx is not None  # every SKU was checked above (unknown: the whole call refused)
            rec = dict(self.products.get(idx) or {})
            rec["variants"] = [{**v, "price": it["price"], "compare_at_price": it.get("compare_at_price")}
                               if v.get("sku") == it["sku"] else v for v in rec.get("variants") or []]
            rec["updated_at"] = iso(at)
            self.products.put(idx, rec, at)
        return 200, {"updated": len(items)}

    def list_price_lists(self, req: Request) -> tuple[int, Any]:
        return cursor_page(req, self.price_lists, lambda i, r: r)

    def upsert_price_list(self, req: Request) -> tuple[int, Any]:
        """A B2B price list (catalog): upsert by ``handle``; ``currency`` required; optional
        ``customer_group``, ``customer_ref`` (ERP customer number) and ``customer_id``."""
        body = req.json_object()
        allowed = {"handle", "name", "currency", "customer_group", "customer_ref", "customer_id"}
        if set(body) - allowed:
            raise HttpError(422, "unknown_fields", f"price list fields allowed: {sorted(allowed)}")
        handle = body.get("handle")
        if not isinstance(handle, str) or not handle.strip():
            raise HttpError(422, "validation_failed", "handle is required", field="handle")
        if body.get("currency") not in CURRENCY_RATES:
            raise HttpError(422, "validation_failed", f"unknown currency {body.get('currency')!r}", field="currency")
        at = now()
        if handle in self.price_list_handles:
            idx = self.price_list_handles[handle]
            rec = {**(self.price_lists.get(idx) or {}), **body, "updated_at": iso(at)}
            self.price_lists.put(idx, rec, at)
            return 200, {"price_list": rec, "created": False}

        def make(i: int) -> Raw:
            return {"id": f"PL{i + 1:06d}", "name": handle, "customer_group": None, "customer_ref": None,
                    "customer_id": None, **body, "created_at": iso(at), "updated_at": iso(at)}

        idx, rec = self.price_lists.add(make, at)
        self.price_list_handles[handle] = idx
        self.price_list_prices[idx] = {}
        return 201, {"price_list": rec, "created": True}

    def _price_list_idx(self, pid: str) -> int:
        idx = index_of(pid, "PL")
        if idx is None or idx < 0 or self.price_lists.get(idx) is None:
            raise HttpError(404, "not_found", f"no price list {pid}")
        return idx

    def list_price_list_prices(self, req: Request) -> tuple[int, Any]:
        """Prices of one list in (sku, min_qty) order; ``?limit=&cursor=`` like every list."""
        prices = self.price_list_prices[self._price_list_idx(req.params["id"])]
        limit = req.int_arg("limit", 50, minimum=1, maximum=250)
        start = int(req.arg("cursor") or 0)
        keys = sorted(prices)
        page = [prices[k] for k in keys[start:start + limit]]
        more = start + limit < len(keys)
        return 200, {"items": page, "next_cursor": str(start + limit) if more else None}

    def change_price_list_prices(self, req: Request) -> tuple[int, Any]:
        """``{"set": [{"sku", "min_qty", "price", "compare_at_price"}], "delete": [{"sku", "min_qty"}]}``:
        at most 250 rows in all, all or nothing; a sku the store does not sell is refused."""
        idx = self._price_list_idx(req.params["id"])
        body = req.json_object()
        to_set, to_delete = body.get("set") or [], body.get("delete") or []
        if not isinstance(to_set, list) or not isinstance(to_delete, list) or not (to_set or to_delete):
            raise HttpError(422, "validation_failed", 'send {"set": [...], "delete": [...]}')
        if len(to_set) + len(to_delete) > INVENTORY_BATCH_LIMIT:
            raise HttpError(413, "batch_too_large", f"{len(to_set) + len(to_delete)} rows; the limit is "
                            f"{INVENTORY_BATCH_LIMIT}", limit=INVENTORY_BATCH_LIMIT,
                            received=len(to_set) + len(to_delete))
        errors = []
        for n, it in enumerate(to_set):
            problem = self._price_error(n, it)
            if problem is None and self._product_idx_by_sku(it["sku"]) is None:
                problem = f"unknown sku {it['sku']!r}"
            if problem:
                errors.append({"index": n, "sku": it.get("sku") if isinstance(it, dict) else None, "error": problem})
        if errors:
            raise HttpError(422, "validation_failed", f"{len(errors)} of {len(to_set)} prices rejected; nothing was set",
                            errors=errors[:250])
        at = now()
        prices = self.price_list_prices[idx]
        for it in to_set:
            qty = int(it.get("min_qty", 1))
            prices[(it["sku"], qty)] = {"sku": it["sku"], "min_qty": qty, "price": it["price"],
                                        "compare_at_price": it.get("compare_at_price"), "updated_at": iso(at)}
        deleted = 0
        for it in to_delete:
            if isinstance(it, dict) and prices.pop((str(it.get("sku")), int(it.get("min_qty", 1))), None) is not None:
                deleted += 1
        return 200, {"updated": len(to_set), "deleted": deleted}

    # ------------------------------------------------------------------ inventory
    def _inventory_idx(self, sku_code: str, location: str) -> int | None:
        item = index_of(sku_code, "SKU-")
        if item is not None and 0 <= item < self.options.skus and location in self.data.warehouses:
            return item * self.options.locations + self.data.warehouses.index(location)
        return self.extra_inventory.get((sku_code, location))

    def list_inventory(self, req: Request) -> tuple[int, Any]:
        return cursor_page(req, self.inventory, lambda i, r: r)

    def set_inventory(self, req: Request) -> tuple[int, Any]:
        """Set available quantities; all-or-nothing, at most 250 items per call (like Shopify)."""
        body = req.json_object()
        items = body.get("items")
        if not isinstance(items, list) or not items:
            raise HttpError(422, "validation_failed", 'send {"items": [{"sku", "location_id", "available"}]}')
        if len(items) > INVENTORY_BATCH_LIMIT:
            raise HttpError(413, "batch_too_large",
                            f"{len(items)} items in one call; the limit is {INVENTORY_BATCH_LIMIT}: split the batch",
                            limit=INVENTORY_BATCH_LIMIT, received=len(items))
        known_skus = {v["sku"] for idx in self.created_handles.values()
                      for v in (self.products.get(idx) or {}).get("variants", [])}
        errors = []
        for n, it in enumerate(items):
            if not isinstance(it, dict):
                errors.append({"index": n, "error": "not an object"})
                continue
            s, loc, avail = it.get("sku"), it.get("location_id"), it.get("available")
            if loc not in self.data.warehouses:
                errors.append({"index": n, "error": f"unknown location {loc!r}"})
            elif self._inventory_idx(str(s), loc) is None and s not in known_skus:
                errors.append({"index": n, "error": f"unknown sku {s!r}"})
            elif isinstance(avail, bool) or not isinstance(avail, int):
                errors.append({"index": n, "error": f"available must be a whole number, got {avail!r}"})
        if errors:
            raise HttpError(422, "validation_failed", f"{len(errors)} of {len(items)} items rejected; nothing was set",
                            errors=errors[:50])
        at = now()
        updated = []
        for it in items:
            rec = {"sku": it["sku"], "location_id": it["location_id"], "available": it["available"],
                   "updated_at": iso(at),
                   **{k: it[k] for k in ("restock_date", "backorderable") if it.get(k) is not None}}
            idx = self._inventory_idx(it["sku"], it["location_id"])
            if idx is None:
                idx, _ = self.inventory.add(constant(rec), at)
                self.extra_inventory[(it["sku"], it["location_id"])] = idx
            else:
                self.inventory.put(idx, rec, at)
            updated.append(rec)
        return 200, {"updated": len(updated), "items": updated}

    # ------------------------------------------------------------------ admin
    def admin_generate(self, req: Request) -> tuple[int, Any]:
        """Simulate shoppers: ``count`` orders, some by guests, some by brand-new customers."""
        body = req.json_object()
        count = int(body.get("count", 10))
        guest_share = float(body.get("guest_share", 0.15))
        new_share = float(body.get("new_customer_share", 0.2))
        if not 0 < count <= 10000:
            raise HttpError(422, "invalid_count", "count must be between 1 and 10000")
        with self.lock:
            self._generated += 1
            r = random.Random(body.get("seed", self.options.seed * 104729 + self._generated))
            orders, customers = [], []
            for _ in range(count):
                roll = r.random()
                customer = None
                if roll < guest_share:
                    email = f"guest.{r.randrange(10**6)}@example.org"
                elif roll < guest_share + new_share or not len(self.customers):
                    n = len(self.customers)
                    first, last = self.data.person(2_000_000 + n)
                    customer = self._new_customer(f"{first}.{last}.n{n}@example.net".lower(), first, last, now())
                    customers.append(customer["id"])
                    email = customer["email"]
                else:
                    customer = self.customers.get(r.randrange(len(self.customers)))
                    assert customer is not None  # an index below the table's length
                    email = customer["email"]
                lines: list[tuple[int | str, int]] = [
                    (self._active_item(r), r.randint(1, 3)) for _ in range(r.randint(1, 3))]
                rec = self._create_order(r, customer=customer, email=email,
                                         currency=r.choices(["USD", "EUR", "GBP"], weights=[70, 20, 10])[0],
                                         lines=lines, financial_status=r.choices(["paid", "pending"], [9, 1])[0])
                orders.append(rec["id"])
            return 201, {"orders": orders, "customers": customers}

    def _active_item(self, r: random.Random) -> int:
        for _ in range(20):
            i = r.randrange(self.options.skus)
            if i % 20 != 19:
                return i
        return 0



INVENTORY_POLICIES = ("deny", "continue", "untracked")
#: Shopify's order ``inventory_behaviour`` -> the policy applied to that order (None: the store's)
INVENTORY_BEHAVIOURS: dict[str, str | None] = {
    "decrement_obeying_policy": None, "decrement_ignoring_policy": "continue", "bypass": "untracked"}


def _check_settings(st: dict[str, Any]) -> None:
    if st.get("inventory_policy") not in INVENTORY_POLICIES:
        raise HttpError(422, "invalid_settings", f"inventory_policy must be one of {list(INVENTORY_POLICIES)}, "
                        f"got {st.get('inventory_policy')!r}", field="inventory_policy")
    if not isinstance(st.get("taxes"), bool):
        raise HttpError(422, "invalid_settings", "taxes must be true or false", field="taxes")
    rate = st.get("tax_rate")
    if rate is not None:
        try:
            ok = not isinstance(rate, bool) and 0 <= Decimal(str(rate)) < 1
        except (InvalidOperation, ValueError):
            ok = False
        if not ok:
            raise HttpError(422, "invalid_settings", f"tax_rate must be a decimal string in [0, 1), e.g. \"0.10\", "
                            f"or null (by shipping country), got {rate!r}", field="tax_rate")
    if not isinstance(st.get("tax_code"), str) or not st["tax_code"].strip():
        raise HttpError(422, "invalid_settings", "tax_code must be a non-empty string", field="tax_code")
