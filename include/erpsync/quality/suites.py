"""The expectation suites, one per canonical entity, kept as code.

A suite is a list of :class:`Check` (plain data: no Great Expectations import here) over the
columns that :func:`row` derives from a canonical record: required fields, types (as shapes:
e-mail, ISO codes), value ranges, allowed currencies and country codes, unique keys, and totals
that add up (``total_diff`` = lines + shipping + tax - discounts - total, within the rounding
policy). ``erpsync.quality.gx`` turns each check into the GX expectation it names.

The suites are also the GX project's expectation suites (``gx/expectations/<suite>.json``,
written by ``python -m erpsync.quality.project`` from :func:`declared`): the configured sets
(allowed currencies and countries) are GX expectation parameters there (``$PARAMETER``), filled
from the settings at each validation, so the versioned JSON does not change with them.

Each check has a ``reason`` (the part of the dead-letter reason that groups failures) and a
``describe`` text a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from erpsync import model
from erpsync.quality import settings

EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: longest code (tracking number, carrier, credit memo number) and free text (a return reason)
#: a record may carry; the stores' columns are shorter than a megabyte of broken input
MAX_CODE = 100
MAX_TEXT = 2000


@dataclass(frozen=True, slots=True)
class Check:
    reason: str  # dead-letter reason key: missing_field, bad_currency, total_mismatch, ...
    expectation: str  # GX expectation class in great_expectations.expectations
    column: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    describe: str = ""
    #: the GX expectation parameter (``$PARAMETER``) standing for ``kwargs["value_set"]`` in the
    #: stored suite: a set that comes from the settings, not from the suite
    param: str | None = None

    @property
    def gx_type(self) -> str:
        """``ExpectColumnValuesToBeInSet`` -> ``expect_column_values_to_be_in_set``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.expectation).lower()


def not_null(column: str) -> Check:
    return Check("missing_field", "ExpectColumnValuesToNotBeNull", column, describe=f"{column} is required")


def unique(column: str) -> Check:
    return Check("duplicate_key", "ExpectColumnValuesToBeUnique", column, describe=f"{column} must be unique in the batch")


def at_least(column: str, low: float, reason: str = "out_of_range") -> Check:
    return Check(reason, "ExpectColumnValuesToBeBetween", column, {"min_value": low}, f"{column} must be >= {low}")


def between(column: str, low: float, high: float, reason: str = "out_of_range") -> Check:
    return Check(
        reason, "ExpectColumnValuesToBeBetween", column, {"min_value": low, "max_value": high},
        f"{column} must be between {low} and {high}",
    )


def in_set(column: str, values: tuple[str, ...], reason: str, what: str, param: str | None = None) -> Check:
    return Check(reason, "ExpectColumnValuesToBeInSet", column, {"value_set": list(values)}, f"{column} must be {what}",
                 param)


def email(column: str) -> Check:
    return Check("bad_email", "ExpectColumnValuesToMatchRegex", column, {"regex": EMAIL_REGEX}, f"{column} must be an e-mail address")


def suite(entity: str) -> list[Check]:
    """The checks of ``entity`` with today's configured currencies and countries."""
    currencies = settings.allowed_currencies()
    countries = settings.allowed_countries()
    tol = settings.TOTAL_TOLERANCE
    currency = in_set("currency", currencies, "bad_currency", f"one of the allowed currencies {', '.join(currencies)}",
                      "allowed_currencies")
    country = in_set("country", countries, "bad_country", "an ISO 3166-1 alpha-2 country code", "allowed_countries")
    if entity == "order":
        return [
            not_null("external_id"), unique("external_id"), not_null("number"), not_null("placed_at"),
            currency, country, not_null("customer_email"), email("customer_email"),
            at_least("line_count", 1), at_least("min_line_quantity", 1), at_least("min_unit_price", 0),
            at_least("shipping_amount", 0), at_least("total", 0), at_least("exchange_rate", 1e-9),
            Check(
                "total_mismatch", "ExpectColumnValuesToBeBetween", "total_diff",
                {"min_value": -tol, "max_value": tol},
                f"lines + shipping + tax - discounts must equal the order total within {tol}",
            ),
        ]
    if entity == "customer":
        return [
            not_null("external_id"), unique("external_id"), not_null("email"), email("email"),
            currency, country, at_least("credit_limit", 0),
        ]
    if entity == "product":
        return [
            not_null("code"), unique("code"), not_null("name"), at_least("variant_count", 1),
            Check("duplicate_key", "ExpectColumnValuesToBeInSet", "duplicate_skus", {"value_set": [0]},
                  "a product lists each variant sku once"),
            # the storefront's title column: Shopify and Vendure (varchar 255) refuse a longer one
            Check("name_too_long", "ExpectColumnValueLengthsToBeBetween", "name", {"min_value": 1, "max_value": 255},
                  "name must be 1 to 255 characters (the storefront's title limit)"),
        ]
    if entity == "price":
        return [
            not_null("sku"), unique("key"), currency, at_least("price", 0), at_least("min_quantity", 1),
            at_least("cost", 0),
        ]
    if entity in ("inventory", "stock"):
        # on_hand may be negative: ERPs that allow negative stock report it, and availability
        # clamps it to 0 (rules.availability). A negative deduction (allocated, reserved, damaged,
        # quarantined, safety stock) would add units that do not exist: quarantined. No unique
        # key: one read may hold a warehouse twice (changed mid-read); the newest copy wins.
        big = settings.MAX_STOCK_QUANTITY
        return [
            not_null("sku"), not_null("location"),
            between("on_hand", -big, big, "implausible_quantity"),
            *(between(c, 0, big, "negative_stock") for c in DEDUCTIONS),
        ]
    if entity == "shipment":
        return [
            not_null("external_id"), unique("external_id"), not_null("order_external_id"), at_least("package_count", 1),
            Check("empty_package", "ExpectColumnValuesToBeInSet", "empty_packages", {"value_set": [0]},
                  "every shipped package carries at least one line"),
            Check("duplicate_key", "ExpectColumnValuesToBeInSet", "duplicate_tracking", {"value_set": [0]},
                  "a shipment lists each tracking number once"),
            # free text the store keeps in short columns: a megabyte of it is a broken record
            between("longest_tracking", 0, MAX_CODE, "text_too_long"),
            between("longest_carrier", 0, MAX_CODE, "text_too_long"),
        ]
    if entity == "return":
        return [
            not_null("rma"), unique("rma"), not_null("order_external_id"), currency, at_least("line_count", 1),
            at_least("min_line_quantity", 1), at_least("refund_amount", 0, "negative_amount"),
            at_least("credit_memo_amount", 0, "negative_amount"),
            between("longest_reason", 0, MAX_TEXT, "text_too_long"),
            between("credit_memo_id_length", 0, MAX_CODE, "text_too_long"),
        ]
    # an entity without its own suite still gets its key checked
    return [not_null("key"), unique("key")]


#: the suites of the GX project (``gx/expectations/<name>.json``): one per canonical entity, and
#: ``record_key`` (the key checks) for an entity without its own
SUITES = ("order", "customer", "product", "price", "stock", "shipment", "return", "record_key")


def suite_name(entity: str) -> str:
    """The GX suite that checks ``entity`` (``inventory`` and ``stock`` share one)."""
    if entity == "inventory":
        return "stock"
    return entity if entity in SUITES and entity != "record_key" else "record_key"


def parameters(checks: list[Check]) -> dict[str, Any]:
    """The GX expectation parameters of ``checks`` with today's settings."""
    return {c.param: list(c.kwargs["value_set"]) for c in checks if c.param}


def declared(name: str) -> list[dict[str, Any]]:
    """The expectations of suite ``name`` as the GX project stores them (type, kwargs, meta),
    ``erpsync_check`` being the check's position in :func:`suite`; a configured set is a
    ``$PARAMETER``."""
    entity = "key" if name == "record_key" else name
    out = []
    for i, c in enumerate(suite(entity)):
        kwargs: dict[str, Any] = {"column": c.column, **c.kwargs}
        if c.param:
            kwargs["value_set"] = {"$PARAMETER": c.param}
        out.append({"type": c.gx_type, "kwargs": kwargs, "meta": {"erpsync_check": i, "reason": c.reason}})
    return out


def _f(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _country(*addresses: model.Address | None) -> str | None:
    for a in addresses:
        if a is not None and a.country:
            return a.country
    return None


def _order(o: model.Order) -> dict[str, Any]:
    computed = o.computed_total()
    return {
        "external_id": o.external_id or None, "number": o.number or None, "placed_at": o.placed_at,
        "currency": o.currency, "country": _country(o.shipping_address, o.billing_address),
        "customer_email": o.customer_email or None, "line_count": len(o.lines),
        "min_line_quantity": min((ln.quantity for ln in o.lines), default=None),
        "min_unit_price": _f(min((ln.unit_price for ln in o.lines), default=None)),
        "shipping_amount": _f(o.shipping_amount), "total": _f(o.total), "exchange_rate": _f(o.exchange_rate),
        "computed_total": _f(computed), "total_diff": _f(computed - o.total),
        # exact amounts for the dead-letter reason (GX reads the float columns)
        "_computed_total": str(computed), "_total": str(o.total),
    }


def _customer(c: model.Customer) -> dict[str, Any]:
    return {
        "external_id": c.external_id or None, "email": (c.email or "").strip() or None, "currency": c.currency,
        "country": _country(*c.addresses), "credit_limit": _f(c.credit_limit),
    }


def _product(p: model.Product) -> dict[str, Any]:
    skus = [v.sku for v in p.variants]
    return {"code": p.code or None, "name": p.name or None, "variant_count": len(skus), "duplicate_skus": len(skus) - len(set(skus))}


def _price(p: model.PriceEntry) -> dict[str, Any]:
    key = "|".join(str(x) for x in (p.sku, p.price_list, p.customer_group, p.customer_id, p.currency, p.min_quantity, p.effective_from))
    return {"sku": p.sku or None, "key": key, "currency": p.currency, "price": _f(p.price),
            "min_quantity": p.min_quantity, "cost": _f(p.cost)}


#: the figures taken off on hand to give what is sold (rules.availability.figures_to_sell)
DEDUCTIONS = ("allocated", "reserved", "damaged", "quarantined", "safety_stock")


def _inventory(i: model.InventoryLevel) -> dict[str, Any]:
    return {"sku": i.sku or None, "location": i.location or None, "key": f"{i.sku}@{i.location}",
            **{c: getattr(i, c) for c in ("on_hand", *DEDUCTIONS)}}


def _shipment(s: model.Shipment) -> dict[str, Any]:
    tracking = [p.tracking_number for p in s.packages]
    return {"external_id": s.external_id or None, "order_external_id": s.order_external_id or None,
            "package_count": len(s.packages), "empty_packages": sum(1 for p in s.packages if not p.lines),
            "duplicate_tracking": len(tracking) - len(set(tracking)),
            "longest_tracking": max((len(t or "") for t in tracking), default=0),
            "longest_carrier": max((len(p.carrier or "") for p in s.packages), default=0)}


def _return(r: model.Return) -> dict[str, Any]:
    return {"rma": r.rma or None, "order_external_id": r.order_external_id or None, "currency": r.currency,
            "line_count": len(r.lines), "min_line_quantity": min((ln.quantity for ln in r.lines), default=None),
            "refund_amount": _f(r.refund_amount), "credit_memo_amount": _f(r.credit_memo_amount),
            "longest_reason": max((len(ln.reason or "") for ln in r.lines), default=0),
            "credit_memo_id_length": len(r.credit_memo_id or "")}


_ROWS: dict[type, Callable[[Any], dict[str, Any]]] = {
    model.Order: _order, model.Customer: _customer, model.Product: _product, model.PriceEntry: _price,
    model.InventoryLevel: _inventory, model.Shipment: _shipment, model.Return: _return,
}


def row(record: Any) -> dict[str, Any]:
    """The columns the suite of ``record``'s entity reads."""
    if type(record) is dict:  # a flat row a mapper made (the stock mapper's): a copy
        return dict(record)
    for cls, fn in _ROWS.items():
        if isinstance(record, cls):
            return fn(record)
    if isinstance(record, dict):
        return dict(record)
    if isinstance(record, model.Record):
        data = record.to_dict()
        data.setdefault("key", key_of(record))
        return data
    raise TypeError(f"no quality row for {type(record).__name__}")


def key_of(record: Any) -> str:
    """The id a dead letter of ``record`` is filed under."""
    for attr in ("external_id", "code", "rma", "sku"):
        value = getattr(record, attr, None) if not isinstance(record, dict) else record.get(attr)
        if value:
            if isinstance(record, model.InventoryLevel):
                return f"{record.sku}@{record.location}"
            return str(value)
    if isinstance(record, dict) and record.get("id"):
        return str(record["id"])
    return "?"
