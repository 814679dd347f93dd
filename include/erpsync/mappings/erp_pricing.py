"""ERP price rows -> canonical price entries.

The kind of a row follows from its fields: a ``customer_no`` makes a customer (contract) price,
a ``customer_group`` a group price, a price list whose name starts with ``SALE`` a sale price
(valid between its dates), anything else a base (list) price in its currency. The ERP speaks item
codes; the storefront SKUs, resolved through the cross reference (a look-up the flow passes in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from erpsync.mappings.engine import F, RuleViolation, amount, apply_spec, build, currency, quantity, text
from erpsync.mappings.refs import PriceRef
from erpsync.mappings.transforms import chain, check, date_in, lookup, upper
from erpsync.model import PriceEntry, PriceKind

Raw = Mapping[str, Any]
SkuOf = Callable[[str], str | None]

#: ERP date formats seen in price imports besides ISO 8601
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")
SALE_PREFIXES = ("SALE", "PROMO")


def price_kind(raw: Raw) -> PriceKind:
    if str(raw.get("price_list") or "").upper().startswith(SALE_PREFIXES):
        return PriceKind.SALE
    if raw.get("customer_no"):
        return PriceKind.CUSTOMER
    if raw.get("customer_group"):
        return PriceKind.GROUP
    return PriceKind.BASE


def _positive_or_zero(value: Decimal) -> bool:
    return value >= 0


def price_spec(sku_of: SkuOf) -> list[F]:
    return [
        F("sku", "item_code", lookup(sku_of, "item_xref"), required=True),
        F("price", "price", chain(amount, check(_positive_or_zero, "price_not_negative")), required=True),
        F("currency", "currency", currency, required=True),
        F("kind", price_kind),
        F("price_list", "price_list", chain(text, upper), required=True),
        F("customer_group", "customer_group", text, nullable=True),
        F("customer_id", "customer_no", text, nullable=True),
        F("min_quantity", "min_qty", quantity, default=1),
        F("effective_from", "valid_from", date_in(*DATE_FORMATS), nullable=True),
        F("effective_to", "valid_to", date_in(*DATE_FORMATS), nullable=True),
    ]


def price_ref(raw: Raw) -> PriceRef:
    """What the flow reads of a sandbox price row before mapping it."""
    code = raw.get("item_code")
    return PriceRef(
        item_code=str(code) if code else None,
        row_id=f"{code}/{raw.get('price_list')}/{raw.get('currency')}/{raw.get('min_qty')}",
        updated_at=raw.get("modified_at") if isinstance(raw.get("modified_at"), str) else None,
    )


def price_from_erp(raw: Raw, sku_of: SkuOf, *, spec: list[F] | None = None) -> PriceEntry:
    """One ERP price row as a PriceEntry; pass a prebuilt ``spec`` in loops (built once per run)."""
    record = f"erp price {raw.get('item_code', '?')}/{raw.get('price_list', '?')}/{raw.get('currency', '?')}"
    if raw.get("customer_no"):
        record += f"/{raw['customer_no']}"
    record += f"/{raw.get('min_qty', 1)}"
    kw = apply_spec(spec or price_spec(sku_of), raw, record)
    return build(PriceEntry, kw, record)


__all__ = ["RuleViolation", "price_from_erp", "price_kind", "price_ref", "price_spec"]
