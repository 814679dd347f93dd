"""Adapter for Tryton 8.2 over JSON-RPC (``POST /<db>/rpc/``).

Session: ``common.db.login`` gives ``[uid, session]``, sent as ``Authorization: Session
base64(login:uid:session)``; a 401 (expired or unknown session) logs in again once and resends.
Every call ends with the user's context (``res.user.get_preferences``: it carries the company).

Raw records are Tryton's own (field names of ``party.party``, ``product.product``, ``sale.sale``,
``stock.shipment.out``), decoded from Tryton's JSON (Decimal -> "19.99", dates -> ISO strings)
and completed with the related values a flow needs (a party's addresses and e-mail, a sale's
party code). ``erpsync.mappings.erp_tryton`` maps them.

Idempotency: Tryton has no idempotency keys and ``sale.sale.reference`` is not unique, so a sale
is looked up by its reference (the storefront order id) before it is created, and a sale left
half way (draft or quotation, after a lost answer) is taken forward instead of created again.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal, overload
from urllib.parse import urlsplit

from erpsync.connectors.base import ErpAdapter, Raw
from erpsync.connectors.capabilities import Capabilities
from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.errors import AuthError, ConfigError, PermanentError, TransientError

#: the storefront's customer id is kept on the party as an identifier with this prefix
STORE_ID_PREFIX = "store:"
PARTY_FIELDS = ["code", "name", "active", "lang", "identifiers", "addresses", "contact_mechanisms",
                "create_date", "write_date"]
ADDRESS_FIELDS = ["party", "party_name", "street", "postal_code", "city", "country.code", "subdivision.code",
                  "invoice", "delivery", "active"]
PRODUCT_FIELDS = ["code", "name", "active", "type", "list_price", "list_price_used", "cost_price", "default_uom.symbol", "template",
                  "description", "create_date", "write_date",
                  # the catalog groups a template's variants and follows its changes (list price, retirement)
                  "suffix_code", "template.code", "template.name", "template.active", "template.write_date",
                  "template.create_date"]

SALE_FIELDS = ["number", "reference", "state", "party", "party.code", "sale_date", "currency.code", "warehouse",
               "warehouse.code",
               "untaxed_amount", "tax_amount", "total_amount", "shipment_state", "invoice_state", "lines",
               "shipments", "shipment_returns", "description", "comment", "create_date", "write_date"]
SALE_LINE_FIELDS = ["type", "product", "product.code", "quantity", "unit_price", "amount", "description",
                    "taxes"]
#: sale states a failed or interrupted try leaves: taken forward (quote, confirm), never counted done
UNBOOKED_STATES = ("draft", "quotation")
SHIPMENT_FIELDS = ["number", "reference", "state", "customer", "customer.code", "shipping_reference",
                   "carrier", "carrier.party.name", "effective_date", "planned_date", "outgoing_moves",
                   "packages", "create_date", "write_date"]
#: a shipment's packages (stock_package; with stock_package_shipping each has its tracking number)
PACKAGE_FIELDS = ["number", "shipping_reference", "moves", "parent"]
#: a return sale's return shipments and where their received goods went (storage = restocked)
RETURN_SHIPMENT_FIELDS = ["number", "state", "effective_date", "inventory_moves", "write_date"]
RETURN_MOVE_FIELDS = ["product", "product.code", "quantity", "state", "to_location.type"]
#: product types inventory and the catalog read: goods, and kits (module ``product_kit``)
ITEM_TYPES = ("goods", "kit")
#: a kit's components (``product.component``, module ``product_kit``)
COMPONENT_FIELDS = ["parent_product", "parent_template", "product", "product.code", "product.default_uom",
                    "quantity", "unit", "fixed"]
#: a domain clause that lifts Tryton's default filter on active records
ALL = ("active", "in", [True, False])
MOVE_FIELDS = ["product", "product.code", "quantity", "state", "origin", "sale", "sale.reference",
               "sale.number"]


# --------------------------------------------------------------------------- Tryton JSON


def encode(value: Any) -> Any:
    """Python -> Tryton's JSON (Decimal, date and datetime travel as tagged objects)."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": format(value, "f")}
    if isinstance(value, dt.datetime):
        v = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
        return {"__class__": "datetime", "year": v.year, "month": v.month, "day": v.day, "hour": v.hour,
                "minute": v.minute, "second": v.second, "microsecond": v.microsecond}
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def decode(value: Any) -> Any:
    """Tryton's JSON -> plain values: Decimal as a string, dates and times as ISO 8601 (UTC, Z)."""
    if isinstance(value, dict):
        cls = value.get("__class__")
        if cls == "Decimal":
            return value["decimal"]
        if cls == "datetime":
            return dt.datetime(value["year"], value["month"], value["day"], value.get("hour", 0),
                               value.get("minute", 0), value.get("second", 0),
                               value.get("microsecond", 0)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if cls == "date":
            return dt.date(value["year"], value["month"], value["day"]).isoformat()
        if cls == "bytes":
            return value.get("base64")
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def flatten(record: Raw) -> Raw:
    """Tryton returns a dotted field ``party.code`` as ``{"party.": {"code": ..}}``; keep it dotted."""
    out: Raw = {}
    for key, value in record.items():
        if key.endswith(".") and isinstance(value, dict):
            for sub, subval in flatten(value).items():
                out[f"{key}{sub}"] = subval
        elif key.endswith(".") and value is None:
            continue
        else:
            out[key] = value
    return out


def changed_since(since: dt.datetime | None) -> list[Any]:
    """Records created or written since ``since`` (``write_date`` is null until the first write)."""
    if since is None:
        return []
    return ["OR", [("write_date", ">=", since)], [("write_date", "=", None), ("create_date", ">=", since)]]


def changed_in(since: dt.datetime | None, before: dt.datetime | None) -> list[Any]:
    """Records whose last change is in [since, before) (a backfill's slice), as AND-ed clauses."""
    clauses: list[Any] = [changed_since(since)] if since is not None else []
    if before is not None:
        clauses.append(["OR", [("write_date", "<", before)], [("write_date", "=", None), ("create_date", "<", before)]])
    return clauses


class TrytonError(PermanentError):
    """Tryton refused the call (a UserError, AccessError, ...): not retried."""


class TrytonErpAdapter(ErpAdapter):
    """Tryton ERP. ``base_url`` is ``http://host:8000/<database>`` (or give ``database``)."""
    #: the capability matrix (erpsync.connectors.capabilities)
    capabilities = Capabilities(
        name="Tryton 8.2", multi_location_stock=True, rmas=True, erasure=True, sales_order_listing=True,
        expiring_sessions=True,
        notes=(("price_lists", "one list price per product is read; Tryton price lists are not exported"),
               ("quantity_breaks", "one list price per product is read"),
               ("multi_currency_prices", "prices in the company currency only"),
               ("bulk_stock_export", "stock is read per warehouse through JSON-RPC"),
               ("resumable_paging", "no read_page: a migration re-reads and skips on a resume"),
               ("idempotency_keys", "Tryton has none: a write is looked up by its reference"),
               ("rate_limits", "trytond has no request rate limiting"),
               ("webhooks", "trytond sends no webhooks (ir.trigger calls a server-side method, no HTTP push): "
                            "shipments_sync and inventory_fast_lane poll it on their crons")))

    system = "erp"
    mapping = "erpsync.mappings.erp_tryton"

    def __init__(
        self, base_url: str, username: str, password: str, *, database: str | None = None, timeout: float = 30.0,
        page_size: int = 200, retry: RetryPolicy | None = None, connection_id: str = "erp_default",
        warehouse: str | None = None, tax_map: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        path_db = parts.path.strip("/").split("/")[0] if parts.path.strip("/") else ""
        self.database = database or path_db
        if not self.database:
            raise ConfigError(f"Connection {connection_id}: the Tryton database is missing: put it in the URL "
                              "(http://host:8000/<database>) or in extra {\"database\": ...}")
        self.server = f"{parts.scheme}://{parts.netloc}"
        self.base_url = f"{self.server}/{self.database}"
        self.username, self._password = username, password
        self.page_size = page_size
        self.connection_id = connection_id
        self.warehouse_code = warehouse
        #: store tax code (a Vendure tax rate's name) or ``rate:<percent>`` -> Tryton tax name (extra ``tax_map``)
        self.tax_map = dict(tax_map or {})
        self.http = HttpClient(self.server, system=self.system, timeout=(min(3.05, timeout), timeout), retry=retry)
        # keys go on reads only (``_post``: Tryton has no idempotency keys, a write carries none and
        # is looked up by its reference after a lost answer), so a keyed request is safe to resend
        self.http.key_replay = True
        self._auth: str | None = None
        self._context: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._cache: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ session and RPC
    def login(self, *, retry: RetryPolicy | None = None) -> None:
        body = self._post("common.db.login", [self.username, {"password": self._password}, "en"], retry=retry)
        uid, session = body[0], body[1]
        self._auth = "Session " + base64.b64encode(f"{self.username}:{uid}:{session}".encode()).decode()
        self._context = self._post("model.res.user.get_preferences", [True, {}], auth=self._auth)

    def _post(self, method: str, params: list[Any], *, auth: str | None = None, retry: RetryPolicy | None = None,
              write: bool = False) -> Any:
        headers = {"Authorization": auth} if auth else {}
        payload = {"method": method, "params": encode(params), "id": next(self._ids)}
        # reads are safe to resend; a write without an answer is an UnknownOutcomeError (look up first)
        key = None if write else f"read-{payload['id']}"
        resp = self.http.request("POST", f"/{self.database}/rpc/", json=payload, headers=headers,
                                 idempotency_key=key, retry=retry)
        body = resp.body
        if isinstance(body, dict) and body.get("error"):
            raise _rpc_error(method, body["error"])
        return decode(body.get("result") if isinstance(body, dict) else body)

    def call(self, method: str, *args: Any, write: bool = False) -> Any:
        """``model.x.y`` with the user's context appended; on an expired session, log in again once."""
        for attempt in (1, 2):
            with self._lock:
                if self._auth is None:
                    self.login()
                auth, context = self._auth, dict(self._context)
            try:
                return self._post(method, [*args, context], auth=auth, write=write)
            except AuthError as exc:
                if attempt == 2 or exc.status != 401:
                    raise
                with self._lock:
                    if self._auth == auth:
                        self._auth = None
        raise AssertionError("unreachable")  # pragma: no cover

    def model(self, model: str, method: str, *args: Any, write: bool = False) -> Any:
        return self.call(f"model.{model}.{method}", *args, write=write)

    def search_read(self, model: str, domain: list[Any], fields: list[str], *, order: list[Any] | None = None,
                    limit: int | None = None, offset: int = 0) -> list[Raw]:
        rows = self.model(model, "search_read", domain, offset, limit, order, fields)
        return [flatten(r) for r in rows]

    def read(self, model: str, ids: list[int], fields: list[str]) -> list[Raw]:
        if not ids:
            return []
        return [flatten(r) for r in self.model(model, "read", list(ids), fields)]

    def pages(self, model: str, domain: list[Any], fields: list[str]) -> Iterator[Raw]:
        """Offset pages in id order: for a listing whose records never leave its domain while it is
        read (the whole catalog); a change window pages with :meth:`window_pages`."""
        offset = 0
        while True:
            rows = self.search_read(model, domain, fields, order=[["id", "ASC"]], limit=self.page_size, offset=offset)
            yield from rows
            if len(rows) < self.page_size:
                return
            offset += len(rows)

    def window_pages(self, model: str, domain: list[Any], fields: list[str]) -> Iterator[Raw]:
        """Keyset pages in id order (``id > last id read``) over a change window: a record written
        while the window is read leaves an ``updated_before`` window (or is deleted), and with offset
        paging every later record would shift one place left, so the first of the next page would
        never be read (and the flow's cursor would move past it). An id never changes, so
        each record still in the window is read exactly once."""
        last = 0
        while True:
            rows = self.search_read(model, [*domain, ("id", ">", last)], fields, order=[["id", "ASC"]],
                                    limit=self.page_size)
            yield from rows
            if len(rows) < self.page_size:
                return
            last = int(rows[-1]["id"])

    def ping(self) -> None:
        fix = f"start Tryton (scripts/real-systems.sh up) or fix the host of Connection {self.connection_id}"
        try:
            self.login(retry=RetryPolicy.none())
        except AuthError:
            raise ConfigError(f"Tryton at {self.base_url} refused the login of {self.username!r}: "
                              f"fix login/password of Connection {self.connection_id}") from None
        except TrytonError as exc:
            raise ConfigError(f"Tryton at {self.base_url} refused the login ({exc}): check the database name "
                              f"and the credentials of Connection {self.connection_id}") from None
        except TransientError as exc:
            raise ConfigError(f"Tryton at {self.base_url} is unreachable ({exc}): {fix}") from None
        except PermanentError as exc:
            raise ConfigError(f"Tryton at {self.base_url}: {exc}: {fix}") from None

    # ------------------------------------------------------------------ look-ups by code (cached)
    @overload
    def id_of(self, model: str, field: str, value: str, *, required: Literal[True] = ...) -> int: ...

    @overload
    def id_of(self, model: str, field: str, value: str, *, required: bool) -> int | None: ...

    def id_of(self, model: str, field: str, value: str, *, required: bool = True) -> int | None:
        key = (model, f"{field}={value}")
        if key not in self._cache:
            found = self.model(model, "search", [(field, "=", value)], 0, 1, None)
            if not found:
                if required:
                    raise TrytonError(f"Tryton has no {model} with {field} {value!r}", system=self.system)
                return None
            self._cache[key] = found[0]
        return self._cache[key]

    def warehouse_id(self) -> int:
        if self.warehouse_code:
            return self.id_of("stock.location", "code", self.warehouse_code)
        found = self.model("stock.location", "search", [("type", "=", "warehouse")], 0, 1, [["id", "ASC"]])
        if not found:
            raise TrytonError("Tryton has no warehouse", system=self.system)
        return found[0]

    # ------------------------------------------------------------------ customers (parties)
    def _complete_parties(self, parties: list[Raw]) -> list[Raw]:
        """Add the addresses, contact mechanisms and identifiers (Tryton returns their ids only)."""
        addr_ids = [i for p in parties for i in p.get("addresses") or []]
        cm_ids = [i for p in parties for i in p.get("contact_mechanisms") or []]
        ident_ids = [i for p in parties for i in p.get("identifiers") or []]
        addrs = {a["id"]: a for a in self.read("party.address", addr_ids, ADDRESS_FIELDS)}
        cms = {c["id"]: c for c in self.read("party.contact_mechanism", cm_ids, ["type", "value"])}
        idents = {i["id"]: i for i in self.read("party.identifier", ident_ids, ["type", "code"])}
        for p in parties:
            p["addresses"] = [addrs[i] for i in p.get("addresses") or [] if i in addrs]
            p["contact_mechanisms"] = [cms[i] for i in p.get("contact_mechanisms") or [] if i in cms]
            p["identifiers"] = [idents[i] for i in p.get("identifiers") or [] if i in idents]
        return parties

    def get_customer(self, code: str) -> Raw | None:
        rows = self.search_read("party.party", [("code", "=", code)], PARTY_FIELDS, limit=1)
        return self._complete_parties(rows)[0] if rows else None

    def find_customers(
        self, *, email: str | None = None, name: str | None = None, postcode: str | None = None
    ) -> list[Raw]:
        domain: list[Any] = []
        if email:
            domain.append(("contact_mechanisms", "where", [("type", "=", "email"), ("value", "ilike", email)]))
        if name:
            domain.append(("name", "ilike", name))
        if postcode:
            domain.append(("addresses", "where", [("postal_code", "=", postcode)]))
        if not domain:
            raise ValueError("find_customers needs email, name or postcode")
        return self._complete_parties(self.search_read("party.party", domain, PARTY_FIELDS, limit=50))

    def find_customer_by_store_id(self, store_id: str) -> Raw | None:
        rows = self.search_read("party.party", [("identifiers.code", "=", STORE_ID_PREFIX + store_id)],
                                PARTY_FIELDS, limit=1)
        return self._complete_parties(rows)[0] if rows else None

    def _address_values(self, address: Raw) -> Raw:
        values = {k: v for k, v in address.items() if k in ("party_name", "street", "postal_code", "city",
                                                            "invoice", "delivery")}
        country = address.get("country")
        if country:
            values["country"] = self.id_of("country.country", "code", str(country), required=False)
        return values

    def create_customer(self, payload: Raw, *, idempotency_key: str) -> Raw:
        """``payload``: ``{"name", "email", "phone", "store_id", "addresses": [{street, postal_code, city,
        country (ISO code), invoice, delivery}]}``; a party with this store id already there is returned."""
        store_id = payload.get("store_id")
        if store_id:
            existing = self.find_customer_by_store_id(str(store_id))
            if existing is not None:
                return existing
        values: Raw = {"name": payload["name"]}
        mechanisms = [{"type": t, "value": payload[t]} for t in ("email", "phone") if payload.get(t)]
        if mechanisms:
            values["contact_mechanisms"] = [["create", mechanisms]]
        if store_id:
            values["identifiers"] = [["create", [{"code": STORE_ID_PREFIX + str(store_id)}]]]
        addresses = [self._address_values(a) for a in payload.get("addresses") or []]
        if addresses:
            values["addresses"] = [["create", addresses]]
        party_id, = self.model("party.party", "create", [values], write=True)
        return self._complete_parties(self.read("party.party", [party_id], PARTY_FIELDS))[0]

    def update_customer(self, erp_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        """Name, e-mail and phone are set; addresses not yet on the party are added (old ones stay:
        sales and shipments refer to them)."""
        party = self.get_customer(erp_id)
        if party is None:
            raise TrytonError(f"Tryton has no party with code {erp_id!r}", system=self.system, status=404)
        values: Raw = {}
        if payload.get("name"):
            values["name"] = payload["name"]
        ops: list[Any] = []
        for kind in ("email", "phone"):
            if not payload.get(kind):
                continue
            current = [c for c in party["contact_mechanisms"] if c["type"] == kind]
            if current and current[0]["value"] != payload[kind]:
                ops.append(["write", [current[0]["id"]], {"value": payload[kind]}])
            elif not current:
                ops.append(["create", [{"type": kind, "value": payload[kind]}]])
        if ops:
            values["contact_mechanisms"] = ops
        have = {(a.get("street"), a.get("postal_code"), a.get("city")) for a in party["addresses"]}
        new = [self._address_values(a) for a in payload.get("addresses") or []
               if (a.get("street"), a.get("postal_code"), a.get("city")) not in have]
        if new:
            values["addresses"] = [["create", new]]
        if values:
            self.model("party.party", "write", [party["id"]], values, write=True)
        return self.get_customer(erp_id) or party

    # ------------------------------------------------------------------ catalog, stock, prices
    def list_items(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        """Goods and kit products (``product_kit``), retired ones too (the catalog unpublishes what
        the ERP deactivates), changed since the time, or whose template changed (the list price
        and the name live on the template: writing them does not touch the product's
        ``write_date``). A kit carries its components as ``kit_components`` (:meth:`_with_kits`)."""
        domain: list[Any] = [("type", "in", list(ITEM_TYPES)), ALL]
        if updated_since is None:
            return self._with_kits(self.pages("product.product", domain, PRODUCT_FIELDS))
        return self._with_kits(self._read_ids("product.product",
                                              sorted(self._changed_products(domain, updated_since)), PRODUCT_FIELDS))

    def _with_kits(self, rows: Iterator[Raw]) -> Iterator[Raw]:
        """Each kit product with ``kit_components``: ``[{"code", "quantity", "unit", "default_uom",
        "fixed"}]``, the product's own components, else its template's (as Tryton's
        ``components_used``); a page of products at a time."""
        page: list[Raw] = []
        for row in rows:
            page.append(row)
            if len(page) >= self.page_size:
                yield from self._complete_kits(page)
                page = []
        if page:
            yield from self._complete_kits(page)

    def _complete_kits(self, rows: list[Raw]) -> list[Raw]:
        kits = [r for r in rows if r.get("type") == "kit"]
        if not kits:
            return rows
        ids = [r["id"] for r in kits]
        templates = sorted({r["template"] for r in kits})
        comps = self.search_read("product.component", ["OR", ("parent_product", "in", ids),
                                                       ("parent_template", "in", templates)], COMPONENT_FIELDS,
                                 order=[["sequence", "ASC"], ["id", "ASC"]])
        for kit in kits:
            own = [c for c in comps if c.get("parent_product") == kit["id"]]
            used = own or [c for c in comps if c.get("parent_template") == kit["template"]
                           and not c.get("parent_product")]
            kit["kit_components"] = [{"code": c.get("product.code"), "quantity": c.get("quantity"),
                                      "unit": c.get("unit"), "default_uom": c.get("product.default_uom"),
                                      "fixed": bool(c.get("fixed"))} for c in used]
        return rows

    def _changed_products(self, domain: list[Any], since: dt.datetime) -> set[int]:
        # one search per condition: Tryton 8.2 drops the products of an inactive template from a
        # product search with an OR in it, even with ("active", "in", [True, False])
        ids: set[int] = set()
        for changed in ([("write_date", ">=", since)], [("write_date", "=", None), ("create_date", ">=", since)]):
            ids.update(self.model("product.product", "search", [*domain, *changed], 0, None, None))
        templates = self.model("product.template", "search", [ALL, ("write_date", ">=", since)], 0, None, None)
        if templates:
            ids.update(self.model("product.product", "search", [*domain, ("template", "in", templates)], 0, None,
                                  None))
        return ids

    def _read_ids(self, model: str, ids: list[int], fields: list[str]) -> Iterator[Raw]:
        for start in range(0, len(ids), self.page_size):
            yield from self.read(model, ids[start:start + self.page_size], fields)

    def find_item_by_sku(self, sku: str) -> Raw | None:
        rows = self.search_read("product.product", [("code", "=", sku)], PRODUCT_FIELDS, limit=1)
        return rows[0] if rows else None

    def list_stock(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        """On hand and forecast per goods product in every warehouse (Tryton computes both from the
        moves, so every product is read: a move does not change the product's ``write_date``);
        retired products too (inventory_sync sells them as 0). Kits have no stock of their own:
        inventory_sync derives theirs from their components'."""
        return self._stock([("type", "=", "goods"), ALL])

    def export_stock(self) -> Iterator[Raw]:
        """Every goods product's stock in every warehouse (as ``list_stock``: Tryton has no bulk export)."""
        return self._stock([("type", "=", "goods"), ALL])

    def warehouses(self) -> list[tuple[int, str]]:
        """(id, code) of every active warehouse, in id order; one without a code is known by its
        name (the ``warehouse`` of its stock rows and the key of the location map)."""
        rows = self.search_read("stock.location", [("type", "=", "warehouse")], ["code", "name"],
                                order=[["id", "ASC"]])
        return [(int(r["id"]), str(r.get("code") or r.get("name"))) for r in rows]

    def list_warehouses(self) -> list[str]:
        return [code for _, code in self.warehouses()]

    def stock_for_items(self, item_codes: Sequence[str]) -> list[Raw]:
        """The stock rows of these product codes (retired products too: they sell as 0)."""
        out: list[Raw] = []
        codes = list(dict.fromkeys(item_codes))
        for start in range(0, len(codes), self.page_size):
            out.extend(self._stock([("code", "in", codes[start:start + self.page_size]), ALL]))
        return out

    def _stock(self, domain: list[Any]) -> Iterator[Raw]:
        """``{"product", "code", "warehouse", "quantity", "forecast_quantity"}`` of the products of
        ``domain`` in each warehouse: Tryton computes the quantities of the locations in the
        context, so each warehouse is read on its own (``{"locations": [id]}``), one row per
        product and warehouse (``mappings.tryton_stock`` maps them)."""
        warehouses = self.warehouses()
        offset = 0
        while True:
            ids = self.model("product.product", "search", domain, offset, self.page_size, [["id", "ASC"]])
            for warehouse, code in warehouses:
                with_qty = self._read_with_context("product.product", ids,
                                                   ["code", "quantity", "forecast_quantity"],
                                                   {"locations": [warehouse], "stock_skip_warehouse": False})
                for r in with_qty:
                    yield {"product": r["id"], "code": r["code"], "warehouse": code, "quantity": r["quantity"],
                           "forecast_quantity": r["forecast_quantity"]}
            if len(ids) < self.page_size:
                return
            offset += len(ids)

    def _read_with_context(self, model: str, ids: list[int], fields: list[str], extra: Raw) -> list[Raw]:
        if not ids:
            return []
        with self._lock:
            if self._auth is None:
                self.login()
            context = {**self._context, **extra}
        rows = self._post(f"model.{model}.read", [ids, fields, context], auth=self._auth)
        return [flatten(r) for r in rows]

    def list_prices(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        """One row per product: its list price (its own, else its template's) in the company's
        currency; ``write_date`` is the later change of the product and its template."""
        currency = self.read("company.company", [self._company()], ["currency.code"])[0]["currency.code"]
        for item in self.list_items(updated_since):
            changed = [d for d in (item.get("write_date") or item.get("create_date"),
                                   item.get("template.write_date") or item.get("template.create_date")) if d]
            yield {"code": item["code"], "list_price": item.get("list_price_used") or item.get("list_price"),
                   "currency": currency, "write_date": max(changed) if changed else None}

    def _company(self) -> int:
        with self._lock:
            if self._auth is None:
                self.login()
            return int(self._context["company"])

    # ------------------------------------------------------------------ sales
    def _complete_sales(self, sales: list[Raw]) -> list[Raw]:
        line_ids = [i for s in sales for i in s.get("lines") or []]
        lines = {ln["id"]: ln for ln in self.read("sale.line", line_ids, SALE_LINE_FIELDS)}
        for s in sales:
            s["lines"] = [lines[i] for i in s.get("lines") or [] if i in lines]
        return sales

    def find_sales_order(self, external_ref: str) -> Raw | None:
        rows = self.search_read("sale.sale", [("reference", "=", external_ref)], SALE_FIELDS,
                                order=[["id", "ASC"]], limit=1)
        return self._complete_sales(rows)[0] if rows else None

    def get_sales_order(self, sale_id: int) -> Raw:
        return self._complete_sales(self.read("sale.sale", [sale_id], SALE_FIELDS))[0]

    def create_sales_order(self, payload: Raw, *, idempotency_key: str) -> Raw:
        """A confirmed sale: looked up by ``reference`` first (Tryton does not enforce it unique); a sale
        a lost answer left in draft or quotation is taken forward, never created twice.

        ``payload``: ``{"reference", "party" (party code), "sale_date", "currency", "description",
        "comment", "shipment_address": {street, postal_code, city, country}, "lines": [{"product"
        (code), "quantity", "unit_price", "description"}, {"type": "comment", "description"}]}``.
        """
        sale = self.find_sales_order(payload["reference"])
        if sale is None:
            sale = self.get_sales_order(self._create_sale(payload))
        elif sale["state"] in UNBOOKED_STATES:  # left by an earlier try: made again from this payload
            sale = self._renew_sale(sale, payload)
        if sale["state"] in UNBOOKED_STATES:
            self._check_total(sale, payload)  # before confirming: a wrong total stays a draft
        if sale["state"] == "draft":
            self.model("sale.sale", "quote", [sale["id"]], write=True)
            sale["state"] = "quotation"
        if sale["state"] == "quotation":
            self.model("sale.sale", "confirm", [sale["id"]], write=True)
        return self.get_sales_order(sale["id"])

    def _renew_sale(self, sale: Raw, payload: Raw) -> Raw:
        """A draft or quotation an earlier try left (its confirm failed, or its answer was lost):
        back to draft, its warehouse and lines written again from ``payload`` (the configuration or
        the tax mapping may have been fixed since), so taking it forward books what is asked now."""
        if sale["state"] == "quotation":
            self.model("sale.sale", "draft", [sale["id"]], write=True)
        old = [ln["id"] for ln in sale.get("lines") or []]
        values: dict[str, Any] = {"lines": [["delete", old], ["create", self._sale_lines(payload)]] if old
                                  else [["create", self._sale_lines(payload)]]}
        warehouse = self._sale_warehouse(payload)
        if warehouse is not None:
            values["warehouse"] = warehouse
        self.model("sale.sale", "write", [sale["id"]], values, write=True)
        return self.get_sales_order(sale["id"])

    def _check_total(self, sale: Raw, payload: Raw) -> None:
        """Tryton's computed total (its taxes included) against the store's ``expected_total``:
        further apart than ``total_tolerance`` (default 0.01) -> ``TrytonError`` with body error
        ``tax_mismatch``; the sale stays a draft, never confirmed."""
        if payload.get("expected_total") is None:
            return
        expected = Decimal(str(payload["expected_total"]))
        tolerance = Decimal(str(payload.get("total_tolerance") or "0.01"))
        got = Decimal(str(sale.get("total_amount") or 0))
        if abs(got - expected) <= tolerance:
            return
        codes = sorted({str(t.get("code")) for ln in payload.get("lines") or [] for t in ln.get("taxes") or []})
        unmapped = [c for c in codes if self._tax_name(c, None) is None]
        hint = (f"; no Tryton tax mapped for the store's {', '.join(unmapped)} (Connection extra tax_map)"
                if unmapped else "")
        raise TrytonError(
            f"tax_mismatch: Tryton sale {sale.get('number') or sale['id']} totals {got} (untaxed "
            f"{sale.get('untaxed_amount')}, tax {sale.get('tax_amount')}) against the store's {expected} "
            f"{payload.get('currency') or ''} (difference {got - expected}, tolerance {tolerance}){hint}; "
            "left in draft, not confirmed", system=self.system,
            body={"error": "tax_mismatch", "erp_total": str(got), "store_total": str(expected)})

    def _tax_name(self, code: str, rate: Any) -> str | None:
        """The Tryton tax a store tax maps to: by its code, else by ``rate:<percent>``."""
        if code in self.tax_map:
            return self.tax_map[code]
        if rate is not None:
            key = f"rate:{Decimal(str(rate)).normalize():f}"
            return self.tax_map.get(key)
        return None

    def _sale_taxes(self, taxes: list[Raw]) -> list[int]:
        """Tryton tax ids of a line's store taxes through ``tax_map`` (unmapped ones: none, and the
        total check holds the order as ``tax_mismatch``)."""
        ids = []
        for t in taxes:
            name = self._tax_name(str(t.get("code")), t.get("rate"))
            if name is not None:
                ids.append(self.id_of("account.tax", "name", name))
        return sorted(set(ids))

    def _sale_warehouse(self, payload: Raw) -> int | None:
        """The warehouse the sale is booked on: the payload's (the flow's configuration: per store
        location, channel, or the Connection's default), else Tryton's only warehouse. With several
        warehouses and none named, Tryton cannot confirm the sale: refused here with the fix."""
        code = payload.get("warehouse")
        if code:
            rows = self.search_read("stock.location", [("code", "=", str(code)), ("type", "=", "warehouse")],
                                    ["id"], limit=1)
            if not rows:
                raise TrytonError(f"warehouse_unknown: Tryton has no warehouse with code {code!r} (fix "
                                  "sale_warehouse / sale_warehouses_by_* on the ERP Connection)",
                                  system=self.system, body={"error": "warehouse_unknown"})
            return int(rows[0]["id"])
        found = self.model("stock.location", "search", [("type", "=", "warehouse")], 0, 2, [["id", "ASC"]])
        if len(found) > 1:
            raise TrytonError("warehouse_required: Tryton has several warehouses and no sale warehouse is "
                              "configured: set extra sale_warehouse (or sale_warehouses_by_location / "
                              "_by_channel) on the ERP Connection", system=self.system,
                              body={"error": "warehouse_required"})
        return int(found[0]) if found else None

    def _sale_lines(self, payload: Raw) -> list[Raw]:
        lines = []
        for ln in payload["lines"]:
            if ln.get("type") == "comment":
                lines.append({"type": "comment", "description": ln.get("description") or ""})
                continue
            product = self.id_of("product.product", "code", str(ln["product"]))
            unit = self.read("product.product", [product], ["sale_uom"])[0]["sale_uom"]
            line = {"type": "line", "product": product, "unit": unit, "quantity": float(ln["quantity"]),
                    "unit_price": Decimal(str(ln["unit_price"])), "description": ln.get("description") or ""}
            taxes = self._sale_taxes(ln.get("taxes") or [])
            if taxes:
                line["taxes"] = [["add", taxes]]
            lines.append(line)
        return lines

    def _create_sale(self, payload: Raw) -> int:
        party_id = self.id_of("party.party", "code", str(payload["party"]))
        party = self._complete_parties(self.read("party.party", [party_id], PARTY_FIELDS))[0]
        ship_to = self._address_for(party, payload.get("shipment_address"))
        invoice_to = next((a["id"] for a in party["addresses"] if a.get("invoice")), None) or ship_to
        warehouse = self._sale_warehouse(payload)
        lines = self._sale_lines(payload)
        values = {
            "party": party_id, "reference": payload["reference"], "warehouse": warehouse,
            "currency": self.id_of("currency.currency", "code", payload.get("currency") or "USD"),
            "invoice_address": invoice_to, "shipment_address": ship_to,
            "sale_date": dt.date.fromisoformat(str(payload["sale_date"])[:10]) if payload.get("sale_date") else None,
            "description": payload.get("description") or "", "comment": payload.get("comment") or "",
            "invoice_method": "manual", "shipment_method": "order",
            "lines": [["create", lines]],
        }
        sale_id, = self.model("sale.sale", "create", [{k: v for k, v in values.items() if v is not None}],
                              write=True)
        return sale_id

    def _address_for(self, party: Raw, address: Raw | None) -> int:
        """The party's address matching ``address`` (street, postcode, city), added when missing."""
        if address:
            for a in party["addresses"]:
                if (a.get("street"), a.get("postal_code"), a.get("city")) == (
                        address.get("street"), address.get("postal_code"), address.get("city")):
                    return int(a["id"])
            values = self._address_values({**address, "party": party["id"]})
            values["party"] = party["id"]
            return int(self.model("party.address", "create", [values], write=True)[0])
        if party["addresses"]:
            return int(party["addresses"][0]["id"])
        return int(self.model("party.address", "create", [{"party": party["id"]}], write=True)[0])

    # ------------------------------------------------------------------ shipments
    def _complete_shipments(self, shipments: list[Raw]) -> list[Raw]:
        move_ids = [i for s in shipments for i in s.get("outgoing_moves") or []]
        moves = {m["id"]: m for m in self.read("stock.move", move_ids, MOVE_FIELDS)}
        package_ids = [i for s in shipments for i in s.get("packages") or []]
        packages = {p["id"]: p for p in self.read("stock.package", package_ids, PACKAGE_FIELDS)}
        for s in shipments:
            s["outgoing_moves"] = [moves[i] for i in s.get("outgoing_moves") or [] if i in moves]
            s["packages"] = [packages[i] for i in s.get("packages") or [] if i in packages]
            refs = {m.get("sale.reference") for m in s["outgoing_moves"] if m.get("sale.reference")}
            s["sale_reference"] = sorted(refs)[0] if refs else None
            numbers = {m.get("sale.number") for m in s["outgoing_moves"] if m.get("sale.number")}
            s["sale_number"] = sorted(numbers)[0] if numbers else None
        return shipments

    def list_shipments(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        batch: list[Raw] = []
        for shipment in self.window_pages("stock.shipment.out", changed_in(updated_since, updated_before),
                                          SHIPMENT_FIELDS):
            batch.append(shipment)
            if len(batch) >= self.page_size:
                yield from self._complete_shipments(batch)
                batch = []
        yield from self._complete_shipments(batch)

    # ------------------------------------------------------------------ returns
    def create_return(self, payload: Raw, *, idempotency_key: str) -> Raw:
        """A return sale (Tryton's own way: a sale with negative lines whose ``origin`` is the sold
        sale, as its "Return Sale" wizard makes), priced like the sold lines, confirmed (that
        creates the return shipment). Looked up by ``reference`` first (Tryton does not enforce it
        unique), and one a lost answer left in draft or quotation is taken forward.

        ``payload``: ``{"reference" (the store return id), "sale" (the sold sale's number),
        "lines": [{"product" (code), "quantity" (positive: returned), "description"}]}``.
        """
        existing = self.find_return(str(payload["reference"]))
        if existing is None:
            sold = self.search_read("sale.sale", [("number", "=", str(payload["sale"]))], SALE_FIELDS, limit=1)
            if not sold:
                raise TrytonError(f"Tryton has no sale {payload['sale']!r} to return from", system=self.system,
                                  status=404)
            sale = self._complete_sales(sold)[0]
            prices = {ln.get("product.code"): ln.get("unit_price") for ln in sale["lines"] if ln.get("type") == "line"}
            lines = []
            for ln in payload["lines"]:
                if ln["product"] not in prices:
                    raise TrytonError(f"sale {sale['number']} has no line of product {ln['product']!r} to return",
                                      system=self.system)
                lines.append({"product": ln["product"], "quantity": -abs(float(ln["quantity"])),
                              "unit_price": prices[ln["product"]], "description": ln.get("description") or ""})
            sale_id = self._create_sale({
                "reference": payload["reference"], "party": sale["party.code"], "currency": sale.get("currency.code"),
                "description": f"Return of {sale['number']} ({sale.get('reference') or ''})", "lines": lines})
            self.model("sale.sale", "write", [sale_id], {"origin": f"sale.sale,{sale['id']}"}, write=True)
            existing = self._complete_returns(self.read("sale.sale", [sale_id], SALE_FIELDS))[0]
        if existing["state"] == "draft":
            self.model("sale.sale", "quote", [existing["id"]], write=True)
            existing["state"] = "quotation"
        if existing["state"] == "quotation":
            self.model("sale.sale", "confirm", [existing["id"]], write=True)
            existing = self._complete_returns(self.read("sale.sale", [existing["id"]], SALE_FIELDS))[0]
        return existing

    def find_return(self, external_ref: str) -> Raw | None:
        """The return sale whose reference is the store return id, if any."""
        rows = self.search_read("sale.sale", [("reference", "=", external_ref), ("lines.quantity", "<", 0)],
                                SALE_FIELDS, order=[["id", "ASC"]], limit=1)
        return self._complete_returns(rows)[0] if rows else None

    def _complete_returns(self, sales: list[Raw]) -> list[Raw]:
        """A return sale with its lines, the sold sale it returns (``origin_sale``: number and
        reference), its return shipments with where the received goods went, and its posted
        credit notes (only with a chart of accounts; none on the test ERP)."""
        sales = self._complete_sales(sales)
        if not sales:
            return sales
        extra = {r["id"]: r for r in self.read("sale.sale", [s["id"] for s in sales], ["origin", "invoices"])}
        origin_ids = {int(str(e["origin"]).split(",")[1]) for e in extra.values()
                      if str(e.get("origin") or "").startswith("sale.sale,")}
        origins = {r["id"]: r for r in self.read("sale.sale", sorted(origin_ids), ["number", "reference"])}
        ship_ids = [i for s in sales for i in s.get("shipment_returns") or []]
        ships = {r["id"]: r for r in self.read("stock.shipment.out.return", ship_ids, RETURN_SHIPMENT_FIELDS)}
        move_ids = [i for r in ships.values() for i in r.get("inventory_moves") or []]
        moves = {m["id"]: m for m in self.read("stock.move", move_ids, RETURN_MOVE_FIELDS)}
        invoice_ids = [i for e in extra.values() for i in e.get("invoices") or []]
        invoices = {i["id"]: i for i in self.read("account.invoice", invoice_ids,
                                                   ["number", "state", "total_amount"])}
        for s in sales:
            e = extra.get(s["id"], {})
            origin = str(e.get("origin") or "")
            sold = origins.get(int(origin.split(",")[1])) if origin.startswith("sale.sale,") else None
            s["origin_sale"] = {"number": sold.get("number"), "reference": sold.get("reference")} if sold else None
            s["return_shipments"] = []
            for sid in s.get("shipment_returns") or []:
                if sid in ships:
                    ship = dict(ships[sid])
                    ship["inventory_moves"] = [moves[i] for i in ship.get("inventory_moves") or [] if i in moves]
                    s["return_shipments"].append(ship)
            s["credit_notes"] = [invoices[i] for i in e.get("invoices") or []
                                 if i in invoices and invoices[i].get("state") in ("posted", "paid")]
        return sales

    def list_returns(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        """Return sales (any negative line) changed in [since, before), completed as ``find_return``."""
        domain = [("lines.quantity", "<", 0), *changed_in(updated_since, updated_before)]
        batch: list[Raw] = []
        for sale in self.window_pages("sale.sale", domain, SALE_FIELDS):
            batch.append(sale)
            if len(batch) >= self.page_size:
                yield from self._complete_returns(batch)
                batch = []
        yield from self._complete_returns(batch)

    def list_sales_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        """Sales (not return sales) changed since the time, with their lines."""
        domain = [("lines", "not where", [("quantity", "<", 0)]), *changed_in(updated_since, None)]
        batch: list[Raw] = []
        for sale in self.window_pages("sale.sale", domain, SALE_FIELDS):
            batch.append(sale)
            if len(batch) >= self.page_size:
                yield from self._complete_sales(batch)
                batch = []
        yield from self._complete_sales(batch)

    # ------------------------------------------------------------------ personal data
    def anonymize_customer(self, erp_id: str, *, idempotency_key: str) -> Raw:
        """Erase a party the way Tryton allows: its own "Erase" wizard (``party.erase``) replaces the
        name, addresses, contact mechanisms and identifiers (history too) and keeps the documents.
        Tryton erases only an inactive party without pending sales, shipments or balances, so the
        party is deactivated first and reactivated when Tryton refuses; the refusal (its message
        names the pending document) is a PermanentError. Erasing an erased party again is harmless."""
        rows = self.search_read("party.party", [("code", "=", erp_id), ("active", "in", [True, False])],
                                ["code", "active", "name", "rec_name"], limit=1)
        if not rows:
            raise TrytonError(f"Tryton has no party with code {erp_id!r}", system=self.system, status=404)
        party_id, was_active = rows[0]["id"], bool(rows[0]["active"])
        if was_active:
            self.model("party.party", "write", [party_id], {"active": False}, write=True)
        try:
            session = self.call("wizard.party.erase.create")[0]
            try:
                self.call("wizard.party.erase.execute", session, {"ask": {"party": party_id}}, "erase", write=True)
            finally:
                self.call("wizard.party.erase.delete", session)
        except TrytonError as exc:
            if was_active:
                self.model("party.party", "write", [party_id], {"active": True}, write=True)
            # Tryton names the party in its message: keep its code only (the reason is kept and logged)
            text = str(exc)
            for name in {str(rows[0].get(k) or "") for k in ("rec_name", "name")} - {""}:
                text = text.replace(name, f"party {erp_id}")
            raise TrytonError(f"Tryton refused to erase party {erp_id}: {text}", system=self.system,
                              status=exc.status) from None
        return {"customer_no": erp_id, "status": "anonymised",
                "anonymised_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _rpc_error(method: str, error: Any) -> Exception:
    """Tryton's error list -> our error kinds (a refused call is permanent; a conflict is transient)."""
    name = str(error[0]) if isinstance(error, list) and error else str(error)
    detail = error[1] if isinstance(error, list) and len(error) > 1 else ""
    if isinstance(detail, list) and detail:
        detail = detail[0]
    text = f"Tryton {method}: {name}" + (f": {detail}" if detail else "")
    if name in ("ConcurrencyException", "DatabaseOperationalError", "TimeoutException", "RateLimitException"):
        return TransientError(text, system="erp")
    if name in ("LoginException", "NotLogged"):
        return AuthError(text, system="erp", status=401)
    return TrytonError(text, system="erp", body=error)
