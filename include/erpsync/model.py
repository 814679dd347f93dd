"""Canonical records: the one shape every flow maps into and out of.

Adapters return raw records of their system; mappings turn them into these types; flows and rules
work only on these. Money is always :class:`decimal.Decimal` with its currency next to it, never a
float: a constructor that receives a float raises, so a float cannot sneak in through a mapping.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class ModelError(ValueError):
    """A canonical record was built from an invalid value."""


def money(value: Any, *, field_name: str = "amount") -> Decimal:
    """Coerce ``value`` to Decimal; floats are refused (they lose cents)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ModelError(f"{field_name}: {value!r} is not a finite amount")
        return value
    if isinstance(value, bool) or isinstance(value, float):
        raise ModelError(f"{field_name}: {value!r} is a {type(value).__name__}; money must be Decimal or str")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except Exception as exc:  # decimal.InvalidOperation
            raise ModelError(f"{field_name}: {value!r} is not a number") from exc
        if not d.is_finite():
            raise ModelError(f"{field_name}: {value!r} is not a finite amount")
        return d
    raise ModelError(f"{field_name}: {value!r} ({type(value).__name__}) cannot be read as money")


def identifier(value: Any) -> Any:
    """A code (SKU, item code, order id) in Unicode NFKC: ``ＳＫＵ－１`` and ``SKU-1`` are one code.
    Codes that still hold invisible characters or mix scripts are refused by the quality gate
    (``erpsync.limits.identifier_problem``: ``suspicious_identifier``)."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def _check_currency(code: str, field_name: str = "currency") -> str:
    if not (isinstance(code, str) and len(code) == 3 and code.isalpha() and code.isupper()):
        raise ModelError(f"{field_name}: {code!r} is not an ISO 4217 code (three upper-case letters)")
    return code


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", money(self.amount))
        _check_currency(self.currency)

    def __add__(self, other: Money) -> Money:
        if self.currency != other.currency:
            raise ModelError(f"cannot add {self.currency} and {other.currency}")
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        if self.currency != other.currency:
            raise ModelError(f"cannot subtract {other.currency} from {self.currency}")
        return Money(self.amount - other.amount, self.currency)


class Record:
    """Mixin for canonical records: stable JSON form and content hash."""

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)  # type: ignore[return-value]

    def content_hash(self) -> str:
        """Hash of the content, used to skip writes of records that did not change."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, list | tuple):
        return [_to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- catalog


@dataclass(slots=True)
class Variant(Record):
    sku: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    barcode: str | None = None
    weight_grams: int | None = None
    uom: str = "EA"
    active: bool = True

    def __post_init__(self) -> None:
        self.sku = identifier(self.sku)


@dataclass(slots=True)
class Product(Record):
    code: str
    name: str
    description: str = ""
    category: str | None = None
    brand: str | None = None
    variants: list[Variant] = field(default_factory=list)
    is_kit: bool = False
    kit_components: dict[str, int] = field(default_factory=dict)  # component sku -> qty per kit
    active: bool = True
    updated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        self.code = identifier(self.code)


@dataclass(slots=True)
class InventoryLevel(Record):
    sku: str
    location: str
    on_hand: int
    allocated: int = 0
    reserved: int = 0
    damaged: int = 0
    quarantined: int = 0
    safety_stock: int = 0
    backorderable: bool = False
    restock_date: dt.date | None = None
    updated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        for name in ("on_hand", "allocated", "reserved", "damaged", "quarantined", "safety_stock"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ModelError(f"inventory {self.sku}@{self.location}: {name}={v!r} is not a whole quantity")


class PriceKind(enum.StrEnum):
    BASE = "base"
    SALE = "sale"
    GROUP = "group"
    CUSTOMER = "customer"


@dataclass(slots=True)
class PriceEntry(Record):
    sku: str
    price: Decimal
    currency: str
    kind: PriceKind = PriceKind.BASE
    price_list: str = "default"
    customer_group: str | None = None
    customer_id: str | None = None
    min_quantity: int = 1  # quantity break: price applies from this quantity up
    effective_from: dt.datetime | None = None
    effective_to: dt.datetime | None = None
    cost: Decimal | None = None

    def __post_init__(self) -> None:
        self.sku = identifier(self.sku)
        self.price = money(self.price, field_name=f"price of {self.sku}")
        if self.cost is not None:
            self.cost = money(self.cost, field_name=f"cost of {self.sku}")
        _check_currency(self.currency)
        if self.min_quantity < 1:
            raise ModelError(f"price of {self.sku}: min_quantity {self.min_quantity} < 1")
        if self.effective_from and self.effective_to and self.effective_to <= self.effective_from:
            raise ModelError(f"price of {self.sku}: effective_to is not after effective_from")


# --------------------------------------------------------------------------- customers


@dataclass(slots=True)
class Address(Record):
    line1: str
    city: str
    postcode: str
    country: str  # ISO 3166-1 alpha-2
    line2: str = ""
    region: str = ""
    name: str = ""
    company: str = ""
    phone: str = ""
    kind: str = "billing"  # billing | shipping

    def __post_init__(self) -> None:
        if not (isinstance(self.country, str) and len(self.country) == 2 and self.country.isupper()):
            raise ModelError(f"address country {self.country!r} is not an ISO 3166-1 alpha-2 code")


@dataclass(slots=True)
class Customer(Record):
    external_id: str  # id in the source system
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    phone: str = ""
    group: str | None = None
    tax_exempt: bool = False
    tax_exemption_id: str | None = None
    payment_terms: str | None = None
    credit_limit: Decimal | None = None
    currency: str = "USD"
    addresses: list[Address] = field(default_factory=list)
    is_guest: bool = False
    updated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.credit_limit is not None:
            self.credit_limit = money(self.credit_limit, field_name=f"credit_limit of {self.external_id}")
        _check_currency(self.currency)

    @property
    def normalised_email(self) -> str:
        return normalise_email(self.email)


def normalise_email(email: str) -> str:
    """Lower-case and trimmed; used for duplicate matching."""
    return (email or "").strip().lower()


# --------------------------------------------------------------------------- orders


@dataclass(slots=True)
class TaxLine(Record):
    code: str
    rate: Decimal
    amount: Decimal
    jurisdiction: str = ""

    def __post_init__(self) -> None:
        self.rate = money(self.rate, field_name="tax rate")
        self.amount = money(self.amount, field_name=f"tax {self.code}")


@dataclass(slots=True)
class Discount(Record):
    code: str
    amount: Decimal
    kind: str = "coupon"  # coupon | line | automatic

    def __post_init__(self) -> None:
        self.amount = money(self.amount, field_name=f"discount {self.code}")


@dataclass(slots=True)
class OrderLine(Record):
    line_id: str
    sku: str
    quantity: int
    unit_price: Decimal
    name: str = ""
    discount: Decimal = Decimal("0")
    taxes: list[TaxLine] = field(default_factory=list)
    item_code: str | None = None  # ERP item code, filled by the cross-reference lookup

    def __post_init__(self) -> None:
        self.sku = identifier(self.sku)
        self.unit_price = money(self.unit_price, field_name=f"unit_price of line {self.line_id}")
        self.discount = money(self.discount, field_name=f"discount of line {self.line_id}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise ModelError(f"line {self.line_id}: quantity {self.quantity!r} must be a positive whole number")

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity - self.discount


@dataclass(slots=True)
class Payment(Record):
    method: str  # storefront payment method code; mapped to an ERP code by the mapping
    amount: Decimal
    reference: str = ""
    status: str = "captured"  # authorized | captured | refunded
    erp_method: str | None = None

    def __post_init__(self) -> None:
        self.amount = money(self.amount, field_name=f"payment {self.method}")


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    REFUNDED = "refunded"


@dataclass(slots=True)
class Order(Record):
    external_id: str  # storefront order id: the idempotency key of the ERP write
    number: str
    customer_external_id: str | None
    customer_email: str
    currency: str
    placed_at: dt.datetime
    lines: list[OrderLine]
    status: OrderStatus = OrderStatus.PENDING
    shipping_method: str = ""
    shipping_amount: Decimal = Decimal("0")
    shipping_address: Address | None = None
    billing_address: Address | None = None
    payments: list[Payment] = field(default_factory=list)
    taxes: list[TaxLine] = field(default_factory=list)
    discounts: list[Discount] = field(default_factory=list)
    total: Decimal = Decimal("0")
    exchange_rate: Decimal = Decimal("1")  # to the ERP's company currency
    is_guest: bool = False
    updated_at: dt.datetime | None = None
    #: where the store sold it: its sales channel and the store location it is fulfilled from (if
    #: the store says); ``warehouse`` is the ERP warehouse chosen for it (rules.orders.sale_warehouse)
    channel: str | None = None
    location: str | None = None
    warehouse: str | None = None

    def __post_init__(self) -> None:
        self.external_id = identifier(self.external_id)
        _check_currency(self.currency)
        self.shipping_amount = money(self.shipping_amount, field_name=f"shipping of order {self.external_id}")
        self.total = money(self.total, field_name=f"total of order {self.external_id}")
        self.exchange_rate = money(self.exchange_rate, field_name=f"exchange rate of order {self.external_id}")
        if not self.lines:
            raise ModelError(f"order {self.external_id} has no lines")

    def computed_total(self) -> Decimal:
        """lines + shipping + tax - order discounts (line discounts are inside line totals)."""
        lines = sum((ln.total for ln in self.lines), Decimal("0"))
        tax = sum((t.amount for t in self.taxes), Decimal("0")) + sum(
            (t.amount for ln in self.lines for t in ln.taxes), Decimal("0")
        )
        disc = sum((d.amount for d in self.discounts), Decimal("0"))
        return lines + self.shipping_amount + tax - disc


# --------------------------------------------------------------------------- shipments and returns


@dataclass(slots=True)
class ShipmentLine(Record):
    sku: str
    quantity: int
    order_line_id: str | None = None


@dataclass(slots=True)
class Package(Record):
    carrier: str
    tracking_number: str
    lines: list[ShipmentLine] = field(default_factory=list)
    shipped_at: dt.datetime | None = None


@dataclass(slots=True)
class Shipment(Record):
    external_id: str  # ERP shipment id
    order_external_id: str  # storefront order id
    packages: list[Package]
    status: str = "shipped"  # pending | shipped | delivered | cancelled
    updated_at: dt.datetime | None = None


@dataclass(slots=True)
class ReturnLine(Record):
    sku: str
    quantity: int
    reason: str
    disposition: str = "pending"  # restock | scrap | repair | pending
    refund_amount: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        self.sku = identifier(self.sku)
        self.refund_amount = money(self.refund_amount, field_name=f"refund of return line {self.sku}")


@dataclass(slots=True)
class Return(Record):
    rma: str
    order_external_id: str
    lines: list[ReturnLine]
    currency: str
    status: str = "requested"  # requested | received | credited | refunded | rejected
    credit_memo_id: str | None = None
    credit_memo_amount: Decimal | None = None
    refund_amount: Decimal | None = None
    updated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        _check_currency(self.currency)
        if self.credit_memo_amount is not None:
            self.credit_memo_amount = money(self.credit_memo_amount, field_name=f"credit memo of {self.rma}")
        if self.refund_amount is not None:
            self.refund_amount = money(self.refund_amount, field_name=f"refund of {self.rma}")
