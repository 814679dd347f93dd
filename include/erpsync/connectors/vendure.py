"""Adapter for Vendure 3.7 over the Admin GraphQL API (``/admin-api``).

Auth: ``login(username, password)`` answers with the bearer token in the ``vendure-auth-token``
header; the token is sent as ``Authorization: Bearer``. When the Connection carries no user
(extra ``username``), its password is taken as a ready token. A 401/``FORBIDDEN`` answer after the
token expired logs in again once.

Raw records are Vendure's GraphQL objects as the queries below select them (money in minor
units, ints). ``erpsync.mappings.storefront_vendure`` maps them. The order's external id is its
``code``; ``Order.customFields.externalId`` is a unique custom field (real-systems/vendure/index.js)
for orders created through the API, so a retried create cannot make a second order.

Writes are idempotent by their natural keys: a product upsert finds variants by SKU (the product
by a variant, else by its slug); prices and stock are set as absolute values; a fulfilment is
looked up by its tracking code before it is added; a refund by its reason (which carries the
return's RMA) before it is made.

Returns and erasure requests, which Vendure has no entity for: a return is a refund recorded with
lines (settled once, when the ERP credits it); an erasure request is a customer in the group
``erasure-requested`` (see ``erpsync.mappings.vendure_transactions``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from erpsync.connectors.base import Raw, StorefrontAdapter
from erpsync.connectors.capabilities import Capabilities
from erpsync.connectors.http import HttpClient, RetryPolicy
from erpsync.errors import AuthError, ConfigError, PermanentError, TransientError

ADDRESS = "fullName company streetLine1 streetLine2 city province postalCode country phoneNumber countryCode"
CUSTOMER = """id emailAddress firstName lastName phoneNumber title createdAt updatedAt
  addresses { id fullName company streetLine1 streetLine2 city province postalCode phoneNumber
              country { code } defaultShippingAddress defaultBillingAddress }"""
ORDER = f"""id code state active orderPlacedAt createdAt updatedAt currencyCode
  customer {{ id emailAddress firstName lastName }}
  lines {{ id quantity unitPrice unitPriceWithTax linePrice linePriceWithTax proratedLinePrice
          proratedLinePriceWithTax discounts {{ amount description }} taxLines {{ description taxRate }}
          productVariant {{ id sku name }} }}
  shippingLines {{ id shippingMethod {{ code name }} price priceWithTax }}
  shipping shippingWithTax subTotal subTotalWithTax total totalWithTax
  discounts {{ description amount amountWithTax type }}
  shippingAddress {{ {ADDRESS} }} billingAddress {{ {ADDRESS} }}
  payments {{ id method amount state transactionId refunds {{ id total reason state }} }}
  fulfillments {{ id state method trackingCode lines {{ orderLineId quantity }} }}
  channels {{ code }}
  customFields {{ externalId }}"""
VARIANT = """id sku name price priceWithTax currencyCode enabled stockOnHand stockAllocated trackInventory
  updatedAt product { id name slug } stockLevels { stockLocation { name } stockOnHand stockAllocated }"""
PRODUCT = f"""id name slug description enabled createdAt updatedAt variants {{ {VARIANT} }}"""
#: a variant's stock levels per stock location (inventory_sync)
STOCK_VARIANT = "id sku stockLevels { stockLocationId stockOnHand stockAllocated }"
#: a refund as a return: Vendure keeps the order lines a refund takes back as RefundLines
REFUND = "id createdAt updatedAt total reason state transactionId method paymentId metadata lines { orderLineId quantity }"
RETURN_ORDER = """id code state updatedAt orderPlacedAt currencyCode customer { id }
  lines { id quantity unitPrice unitPriceWithTax linePrice linePriceWithTax discounts { amount }
          taxLines { taxRate } productVariant { sku } }"""
RETURN_ORDER_PAYMENTS = f"""{RETURN_ORDER} payments {{ id method amount state refunds {{ {REFUND} }} }}"""
#: customer groups that stand for erasure requests (Vendure has none of its own)
ERASURE_REQUESTED = "erasure-requested"
ERASURE_DONE = "erasure-done"
CUSTOMER_BRIEF = "id emailAddress updatedAt"


def return_id(order_code: str, refund_id: str) -> str:
    """The store return id of a refund with lines: ``<order code>-R<refund id>``."""
    return f"{order_code}-R{refund_id}"


def split_return_id(rid: str) -> tuple[str, str]:
    """``<order code>-R<refund id>`` -> (order code, refund id); ValueError for anything else."""
    code, sep, refund = str(rid).rpartition("-R")
    if not sep or not code or not refund.isdigit():
        raise ValueError(f"{rid!r} is not a Vendure return id (<order code>-R<refund id>)")
    return code, refund


def _code(text: str) -> str:
    """A Vendure code (option groups, options): lower case, URL-safe."""
    return "".join(ch if ch.isalnum() else "-" for ch in str(text).lower()).strip("-") or "x"


#: the time of a record without one, in the keyset paging's memory of what it gave
_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


def _parse(text: str) -> dt.datetime:
    """A time as Vendure shows it (``2026-12-07T20:12:52.806Z``)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class VendureStorefrontAdapter(StorefrontAdapter):
    """Vendure storefront; ``base_url`` is the server (``http://host:3000``)."""
    #: the capability matrix (erpsync.connectors.capabilities)
    capabilities = Capabilities(
        name="Vendure 3.7", multi_location_stock=True, rmas=True, erasure=True, expiring_sessions=True,
        notes=(("price_lists", "Vendure has no customer-group or customer-specific price lists "
                               "(either needs a plugin)"),
               ("quantity_breaks", "Vendure has no quantity-break prices"),
               ("multi_currency_prices", "erpsync sets Vendure prices in the channel currency only"),
               ("webhooks", "no webhooks on a default install: the flows poll by updatedAt on their crons"),
               ("bulk_stock_export", "stock levels are read per variant page through GraphQL"),
               ("resumable_paging", "no read_page: a migration re-reads and skips on a resume"),
               ("idempotency_keys", "Vendure has none: a write is looked up first"),
               ("rate_limits", "Vendure 3.7 has no built-in API rate limiting")))

    system = "storefront"
    mapping = "erpsync.mappings.storefront_vendure"
    inventory_batch_limit = 100
    price_batch_limit = 100

    def __init__(
        self, base_url: str, token: str, *, username: str | None = None, timeout: float = 30.0,
        page_size: int = 100, retry: RetryPolicy | None = None, connection_id: str = "storefront_default",
        channel_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = "/admin-api" if not self.base_url.endswith("/admin-api") else ""
        self.username = username
        self._secret = token
        self._token: str | None = None if username else token
        self.page_size = min(page_size, 100)  # Vendure's default shopListQueryLimit/adminListQueryLimit
        self.connection_id = connection_id
        headers = {"vendure-token": channel_token} if channel_token else {}
        self.http = HttpClient(self.base_url, system=self.system, timeout=(min(3.05, timeout), timeout), retry=retry,
                               headers=headers)
        # keys go on queries and the login only (``gql``: mutations carry none), so a keyed request is
        # safe to resend; Vendure itself has no idempotency keys
        self.http.key_replay = True
        self._lock = threading.Lock()
        self._currency: str | None = None

    # ------------------------------------------------------------------ GraphQL
    def login(self, *, retry: RetryPolicy | None = None) -> str:
        resp = self.http.request(
            "POST", self.api, retry=retry, idempotency_key="login",
            json={"query": "mutation($u:String!,$p:String!){login(username:$u,password:$p){"
                           "__typename ... on CurrentUser{id} ... on ErrorResult{errorCode message}}}",
                  "variables": {"u": self.username, "p": self._secret}})
        result = ((resp.body or {}).get("data") or {}).get("login") or {}
        token = resp.headers.get("vendure-auth-token")
        if result.get("__typename") != "CurrentUser" or not token:
            raise AuthError(f"Vendure refused the login of {self.username!r}: {result.get('message') or resp.body}",
                            system=self.system, status=401, body=resp.body)
        self._token = token
        return token

    def gql(self, query: str, *, write: bool = False, retry: RetryPolicy | None = None, **variables: Any) -> Any:
        """One GraphQL call; ``write`` marks mutations (a lost answer is then an UnknownOutcomeError)."""
        for attempt in (1, 2):
            with self._lock:
                token = self._token or self.login(retry=retry)
            resp = self.http.request(
                "POST", self.api, json={"query": query, "variables": variables}, retry=retry,
                headers={"Authorization": f"Bearer {token}"}, idempotency_key=None if write else "query",
                allow_statuses=(401,))
            body = resp.body if isinstance(resp.body, dict) else {}
            errors = body.get("errors") or []
            codes = {((e.get("extensions") or {}).get("code")) for e in errors}
            if (resp.status == 401 or "FORBIDDEN" in codes) and self.username and attempt == 1:
                with self._lock:
                    if self._token == token:
                        self._token = None
                continue
            if resp.status == 401 or "FORBIDDEN" in codes:
                raise AuthError(f"Vendure refused the token: {errors}", system=self.system, status=401, body=body)
            if errors:
                raise PermanentError(f"Vendure: {'; '.join(str(e.get('message')) for e in errors)}",
                                     system=self.system, status=resp.status, body=body)
            return body.get("data")
        raise AssertionError("unreachable")  # pragma: no cover

    def _list(self, field: str, selection: str, *, filter: Raw | None = None, sort: Raw | None = None,
              type_prefix: str) -> Iterator[Raw]:
        """Offset pages in ``id`` order: only for listings whose records keep their place (a
        change-time listing pages with :meth:`_list_by_time`)."""
        skip = 0
        query = (f"query($o:{type_prefix}ListOptions){{{field}(options:$o){{items{{{selection}}} totalItems}}}}")
        while True:
            options: Raw = {"skip": skip, "take": self.page_size, "sort": sort or {"id": "ASC"}}
            if filter:
                options["filter"] = filter
            page = self.gql(query, o=options)[field]
            yield from page["items"]
            skip += len(page["items"])
            if not page["items"] or skip >= page["totalItems"]:
                return

    def _list_by_time(self, field: str, selection: str, *, key: str, filter: Raw | None = None,
                      type_prefix: str) -> Iterator[Raw]:
        """Keyset pages on the time field ``key`` (ASC): each page asks for the records after the
        last time read, so a record changed while the listing is paged (an order paid or shipped
        mid-run: its ``updatedAt`` jumps to now) moves to the end without shifting the unread
        ones, which offset paging would (the first record of the next page would never be read,
        and the flow's cursor would then move past it). The changed record may be read again in
        its new version. Rules (checked on Vendure 3.7, conformance suite):

        * Vendure keeps microseconds and shows milliseconds, and ``after`` is strict: the next page
          asks ``after`` the last time read minus 1 ms, so records sharing its millisecond are not
          skipped, and drops the (id, time) pairs it has already given.
        * Vendure applies several sort fields in its schema's order (``id`` before ``updatedAt``),
          not the request's, so no id tie-break is possible: when a whole page shares one
          millisecond, the next page keeps that bound and skips what was read (offset paging only
          within those times).
        """
        query = (f"query($o:{type_prefix}ListOptions){{{field}(options:$o){{items{{{selection}}}}}}}")
        window = dict((filter or {}).get(key) or {})
        low: dt.datetime | None = _parse(window["after"]) if window.get("after") else None
        skip, untimed = 0, False
        given: dict[tuple[str, str], dt.datetime] = {}  # (id, time) read at or after ``low``
        while True:
            # PostgreSQL sorts records without the time (an order not placed yet) last: they are
            # read after the others, by offset, with ``isNull``
            ops = {"isNull": True} if untimed else {**window, **({"after": iso(low)} if low is not None else {})}
            options: Raw = {"skip": skip, "take": self.page_size, "sort": {key: "ASC"},
                            "filter": {**(filter or {}), **({key: ops} if ops else {})}}
            if not options["filter"]:
                del options["filter"]
            items = self.gql(query, o=options)[field]["items"]
            for item in items:
                mark = (str(item["id"]), str(item.get(key)))
                if mark not in given:
                    given[mark] = _parse(item[key]) if item.get(key) else _NEVER
                    yield item
            if len(items) < self.page_size:
                if untimed or window or low is None:
                    return
                untimed, skip = True, 0  # our ``after`` left them out: the caller asked for all
                continue
            if untimed or not items[-1].get(key):
                skip = skip + len(items) if untimed else 0
                untimed = True
                continue
            bound = _parse(items[-1][key]) - dt.timedelta(milliseconds=1)
            if low is not None and bound <= low:
                skip += len(items)  # the page did not get past one millisecond: go on within it
            else:
                low, skip = bound, 0
                given = {m: at for m, at in given.items() if at >= low}

    def ping(self) -> None:
        fix = f"start Vendure (scripts/real-systems.sh up) or fix the host of Connection {self.connection_id}"
        try:
            self.gql("{ activeAdministrator { id } }", retry=RetryPolicy.none())
        except AuthError:
            raise ConfigError(f"Vendure at {self.base_url} refused the credentials: set the superadmin user as extra "
                              f"username and its password as the password of Connection {self.connection_id}"
                              ) from None
        except TransientError as exc:
            raise ConfigError(f"Vendure at {self.base_url} is unreachable ({exc}): {fix}") from None
        except PermanentError as exc:
            raise ConfigError(f"Vendure at {self.base_url}: {exc}: {fix}") from None

    @staticmethod
    def _updated(updated_since: dt.datetime | None, updated_before: dt.datetime | None = None) -> Raw | None:
        ops: Raw = {}
        if updated_since is not None:
            # [since, before): Vendure's ``after`` is strict (>) and its times are milliseconds, so
            # one millisecond earlier keeps a record changed at ``since`` itself (conformance suite)
            ops["after"] = iso(updated_since - dt.timedelta(milliseconds=1))
        if updated_before is not None:
            ops["before"] = iso(updated_before)
        return {"updatedAt": ops} if ops else None

    # ------------------------------------------------------------------ customers
    def list_customers(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._list_by_time("customers", CUSTOMER, key="updatedAt", filter=self._updated(updated_since),
                                  type_prefix="Customer")

    def get_customer(self, customer_id: str) -> Raw | None:
        return self.gql(f"query($id:ID!){{customer(id:$id){{{CUSTOMER}}}}}", id=customer_id)["customer"]

    # ------------------------------------------------------------------ orders
    def list_orders(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        """Placed orders (carts and drafts are not orders yet)."""
        flt = self._updated(updated_since, updated_before) or {}
        flt["active"] = {"eq": False}
        return self._list_by_time("orders", ORDER, key="updatedAt", filter=flt, type_prefix="Order")

    def get_order(self, order_id: str) -> Raw | None:
        """By code (the external id), or by Vendure id."""
        found = self.gql(f"query($o:OrderListOptions){{orders(options:$o){{items{{{ORDER}}}}}}}",
                         o={"filter": {"code": {"eq": order_id}}, "take": 1})["orders"]["items"]
        if found:
            return found[0]
        if order_id.isdigit():
            return self.gql(f"query($id:ID!){{order(id:$id){{{ORDER}}}}}", id=order_id)["order"]
        return None

    # ------------------------------------------------------------------ catalog
    def list_products(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return self._list("products", PRODUCT, filter=self._updated(updated_since), type_prefix="Product")

    def find_variants(self, skus: list[str]) -> dict[str, Raw]:
        """The variants of these SKUs, by SKU (one query per page of 100); unknown SKUs are absent."""
        out: dict[str, Raw] = {}
        wanted = list(dict.fromkeys(skus))
        for start in range(0, len(wanted), self.page_size):
            chunk = wanted[start:start + self.page_size]
            found = self.gql(
                f"query($o:ProductVariantListOptions){{productVariants(options:$o){{items{{{VARIANT}}}}}}}",
                o={"filter": {"sku": {"in": chunk}}, "take": len(chunk)})["productVariants"]["items"]
            out.update({v["sku"]: v for v in found if v["sku"] in chunk})
        return out

    def find_product_by_slug(self, slug: str) -> Raw | None:
        found = self.gql(f"query($o:ProductListOptions){{products(options:$o){{items{{{PRODUCT}}}}}}}",
                         o={"filter": {"slug": {"eq": slug}}, "take": 1})["products"]["items"]
        return found[0] if found else None

    def upsert_product(self, payload: Raw, *, idempotency_key: str) -> Raw:
        """``payload``: ``{"name", "slug", "enabled", "variants": [{"sku", "name", "enabled", "price"
        (minor units, optional)}]}`` (``description`` only when given: it is the store's copy).

        Idempotent by natural key: the product is found by a variant's SKU, else by its slug (a
        create whose answer was lost), and variants by SKU, so a retry updates, never duplicates.
        ``price`` is a new variant's first price; an existing variant keeps its price (pricing_sync
        sets prices, through the price guard). A new variant's ``options`` (``{"Size": "M"}``)
        become Vendure product options (the product's option groups, made where missing): Vendure
        refuses a second variant that no option tells apart."""
        variants = payload.get("variants") or []
        existing = self.find_variants([v["sku"] for v in variants])
        product_id = next((v["product"]["id"] for v in existing.values()), None)
        if product_id is None:
            by_slug = self.find_product_by_slug(payload["slug"])
            product_id = by_slug["id"] if by_slug else None
        translation = {"languageCode": "en", "name": payload["name"], "slug": payload["slug"]}
        if payload.get("description") is not None:
            translation["description"] = payload["description"]
        if product_id is None:
            product_id = self.gql(
                "mutation($i:CreateProductInput!){createProduct(input:$i){id}}", write=True,
                i={"enabled": payload.get("enabled", True),
                   "translations": [{"description": "", **translation}]})["createProduct"]["id"]
        else:
            self.gql("mutation($i:UpdateProductInput!){updateProduct(input:$i){id}}", write=True,
                     i={"id": product_id, "enabled": payload.get("enabled", True), "translations": [translation]})
        new = [v for v in variants if v["sku"] not in existing]
        options = self._option_ids(product_id, payload["slug"], new) if any(v.get("options") for v in new) else {}
        create, update = [], []
        for v in variants:
            common = {"translations": [{"languageCode": "en", "name": v.get("name") or payload["name"]}],
                      "enabled": v.get("enabled", True)}
            if v["sku"] in existing:
                update.append({"id": existing[v["sku"]]["id"], "sku": v["sku"], **common})
            else:
                create.append({"productId": product_id, "sku": v["sku"], "price": int(v.get("price") or 0),
                               "stockOnHand": int(v.get("stock_on_hand", 0)),
                               **({"optionIds": options[v["sku"]]} if v["sku"] in options else {}), **common})
        if create:
            self.gql("mutation($i:[CreateProductVariantInput!]!){createProductVariants(input:$i){id}}", write=True,
                     i=create)
        if update:
            self.gql("mutation($i:[UpdateProductVariantInput!]!){updateProductVariants(input:$i){id}}", write=True,
                     i=update)
        return self.gql(f"query($id:ID!){{product(id:$id){{{PRODUCT}}}}}", id=product_id)["product"]

    def _option_ids(self, product_id: str, product_slug: str, variants: list[Raw]) -> dict[str, list[str]]:
        """Vendure tells a product's variants apart by options: each variant's ``options``
        (``{"Size": "M"}``) as option ids, the groups and options made where missing."""
        groups = {g["name"]: g for g in self.gql(
            "query($id:ID!){product(id:$id){optionGroups{id code name options{id code name}}}}",
            id=product_id)["product"]["optionGroups"]}
        out: dict[str, list[str]] = {}
        for v in variants:
            ids = []
            for name, value in (v.get("options") or {}).items():
                group = groups.get(name)
                if group is None:
                    group = self.gql(
                        "mutation($i:CreateProductOptionGroupInput!){createProductOptionGroup(input:$i){"
                        "id code name options{id code name}}}", write=True,
                        i={"code": _code(f"{product_slug}-{name}"),
                           "translations": [{"languageCode": "en", "name": name}], "options": []},
                    )["createProductOptionGroup"]
                    self.gql("mutation($p:ID!,$g:ID!){addOptionGroupToProduct(productId:$p,optionGroupId:$g){id}}",
                             write=True, p=product_id, g=group["id"])
                    groups[name] = group
                option = next((o for o in group["options"] if o["name"] == value), None)
                if option is None:
                    option = self.gql(
                        "mutation($i:CreateProductOptionInput!){createProductOption(input:$i){id code name}}",
                        write=True, i={"productOptionGroupId": group["id"], "code": _code(value),
                                       "translations": [{"languageCode": "en", "name": value}]},
                    )["createProductOption"]
                    group["options"].append(option)
                ids.append(option["id"])
            out[v["sku"]] = ids
        return out

    # ------------------------------------------------------------------ prices
    def channel_currency(self) -> str:
        """The channel's default currency: the one variant prices are set in (read once)."""
        if self._currency is None:
            self._currency = str(self.gql("{activeChannel{defaultCurrencyCode}}")["activeChannel"]
                                 ["defaultCurrencyCode"])
        return self._currency

    def set_variant_prices(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        """``items``: ``[{"sku", "price" (minor units), "currency"}]``, set as the variants' price in
        the channel's default currency; all or nothing: an unknown SKU or another currency refuses
        the whole call (``PermanentError``, the unknown SKUs in ``body["errors"]``). Absolute values:
        a retry sets the same prices. Vendure has no compare-at price; ``compare_at_price`` is not
        sent (the sale price is what the variant costs during the sale)."""
        if len(items) > self.price_batch_limit:
            raise ValueError(f"{len(items)} prices in one call; split into batches of {self.price_batch_limit}")
        currency = self.channel_currency()
        wrong = sorted({str(i["currency"]) for i in items if i.get("currency") and i["currency"] != currency})
        if wrong:
            raise PermanentError(f"Vendure channel prices are in {currency}, not {', '.join(wrong)}: set param "
                                 f"shop_currency to {currency}", system=self.system, status=422)
        variants = self.find_variants([i["sku"] for i in items])
        unknown = [i["sku"] for i in items if i["sku"] not in variants]
        if unknown:
            raise PermanentError(f"Vendure has no variant with SKU {', '.join(unknown[:10])}", system=self.system,
                                 status=422, body={"errors": [{"sku": s, "message": "unknown sku"} for s in unknown]})
        updates = [{"id": variants[i["sku"]]["id"], "price": int(i["price"])} for i in items]
        if updates:
            self.gql("mutation($i:[UpdateProductVariantInput!]!){updateProductVariants(input:$i){id}}", write=True,
                     i=updates)
        return {"updated": len(updates)}

    # ------------------------------------------------------------------ stock
    def list_inventory(self) -> Iterator[Raw]:
        return self._list("productVariants", VARIANT, type_prefix="ProductVariant")

    def list_locations(self) -> list[str] | None:
        """The ids of the channel's stock locations (the store locations of inventory_sync)."""
        return [str(loc["id"]) for loc in self._list("stockLocations", "id name", type_prefix="StockLocation")]

    @staticmethod
    def _levels(variants: Iterable[Raw]) -> Iterator[Raw]:
        for v in variants:
            for lv in v.get("stockLevels") or []:
                yield {"sku": v["sku"], "stockLocationId": str(lv["stockLocationId"]),
                       "stockOnHand": lv["stockOnHand"], "stockAllocated": lv["stockAllocated"]}

    def export_inventory(self) -> Iterator[Raw]:
        """Every variant's stock level at every stock location: ``{"sku", "stockLocationId",
        "stockOnHand", "stockAllocated"}`` (``mappings.vendure_stock.store_level_of``)."""
        return self._levels(self._list("productVariants", STOCK_VARIANT, type_prefix="ProductVariant"))

    def inventory_for(self, skus: Sequence[str]) -> list[Raw]:
        """The stock levels of these SKUs (as ``export_inventory``); unknown SKUs have none."""
        return list(self._levels(self._variants_by_sku(skus, STOCK_VARIANT).values()))

    def _variants_by_sku(self, skus: Sequence[str], selection: str) -> dict[str, Raw]:
        out: dict[str, Raw] = {}
        wanted = list(dict.fromkeys(skus))
        for start in range(0, len(wanted), self.page_size):
            chunk = wanted[start:start + self.page_size]
            found = self.gql(
                f"query($o:ProductVariantListOptions){{productVariants(options:$o){{items{{{selection}}}}}}}",
                o={"filter": {"sku": {"in": chunk}}, "take": len(chunk)})["productVariants"]["items"]
            out.update({v["sku"]: v for v in found if v["sku"] in chunk})
        return out

    def set_inventory(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        """Absolute levels (a retry sets the same value), all or nothing: ``items`` are
        ``[{"sku", "location_id", "available"}]`` (``available`` is what Vendure may sell there:
        the location's ``stockOnHand`` becomes ``available`` plus its ``stockAllocated``, read in
        this call, so Vendure's own allocations are not taken off twice;
        ``backorderable``/``restock_date`` have no place in Vendure and are ignored), or
        ``[{"sku", "stock_on_hand"}]`` (raw, for the channel's default location). An unknown SKU
        refuses the call before anything is written (``PermanentError`` whose ``body["errors"]``
        name each refused item's index, as the sandbox does)."""
        if len(items) > self.inventory_batch_limit:
            raise ValueError(f"{len(items)} inventory items in one call; split into batches of "
                             f"{self.inventory_batch_limit}")
        found = self._variants_by_sku([i["sku"] for i in items], STOCK_VARIANT)
        errors = [{"index": n, "error": f"unknown_sku: Vendure has no variant with SKU {i['sku']!r}"}
                  for n, i in enumerate(items) if i["sku"] not in found]
        if errors:
            raise PermanentError(f"Vendure: {len(errors)} unknown SKU(s) in set_inventory", system=self.system,
                                 status=422, body={"errors": errors})
        updates: dict[str, Raw] = {}
        for item in items:
            update = updates.setdefault(item["sku"], {"id": found[item["sku"]]["id"]})
            if "location_id" in item:
                allocated = next((int(lv.get("stockAllocated") or 0) for lv in found[item["sku"]].get("stockLevels")
                                  or [] if str(lv.get("stockLocationId")) == str(item["location_id"])), 0)
                update.setdefault("stockLevels", []).append(
                    {"stockLocationId": str(item["location_id"]),
                     "stockOnHand": max(0, int(item["available"])) + allocated})
            else:
                update["stockOnHand"] = int(item["stock_on_hand"])
        if updates:
            self.gql("mutation($i:[UpdateProductVariantInput!]!){updateProductVariants(input:$i){id}}", write=True,
                     i=list(updates.values()))
        return {"updated": len(items)}

    # ------------------------------------------------------------------ fulfilments and refunds
    def add_fulfillment(self, order_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        """``payload``: ``{"tracking_code", "carrier", "lines": [{"sku", "quantity"}], "state": "Shipped"}``.
        A fulfilment with the same tracking code on the order is returned, not added again."""
        order = self.get_order(order_id)
        if order is None:
            raise PermanentError(f"Vendure has no order {order_id}", system=self.system, status=404)
        fulfillment = next((f for f in order["fulfillments"] or []
                            if f.get("trackingCode") == payload["tracking_code"]), None)
        if fulfillment is None:
            by_sku = {ln["productVariant"]["sku"]: ln["id"] for ln in order["lines"]}
            lines = []
            for ln in payload["lines"]:
                if ln["sku"] not in by_sku:
                    raise PermanentError(f"order {order_id} has no line with SKU {ln['sku']}", system=self.system)
                lines.append({"orderLineId": by_sku[ln["sku"]], "quantity": int(ln["quantity"])})
            args = [{"name": "method", "value": payload.get("carrier") or ""},
                    {"name": "trackingCode", "value": payload["tracking_code"]}]
            result = self.gql(
                "mutation($i:FulfillOrderInput!){addFulfillmentToOrder(input:$i){__typename "
                "... on Fulfillment{id state method trackingCode} ... on ErrorResult{errorCode message}}}",
                write=True, i={"lines": lines, "handler": {"code": "manual-fulfillment", "arguments": args}},
            )["addFulfillmentToOrder"]
            if result["__typename"] != "Fulfillment":
                raise PermanentError(f"Vendure refused the fulfilment of {order_id}: {result.get('message')}",
                                     system=self.system, body=result)
            fulfillment = result
        target = payload.get("state", "Shipped")
        path = {"Pending": [], "Shipped": ["Shipped"], "Delivered": ["Shipped", "Delivered"]}[target]
        for state in path:
            if fulfillment["state"] in ("Shipped", "Delivered") and state == "Shipped":
                continue
            if fulfillment["state"] == state:
                continue
            moved = self.gql(
                "mutation($id:ID!,$s:String!){transitionFulfillmentToState(id:$id,state:$s){__typename "
                "... on Fulfillment{id state method trackingCode} ... on ErrorResult{errorCode message}}}",
                write=True, id=fulfillment["id"], s=state)["transitionFulfillmentToState"]
            if moved["__typename"] != "Fulfillment":
                raise PermanentError(f"Vendure refused fulfilment state {state}: {moved.get('message')}",
                                     system=self.system, body=moved)
            fulfillment = moved
        return fulfillment

    # ------------------------------------------------------------------ returns (refunds with lines)
    #: Vendure cannot filter orders by their refunds' change time (a refund does not touch the
    #: order's updatedAt): returns are looked for on the orders placed this many days before the window
    returns_lookback_days = 90

    @staticmethod
    def _as_returns(order: Raw) -> list[Raw]:
        """The order's refunds that take goods back (with lines), each with its order (no payments)."""
        head = {k: v for k, v in order.items() if k != "payments"}
        return [{**refund, "order": head} for payment in order.get("payments") or []
                for refund in payment.get("refunds") or [] if any(ln.get("quantity") for ln in refund.get("lines") or [])]

    def list_returns(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        """Refunds with lines changed in [since, before) (see ``erpsync.mappings.vendure_transactions``):
        the orders placed since ``returns_lookback_days`` before the window are read, oldest first."""
        flt: Raw = {"active": {"eq": False}}
        if updated_since is not None:
            flt["orderPlacedAt"] = {"after": iso(updated_since - dt.timedelta(days=self.returns_lookback_days))}
        since, before = (iso(t) if t is not None else None for t in (updated_since, updated_before))
        found = []
        for order in self._list_by_time("orders", RETURN_ORDER_PAYMENTS, key="orderPlacedAt", filter=flt,
                                        type_prefix="Order"):
            for ret in self._as_returns(order):
                changed = iso(dt.datetime.fromisoformat(ret["updatedAt"].replace("Z", "+00:00")))
                if (since is None or changed >= since) and (before is None or changed < before):
                    found.append(ret)
        yield from sorted(found, key=lambda r: (r["updatedAt"], int(r["id"])))

    def _order_for_return(self, rid: str) -> tuple[Raw, str] | None:
        try:
            code, refund_id = split_return_id(rid)
        except ValueError:
            return None
        found = self.gql(f"query($o:OrderListOptions){{orders(options:$o){{items{{{RETURN_ORDER_PAYMENTS}}}}}}}",
                         o={"filter": {"code": {"eq": code}}, "take": 1})["orders"]["items"]
        return (found[0], refund_id) if found else None

    def get_return(self, return_id: str) -> Raw | None:
        hit = self._order_for_return(return_id)
        if hit is None:
            return None
        order, refund_id = hit
        return next((r for r in self._as_returns(order) if str(r["id"]) == refund_id), None)

    def update_return(self, return_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        """``payload``: ``{"status", "note"}``: a private note on the order (Vendure keeps no
        return status); the same note already there is not added again."""
        hit = self._order_for_return(return_id)
        if hit is None:
            raise PermanentError(f"Vendure has no return {return_id}", system=self.system, status=404)
        order, _ = hit
        note = f"Return {return_id}: {payload['note']}"
        history = self.gql("query($id:ID!){order(id:$id){history(options:{take:1000}){items{type data}}}}",
                           id=order["id"])["order"]["history"]["items"]
        if not any(h["type"] == "ORDER_NOTE" and (h.get("data") or {}).get("note") == note for h in history):
            self.gql("mutation($i:AddNoteToOrderInput!){addNoteToOrder(input:$i){id}}", write=True,
                     i={"id": order["id"], "note": note, "isPublic": False})
        return {"id": return_id, "status": payload.get("status"), "note": note}

    def refund_return(self, return_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        """Settle the return's refund: ``payload`` ``{"transaction_id", "amount" (minor units or
        None)}``. A settled refund is returned as it is; a failed one, or a pending one whose total
        is not ``amount``, is refused (Vendure cannot change a refund's amount)."""
        refund = self.get_return(return_id)
        if refund is None:
            raise PermanentError(f"Vendure has no return {return_id}", system=self.system, status=404)
        if refund["state"] == "Settled":
            return {"refund": refund}
        if refund["state"] != "Pending":
            raise PermanentError(f"the refund of return {return_id} is {refund['state']} in Vendure; refund it "
                                 "again there by hand", system=self.system, status=409)
        wanted = payload.get("amount")
        if wanted is not None and int(wanted) != int(refund["total"]):
            raise PermanentError(
                f"refund_amount_differs: Vendure's refund of return {return_id} is {refund['total']} minor units, "
                f"the ERP credited {wanted} ({payload.get('transaction_id')}); Vendure cannot change a refund's "
                "amount: correct it in Vendure or replay with param refund_amount=storefront",
                system=self.system, status=409)
        settled = self.gql(
            f"mutation($i:SettleRefundInput!){{settleRefund(input:$i){{__typename ... on Refund{{{REFUND}}} "
            "... on ErrorResult{errorCode message}}}", write=True,
            i={"id": refund["id"], "transactionId": str(payload["transaction_id"])})["settleRefund"]
        if settled["__typename"] != "Refund":
            raise PermanentError(f"Vendure refused to settle the refund of return {return_id}: "
                                 f"{settled.get('message')}", system=self.system, body=settled)
        return {"refund": {**settled, "order": refund["order"]}}

    # ------------------------------------------------------------------ erasure requests (customer groups)
    def _group(self, name: str, *, create: bool = False) -> Raw | None:
        found = self.gql("query($o:CustomerGroupListOptions){customerGroups(options:$o){items{id name}}}",
                         o={"filter": {"name": {"eq": name}}, "take": 1})["customerGroups"]["items"]
        if found or not create:
            return found[0] if found else None
        return self.gql("mutation($i:CreateCustomerGroupInput!){createCustomerGroup(input:$i){id name}}",
                        write=True, i={"name": name})["createCustomerGroup"]

    def list_erasure_requests(self, status: str | None = "pending") -> list[Raw]:
        """The customers of the group ``erasure-requested`` (``pending``) or ``erasure-done``
        (``completed``); raw customers (id, e-mail, updatedAt)."""
        names = {"pending": [ERASURE_REQUESTED], "completed": [ERASURE_DONE], None: [ERASURE_REQUESTED, ERASURE_DONE]}
        if status not in names:
            raise ConfigError(f"Vendure erasure requests are pending or completed, not {status!r}")
        out: list[Raw] = []
        for name in names[status]:
            group = self._group(name)
            if group is None:
                continue
            skip = 0
            while True:
                page = self.gql(
                    f"query($id:ID!,$o:CustomerListOptions){{customerGroup(id:$id){{customers(options:$o){{"
                    f"items{{{CUSTOMER_BRIEF}}} totalItems}}}}}}", id=group["id"],
                    o={"skip": skip, "take": self.page_size, "sort": {"id": "ASC"}})["customerGroup"]["customers"]
                out.extend(page["items"])
                skip += len(page["items"])
                if not page["items"] or skip >= page["totalItems"]:
                    break
        return out

    def complete_erasure_request(self, request_id: str, payload: Raw, *, idempotency_key: str) -> Raw:
        """Move the customer from ``erasure-requested`` to ``erasure-done`` with a private note
        (``payload["note"]``: no personal data); done again, it changes nothing."""
        done = self._group(ERASURE_DONE, create=True)
        assert done is not None  # created when missing
        self.gql("mutation($g:ID!,$c:[ID!]!){addCustomersToGroup(customerGroupId:$g,customerIds:$c){id}}",
                 write=True, g=done["id"], c=[request_id])
        requested = self._group(ERASURE_REQUESTED)
        if requested is not None:
            self.gql("mutation($g:ID!,$c:[ID!]!){removeCustomersFromGroup(customerGroupId:$g,customerIds:$c){id}}",
                     write=True, g=requested["id"], c=[request_id])
        if payload.get("note"):
            self.gql("mutation($i:AddNoteToCustomerInput!){addNoteToCustomer(input:$i){id}}", write=True,
                     i={"id": request_id, "note": f"erasure request completed: {payload['note']}", "isPublic": False})
        return {"id": request_id, "status": "completed"}
