"""Deterministic, lazy seed data shared by the simulated ERP and storefront.

Nothing is generated up front: record ``i`` of a table is derived on demand from ``(seed, table, i)``
with its own seeded RNG, so a sandbox of 1,000,000 SKU-locations starts in milliseconds and uses
almost no memory. Mutations live in an overlay (:class:`LazyTable`). Seeded records carry
timestamps that grow with their index, which turns ``updated_since`` into a binary search.
Both services build the same :class:`Dataset` from the same options, so storefront SKUs equal ERP
item SKUs and shared customer emails line up.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

Raw = dict[str, Any]

#: seeded records are spread over the year before SEED_END; live changes are stamped "now"
SEED_END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()
SEED_SPAN = 365 * 24 * 3600.0

FIRST = ["Anna", "Ben", "Carla", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Klara",
         "Liam", "Maria", "Noah", "Olga", "Paul", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wim", "Yara", "Zoe"]
LAST = ["Garcia", "Smith", "Müller", "Rossi", "Dubois", "Novak", "Jensen", "Kowalski", "Silva", "Brown",
        "Nguyen", "Okafor", "Schmidt", "Tanaka", "Weber", "Young", "Ivanova", "Larsen", "Moreau", "Patel"]
COMPANY = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
           "Tyrell", "Cyberdyne", "Wonka", "Gringotts", "Monarch", "Oceanic", "Pied Piper"]
SUFFIX = ["GmbH", "Ltd", "Inc", "LLC", "SARL", "BV"]
NOUNS = ["Widget", "Gadget", "Bracket", "Valve", "Sprocket", "Hinge", "Cable", "Lamp", "Filter", "Pump",
         "Sensor", "Bolt", "Panel", "Switch", "Hose", "Clamp", "Gear", "Fan", "Tray", "Mount"]
ADJ = ["Steel", "Brass", "Compact", "Heavy-duty", "Blue", "Red", "Mini", "Pro", "Eco", "Classic",
       "Smart", "Quiet", "Outdoor", "Deluxe"]
WAREHOUSES = ["MAIN", "EAST", "WEST", "NORTH", "SOUTH", "CENTRAL", "DOCK", "OVERFLOW"]
COUNTRIES = [  # country, city, state, postcode format
    ("US", "Springfield", "IL", "62{:03d}"), ("US", "Austin", "TX", "78{:03d}"),
    ("GB", "London", "", "SW{:d} 1AA"), ("DE", "Berlin", "BE", "10{:03d}"),
    ("FR", "Lyon", "", "69{:03d}"), ("NL", "Utrecht", "UT", "35{:02d} AB"),
    ("CA", "Toronto", "ON", "M5V {:d}A1"),
]
CURRENCY_RATES = {"USD": Decimal("1"), "EUR": Decimal("0.92"), "GBP": Decimal("0.79"), "CAD": Decimal("1.36")}
TAX_BY_COUNTRY = {"US": ("US-STATE", Decimal("0.0725")), "GB": ("GB-VAT", Decimal("0.20")),
                  "DE": ("DE-VAT", Decimal("0.19")), "FR": ("FR-VAT", Decimal("0.20")),
                  "NL": ("NL-VAT", Decimal("0.21")), "CA": ("CA-HST", Decimal("0.13"))}
CENT = Decimal("0.01")

TABLE_IDS = {"item": 1, "stock": 2, "price": 3, "erp_customer": 4, "person": 5, "sf_customer": 6,
             "sf_order": 7, "sf_product": 8, "sf_inventory": 9, "malformed": 10, "generate": 11}


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def iso(ts: float) -> str:
    """Epoch seconds -> ``2026-11-23T10:00:00Z`` (the wire format of every time)."""
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> float:
    """ISO 8601 (``Z`` or offset, or a date) -> epoch seconds; ValueError when it is not a time."""
    text = value.strip().replace(" ", "+") if value else value
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def now() -> float:
    """The sandbox clock: wall time, never earlier than the seeded data."""
    return max(time.time(), SEED_END + 1)


def rng_for(seed: int, table: str, index: int) -> random.Random:
    return random.Random((seed * 1_000_003 + TABLE_IDS[table]) * 1_000_000_007 + index)


def seed_time(index: int, count: int) -> float:
    """Monotonic timestamp of seeded record ``index`` among ``count`` (whole seconds)."""
    return float(int(SEED_END - SEED_SPAN + SEED_SPAN * index / max(count, 1)))


def seed_times(lo: int, hi: int, count: int) -> list[int]:
    """``int(seed_time(i, count))`` for each i in [lo, hi), in one pass (the bulk exports)."""
    base, n = SEED_END - SEED_SPAN, max(count, 1)
    return [int(base + SEED_SPAN * i / n) for i in range(lo, hi)]


def constant(record: Raw) -> Callable[[int], Raw]:
    """``make`` of :meth:`LazyTable.add` for a record built already (whatever index it gets)."""
    return lambda _index: record


class LazyTable:
    """Records derived from their index, plus an overlay of changed or added records.

    Records are ordered by index; the order never changes when records are modified, so keyset
    pagination (cursor = last index seen) never loses or repeats a record. ``updated_since`` is
    inclusive, ``updated_before`` exclusive.
    """

    def __init__(self, count: int, make: Callable[[int], Raw], base_time: Callable[[int], float]) -> None:
        self.count = count
        self._make = make
        self._base_time = base_time
        self.overlay: dict[int, Raw] = {}
        self._overlay_time: dict[int, float] = {}
        self._added = 0

    def __len__(self) -> int:
        return self.count + self._added

    def get(self, index: int) -> Raw | None:
        if index in self.overlay:
            return self.overlay[index]
        if 0 <= index < self.count:
            return self._make(index)
        return None

    def put(self, index: int, record: Raw, at: float) -> None:
        self.overlay[index] = record
        self._overlay_time[index] = at

    def add(self, make: Callable[[int], Raw], at: float) -> tuple[int, Raw]:
        index = self.count + self._added
        self._added += 1
        record = make(index)
        self.put(index, record, at)
        return index, record

    def time_of(self, index: int) -> float:
        if index in self._overlay_time:
            return self._overlay_time[index]
        return self._base_time(index)

    def _base_range(self, since: float | None, before: float | None) -> tuple[int, int]:
        lo, hi = 0, self.count
        if since is not None:
            lo = _first_at_least(self._base_time, self.count, since)
        if before is not None:
            hi = _first_at_least(self._base_time, self.count, before)
        return lo, max(lo, hi)

    def _plan(self, since: float | None, before: float | None) -> tuple[int, int, list[int], list[int]]:
        lo, hi = self._base_range(since, before)
        skips: list[int] = []
        adds: list[int] = []
        for idx, at in self._overlay_time.items():
            match = (since is None or at >= since) and (before is None or at < before)
            in_range = idx < self.count and lo <= idx < hi
            if in_range and not match:
                skips.append(idx)
            elif match and not in_range:
                adds.append(idx)
        skips.sort()
        adds.sort()
        return lo, hi, skips, adds

    def count_matching(self, since: float | None = None, before: float | None = None) -> int:
        lo, hi, skips, adds = self._plan(since, before)
        return (hi - lo) - len(skips) + len(adds)

    def iter_indices(
        self, since: float | None = None, before: float | None = None, start: int = 0
    ) -> Iterator[int]:
        """Matching indices >= ``start``, ascending."""
        lo, hi, skips, adds = self._plan(since, before)
        skip_set = set(skips)
        low_adds = [a for a in adds if a < lo]
        high_adds = [a for a in adds if a >= hi]
        for a in low_adds:
            if a >= start:
                yield a
        for i in range(max(lo, start), hi):
            if i not in skip_set:
                yield i
        for a in high_adds:
            if a >= start:
                yield a

    def index_at_offset(self, offset: int, since: float | None = None, before: float | None = None) -> int | None:
        """The index of the ``offset``-th matching record (page pagination without a scan)."""
        lo, hi, skips, adds = self._plan(since, before)
        low_adds = [a for a in adds if a < lo]
        high_adds = [a for a in adds if a >= hi]
        if offset < len(low_adds):
            return low_adds[offset]
        offset -= len(low_adds)
        in_range = (hi - lo) - len(skips)
        if offset < in_range:
            idx = lo + offset
            for s in skips:  # sorted: each skip at or before idx pushes it one further
                if s <= idx:
                    idx += 1
                else:
                    break
            return idx
        offset -= in_range
        return high_adds[offset] if offset < len(high_adds) else None


def _first_at_least(fn: Callable[[int], float], count: int, value: float) -> int:
    return bisect.bisect_left(range(count), value, key=fn)


@dataclass(frozen=True)
class SeedOptions:
    seed: int = 42
    skus: int = 200
    locations: int = 3
    customers: int = 2000
    orders: int = 500

    def to_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "skus": self.skus, "locations": self.locations,
                "customers": self.customers, "orders": self.orders}


class Dataset:
    """The seeded world: pure functions of (options, index). Both services build one each."""

    def __init__(self, options: SeedOptions) -> None:
        if options.skus < 1 or options.locations < 1:
            raise ValueError("skus and locations must be at least 1")
        self.o = options
        self.seed = options.seed
        self.warehouses = [
            WAREHOUSES[k] if k < len(WAREHOUSES) else f"WH{k + 1:02d}" for k in range(options.locations)
        ]

    # ------------------------------------------------------------------ people and addresses
    def person(self, index: int) -> tuple[str, str]:
        r = rng_for(self.seed, "person", index)
        return r.choice(FIRST), r.choice(LAST)

    def base_email(self, index: int) -> str:
        first, last = self.person(index)
        return f"{first}.{last}.{index}@example.com".lower().replace("ü", "u")

    def shares_email(self, sf_index: int) -> bool:
        """A few storefront customers are also ERP customers (same email, other case/spaces)."""
        return sf_index % 25 == 3 and sf_index < self.o.customers

    def address(self, r: random.Random) -> dict[str, str]:
        country, city, state, fmt = r.choice(COUNTRIES)
        return {"street": f"{r.randint(1, 999)} {r.choice(LAST)} Street", "street2": r.choice(["", "", "Suite 4"]),
                "city": city, "state": state, "postal_code": fmt.format(r.randint(1, 99)), "country": country}

    # ------------------------------------------------------------------ ERP items, stock, prices
    def item_price(self, item: int) -> Decimal:
        r = rng_for(self.seed, "item", item)
        r.random()
        return q2(Decimal(r.randint(299, 49999)) / 100)

    def item(self, i: int) -> Raw:
        r = rng_for(self.seed, "item", i)
        r.random()
        list_price = q2(Decimal(r.randint(299, 49999)) / 100)
        cost = q2(list_price * Decimal(r.randint(35, 70)) / 100)
        kit: list[Raw] = []
        if i % 50 == 49 and i >= 3:
            kit = [{"item_code": item_code(c), "qty": r.randint(1, 3)}
                   for c in sorted(r.sample(range(i), k=min(3, i)))[: r.randint(2, 3)]]
        return {
            "item_code": item_code(i), "sku": sku(i),
            "description": f"{r.choice(ADJ)} {r.choice(NOUNS)} {i + 1}",
            "uom": r.choice(["EA", "EA", "EA", "BOX", "PK"]), "active": i % 20 != 19,
            "cost": str(cost), "list_price": str(list_price), "currency": "USD",
            "kit_components": kit, "modified_at": iso(seed_time(i, self.o.skus)),
        }

    @property
    def stock_count(self) -> int:
        return self.o.skus * self.o.locations

    def stock(self, j: int) -> Raw:
        item, wh = divmod(j, self.o.locations)
        r = rng_for(self.seed, "stock", j)
        on_hand = r.choice([0, 0, 3, 5, 12, 40, 100, 250]) + r.randint(0, 9) * (j % 3 != 0)
        allocated = min(on_hand, r.choice([0, 0, 0, 1, 2, 5]))
        return {
            "item_code": item_code(item), "warehouse": self.warehouses[wh], "on_hand": on_hand,
            "allocated": allocated, "reserved": min(on_hand - allocated, r.choice([0, 0, 0, 1])),
            "damaged": r.choice([0, 0, 0, 0, 1]), "quarantined": r.choice([0, 0, 0, 0, 0, 2]),
            "safety_stock": r.choice([0, 0, 2, 5]),
            "restock_date": (dt.date(2026, 12, 1) + dt.timedelta(days=r.randint(0, 60))).isoformat()
            if on_hand == 0 else None,
            "modified_at": iso(seed_time(j, self.stock_count)),
        }

    #: per item: list USD, list EUR, list GBP, wholesale USD at 1 / 10 / 50
    PRICE_ROWS = 6
    #: every 20th ERP customer has this many customer-specific prices
    CUSTOMER_PRICES = 3

    @property
    def price_count(self) -> int:
        return self.o.skus * self.PRICE_ROWS + ((self.o.customers + 19) // 20) * self.CUSTOMER_PRICES

    def price(self, p: int) -> Raw:
        base_rows = self.o.skus * self.PRICE_ROWS
        row: Raw = {"customer_group": None, "customer_no": None, "min_qty": 1,
                    "valid_from": "2026-01-01T00:00:00Z", "valid_to": None,
                    "modified_at": iso(seed_time(p, self.price_count))}
        if p < base_rows:
            item, kind = divmod(p, self.PRICE_ROWS)
            usd = self.item_price(item)
            if kind < 3:
                cur = ("USD", "EUR", "GBP")[kind]
                row.update(price_list="LIST" if cur == "USD" else f"LIST-{cur}", currency=cur,
                           price=str(q2(usd * CURRENCY_RATES[cur])))
            else:
                min_qty, factor = {3: (1, "0.85"), 4: (10, "0.80"), 5: (50, "0.72")}[kind]
                row.update(price_list="WHOLESALE", customer_group="wholesale", currency="USD",
                           min_qty=min_qty, price=str(q2(usd * Decimal(factor))))
            row["item_code"] = item_code(item)
            return {"item_code": row.pop("item_code"), **row}
        q = p - base_rows
        cust = (q // self.CUSTOMER_PRICES) * 20
        r = rng_for(self.seed, "price", p)
        item = r.randrange(self.o.skus)
        row.update(price_list=f"CONTRACT-{customer_no(cust)}", customer_no=customer_no(cust),
                   currency=self.erp_customer_currency(cust), min_qty=r.choice([1, 1, 5]),
                   price=str(q2(self.item_price(item) * CURRENCY_RATES[self.erp_customer_currency(cust)]
                                * Decimal("0.70"))),
                   valid_to="2027-06-30T00:00:00Z")
        return {"item_code": item_code(item), **row}

    # ------------------------------------------------------------------ ERP customers
    def erp_customer_currency(self, i: int) -> str:
        return "USD" if i % 7 not in (2, 5) else ("EUR" if i % 7 == 2 else "GBP")

    def erp_customer(self, i: int) -> Raw:
        r = rng_for(self.seed, "erp_customer", i)
        first, last = self.person(i)
        b2b = i % 5 in (0, 1)
        email = self.base_email(i)
        if self.shares_email(i) and i % 2 == 1:
            email = f"{first}.{last}.{i}@Example.COM "
        company = f"{r.choice(COMPANY)} {r.choice(SUFFIX)}" if b2b else ""
        bill = self.address(r)
        ship = dict(bill) if r.random() < 0.7 else self.address(r)
        return {
            "customer_no": customer_no(i), "name": company or f"{first} {last}",
            "email": email, "phone": f"+1-555-{r.randint(1000, 9999)}",
            "customer_group": "wholesale" if b2b else "retail",
            "tax_exempt": b2b and i % 10 == 0, "tax_id": f"VAT{r.randint(10**7, 10**8 - 1)}" if b2b else None,
            "payment_terms": r.choice(["NET30", "NET60"]) if b2b else "PREPAID",
            "credit_limit": str(q2(Decimal(r.choice([5000, 10000, 25000])))) if b2b else "0.00",
            "currency": self.erp_customer_currency(i),
            "addresses": [{"type": "BILL_TO", **bill}, {"type": "SHIP_TO", **ship}],
            "external_ref": None, "modified_at": iso(seed_time(i, self.o.customers)),
        }

    # ------------------------------------------------------------------ storefront customers
    def sf_customer(self, i: int) -> Raw:
        r = rng_for(self.seed, "sf_customer", i)
        if self.shares_email(i):
            first, last = self.person(i)
            email = f" {first}.{last}.{i}@Example.com" if i % 2 == 0 else self.base_email(i)
        else:
            first, last = self.person(1_000_000 + i)
            email = f"{first}.{last}.s{i}@example.net".lower().replace("ü", "u")
        wholesale = i % 9 == 4
        addr = self.address(r)
        sf_addr = {"address1": addr["street"], "address2": addr["street2"], "city": addr["city"],
                   "province": addr["state"], "zip": addr["postal_code"], "country_code": addr["country"],
                   "name": f"{first} {last}", "company": "", "phone": f"+1-555-{r.randint(1000, 9999)}"}
        created = seed_time(i, self.o.customers)
        return {
            "id": sf_customer_id(i), "email": email, "first_name": first, "last_name": last,
            "company": f"{r.choice(COMPANY)} {r.choice(SUFFIX)}" if wholesale else "",
            "phone": sf_addr["phone"], "group": "wholesale" if wholesale else "retail",
            "tax_exempt": wholesale and i % 2 == 0,
            "addresses": [{"type": "billing", **sf_addr}, {"type": "shipping", **sf_addr}],
            "created_at": iso(created - 3600), "updated_at": iso(created),
        }

    # ------------------------------------------------------------------ storefront orders
    def sf_order(self, i: int) -> Raw:
        r = rng_for(self.seed, "sf_order", i)
        created = seed_time(i, self.o.orders)
        guest = r.random() < 0.15
        cust = None if guest else self.sf_customer(r.randrange(self.o.customers)) if self.o.customers else None
        lines = [(r.randrange(self.o.skus), r.randint(1, 4)) for _ in range(r.randint(1, 4))]
        status = r.choices(["paid", "pending", "refunded"], weights=[85, 10, 5])[0]
        cancelled = iso(created + 1800) if r.random() < 0.03 else None
        return self.build_order(
            r, order_index=i, customer=cust, email=cust["email"] if cust else f"guest.{i}@example.org",
            currency=r.choices(["USD", "EUR", "GBP"], weights=[70, 20, 10])[0], lines=lines,
            # updated_at stays below the next order's created_at, so it grows with the index
            created=created, updated=created + int(r.random() * 0.5 * SEED_SPAN / max(self.o.orders, 1)),
            financial_status=status,
            cancelled_at=cancelled, discount_code="WELCOME10" if r.random() < 0.1 else None,
        )

    def build_order(
        self, r: random.Random, *, order_index: int, customer: Raw | None, email: str, currency: str,
        lines: Sequence[tuple[int | str, int]], created: float, updated: float, financial_status: str = "paid",
        cancelled_at: str | None = None, discount_code: str | None = None,
        shipping_address: Raw | None = None, gateway: str | None = None, tax: tuple[str, Decimal] | None = None,
    ) -> Raw:
        """One order with consistent money: total = lines - discounts + line taxes + shipping + shipping tax.

        Taxed by the shipping country (``TAX_BY_COUNTRY``) unless ``tax`` = (code, rate) says otherwise;
        a rate of 0 means no tax at all (no tax lines)."""
        rate = CURRENCY_RATES[currency]
        if shipping_address is None:
            if customer and customer.get("addresses"):
                shipping_address = {k: v for k, v in customer["addresses"][-1].items() if k != "type"}
            else:
                a = self.address(r)
                shipping_address = {"address1": a["street"], "address2": a["street2"], "city": a["city"],
                                    "province": a["state"], "zip": a["postal_code"],
                                    "country_code": a["country"], "name": "Guest Shopper", "company": "",
                                    "phone": ""}
        tax_code, tax_rate = tax or TAX_BY_COUNTRY.get(shipping_address.get("country_code", "US"),
                                                      ("US-STATE", Decimal("0.0725")))
        taxed = tax_rate > 0
        jurisdiction = shipping_address.get("country_code", "US")
        line_items: list[Raw] = []
        subtotal = Decimal("0")
        line_tax = Decimal("0")
        for n, (item, qty) in enumerate(lines, start=1):
            if isinstance(item, str):  # an explicit sku (may be unknown)
                code, title, unit = item, item, Decimal("9.99")
                if item.startswith("SKU-") and item[4:].isdigit() and int(item[4:]) <= self.o.skus:
                    unit = q2(self.item_price(int(item[4:]) - 1) * rate)
                    title = self.item(int(item[4:]) - 1)["description"]
            else:
                code, title, unit = sku(item), self.item(item)["description"], q2(self.item_price(item) * rate)
            disc = q2(unit * qty * Decimal("0.05")) if r.random() < 0.15 else Decimal("0.00")
            item_tax = q2((unit * qty - disc) * tax_rate)
            subtotal += unit * qty - disc
            line_tax += item_tax
            line_items.append({
                "id": f"L{order_index + 100001}-{n}", "sku": code, "title": title, "quantity": qty,
                "price": str(unit), "total_discount": str(disc),
                "tax_lines": [{"title": tax_code, "code": tax_code, "rate": str(tax_rate), "price": str(item_tax),
                               "jurisdiction": jurisdiction}] if taxed else [],
            })
        ship_price = Decimal("0.00") if subtotal > 100 else q2(Decimal("7.95") * rate)
        ship_tax = q2(ship_price * tax_rate)
        discounts = []
        order_disc = Decimal("0.00")
        if discount_code:
            order_disc = q2(min(subtotal, Decimal("10.00") * rate))
            discounts = [{"code": discount_code, "amount": str(order_disc), "type": "fixed_amount"}]
        total = q2(subtotal + line_tax + ship_price + ship_tax - order_disc)
        gateway = gateway or r.choices(["card", "paypal", "gift_card"], weights=[75, 20, 5])[0]
        paid = financial_status in ("paid", "refunded")
        return {
            "id": sf_order_id(order_index), "name": f"#{order_index + 100001}",
            "customer": {"id": customer["id"], "email": customer["email"]} if customer else None,
            "email": email, "currency": currency, "created_at": iso(created), "updated_at": iso(updated),
            "financial_status": financial_status, "cancelled_at": cancelled_at,
            "fulfillment_status": None, "fulfillments": [],
            "line_items": line_items,
            "shipping_lines": [{"code": "STANDARD" if ship_price else "FREE",
                                "title": "Standard shipping" if ship_price else "Free shipping",
                                "price": str(ship_price)}],
            "shipping_address": shipping_address, "billing_address": dict(shipping_address),
            "tax_lines": [{"title": f"{tax_code} shipping", "code": tax_code, "rate": str(tax_rate),
                           "price": str(ship_tax), "jurisdiction": jurisdiction}] if ship_tax else [],
            "discount_codes": discounts,
            "transactions": [{"id": f"T{order_index + 100001}-1", "gateway": gateway, "amount": str(total),
                              "status": "success"}] if paid else [],
            "total_price": str(total),
        }

    # ------------------------------------------------------------------ storefront catalog
    @property
    def sf_product_count(self) -> int:
        """80% of the ERP items (all but every fifth) are already published on the storefront."""
        return self.o.skus - (self.o.skus + 1) // 5

    @staticmethod
    def sf_product_item(k: int) -> int:
        """Item index of seeded product ``k`` (items 4, 9, 14, ... are not published yet)."""
        return (k // 4) * 5 + k % 4

    def sf_product(self, k: int) -> Raw:
        i = self.sf_product_item(k)
        it = self.item(i)
        r = rng_for(self.seed, "sf_product", i)
        price = Decimal(it["list_price"])
        if r.random() < 0.2:  # storefront price drifted from the ERP list price
            price = q2(price * Decimal("1.05"))
        at = seed_time(i, self.o.skus) + 60
        return {
            "id": sf_product_id(i), "handle": it["sku"].lower(), "title": it["description"],
            "description": f"The {it['description']}.", "vendor": "erpsync sandbox",
            "product_type": it["description"].split()[-2], "status": "active" if it["active"] else "archived",
            "tags": [], "variants": [{"sku": it["sku"], "title": "Default", "price": str(price),
                                      "compare_at_price": None, "barcode": None, "weight_grams": r.randint(50, 5000),
                                      "inventory_policy": "deny"}],
            "created_at": iso(at - 86400), "updated_at": iso(at),
        }

    def sf_inventory(self, j: int) -> Raw:
        item, wh = divmod(j, self.o.locations)
        erp = self.stock(j)
        r = rng_for(self.seed, "sf_inventory", j)
        available = max(0, erp["on_hand"] - erp["allocated"] - (r.randint(0, 3) if r.random() < 0.3 else 0))
        return {"sku": sku(item), "location_id": self.warehouses[wh], "available": available,
                "updated_at": iso(seed_time(j, self.stock_count) + 120)}


def item_code(i: int) -> str:
    return f"ITEM-{i + 1:06d}"


def sku(i: int) -> str:
    return f"SKU-{i + 1:06d}"


def customer_no(i: int) -> str:
    return f"CUST-{i + 1:06d}"


def sf_customer_id(i: int) -> str:
    return f"C{i + 100001}"


def sf_order_id(i: int) -> str:
    return f"O{i + 100001}"


def sf_product_id(i: int) -> str:
    return f"P{i + 100001}"


def index_of(key: str, prefix: str, offset: int = 1) -> int | None:
    """``ITEM-000007`` -> 6; None when the key does not have the shape."""
    if not key.startswith(prefix):
        return None
    digits = key[len(prefix):]
    if not digits.isdigit():
        return None
    return int(digits) - offset
