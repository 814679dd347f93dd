"""Which price applies at a given time, from the accepted price rules of one price key.

A price key is one price a storefront shows: (price list, SKU, quantity break). Its rules come
from ERP price rows: regular rules (list, group, contract prices) and sale rules, each valid in
``[valid_from, valid_to)`` (open ends allowed). At time ``now``:

* the lowest active sale price wins if there is one; the active regular price is then shown as
  ``compare_at`` when it is higher (the storefront's "was" price);
* otherwise the active regular rule with the latest ``valid_from`` wins;
* no active rule: no price (a contract that expired is removed from its list).

``next_change`` is the next time a rule starts or ends, so the hourly run knows when a sale
starts or ends without re-reading the ERP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_MIN = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class PriceRule:
    price: Decimal
    valid_from: dt.datetime | None = None
    valid_to: dt.datetime | None = None
    sale: bool = False

    def active(self, now: dt.datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (self.valid_to is None or now < self.valid_to)

    def to_json(self) -> dict[str, Any]:
        return {
            "price": str(self.price),
            "from": _iso(self.valid_from),
            "to": _iso(self.valid_to),
            "sale": self.sale,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PriceRule:
        return cls(Decimal(data["price"]), _time(data.get("from")), _time(data.get("to")), bool(data.get("sale")))


@dataclass(frozen=True, slots=True)
class Effective:
    price: Decimal | None
    compare_at: Decimal | None = None
    next_change: dt.datetime | None = None
    rule: str | None = None  # id of the rule that set the price


def effective_price(rules: Mapping[str, PriceRule], now: dt.datetime) -> Effective:
    active = {rid: r for rid, r in rules.items() if r.active(now)}
    regular = [(r.valid_from or _MIN, rid, r) for rid, r in active.items() if not r.sale]
    sales = [(r.price, rid, r) for rid, r in active.items() if r.sale]
    base = max(regular, key=lambda x: (x[0], x[1]))[2] if regular else None
    base_id = max(regular, key=lambda x: (x[0], x[1]))[1] if regular else None
    boundaries = [b for r in rules.values() for b in (r.valid_from, r.valid_to) if b is not None and b > now]
    nxt = min(boundaries) if boundaries else None
    if sales:
        price, rid, _ = min(sales, key=lambda x: (x[0], x[1]))
        compare = base.price if base is not None and base.price > price else None
        return Effective(price, compare, nxt, rid)
    if base is not None:
        return Effective(base.price, None, nxt, base_id)
    return Effective(None, None, nxt, None)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
