"""Available to sell: the one place where stock figures become a number the store may sell.

* :func:`figures_to_sell` is the formula (on hand - allocated - reserved - damaged - quarantined -
  safety stock, never below zero, even when the ERP allows negative stock); every path, the
  per-record one (:func:`available_to_sell`) and the bulk ones in the flows, calls it.
* :class:`LocationMap` says which store location each ERP warehouse feeds. Several warehouses may
  feed one location (their figures are summed). A warehouse mapped to ``None`` is excluded on
  purpose; one missing from the map is *unmapped* and reported, never silently dropped.
* Over-allocation (:func:`over_allocated`, :func:`take_shortfall`): a warehouse that has committed
  more than it holds (allocated beyond on hand, e.g. orders all booked on it) sells 0, and the
  units it is short come off the item's other store locations, first the one it feeds, then the
  others in the map's order: an item's availability summed over the store's locations never
  exceeds its total available stock (on hand less everything committed, over all mapped
  warehouses).
* Kits and bundles: :func:`kit_available` = min over components of floor(available / quantity).
* Channels: :func:`allocate_channels` splits one pool across channels by configured shares
  (largest remainder, so the parts always add up to the pool: no channel can sell stock another
  was given), moving part of a slow channel's share to channels whose demand exceeds theirs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from erpsync.model import InventoryLevel

#: a slow channel keeps at least this share of its own allocation when it gives units away
DEFAULT_KEEP_RATIO = 0.5


def figures_to_sell(
    on_hand: int, allocated: int, reserved: int, damaged: int, quarantined: int, safety_stock: int
) -> int:
    """Available to sell from the raw figures; never below zero."""
    value = on_hand - allocated - reserved - damaged - quarantined - safety_stock
    return value if value > 0 else 0


def over_allocated(on_hand: int, allocated: int, reserved: int, damaged: int, quarantined: int) -> int:
    """Units a warehouse has committed beyond what it holds (0 when it is not over-allocated): the
    shortfall the item's other locations must cover. Safety stock is a margin, not a commitment:
    a warehouse below its safety stock sells 0 but takes nothing from the others."""
    value = allocated + reserved + damaged + quarantined - on_hand
    return value if value > 0 else 0


def take_shortfall(
    available: Mapping[str, int], short: Mapping[str, int], order: Iterable[str]
) -> dict[str, int]:
    """Per store location, what may be sold once the over-allocated warehouses' shortfall is taken:
    each location's shortfall comes off its own figure first, then off the other locations in
    ``order`` (the location map's). The result adds up to ``max(0, sum(available) - sum(short))``;
    no location goes below zero or above its own figure."""
    out = {loc: max(0, n) for loc, n in available.items()}
    order = [loc for loc in dict.fromkeys(order) if loc in out]
    order += [loc for loc in out if loc not in order]
    for loc, owed in short.items():
        if owed <= 0:
            continue
        for take_from in ([loc] if loc in out else []) + [o for o in order if o != loc]:
            take = min(owed, out[take_from])
            out[take_from] -= take
            owed -= take
            if not owed:
                break
    return out


def available_to_sell(level: InventoryLevel, *, include_safety_stock: bool = True) -> int:
    return figures_to_sell(
        level.on_hand,
        level.allocated,
        level.reserved,
        level.damaged,
        level.quarantined,
        level.safety_stock if include_safety_stock else 0,
    )


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class LocationMap:
    """ERP warehouse -> store location (``None``: excluded on purpose)."""

    mapping: Mapping[str, str | None]

    @classmethod
    def identity(cls, locations: Iterable[str]) -> LocationMap:
        """Each store location is fed by the ERP warehouse of the same name."""
        return cls({loc: loc for loc in locations})

    @classmethod
    def from_param(cls, value: Any) -> LocationMap:
        if not isinstance(value, Mapping):
            raise ValueError(f"location_map must map ERP warehouse -> store location, got {value!r}")
        for k, v in value.items():
            if not isinstance(k, str) or not (v is None or isinstance(v, str)):
                raise ValueError(f"location_map: {k!r} -> {v!r} is not warehouse -> location (or null)")
        return cls(dict(value))

    def store_location(self, warehouse: str) -> str | None:
        return self.mapping.get(warehouse)

    def is_excluded(self, warehouse: str) -> bool:
        return warehouse in self.mapping and self.mapping[warehouse] is None

    def is_mapped(self, warehouse: str) -> bool:
        return self.mapping.get(warehouse) is not None

    def sources(self, location: str) -> tuple[str, ...]:
        return tuple(sorted(w for w, loc in self.mapping.items() if loc == location))

    @property
    def locations(self) -> tuple[str, ...]:
        """Store locations in the map's order (the order a store takes stock in at checkout)."""
        return tuple(dict.fromkeys(loc for loc in self.mapping.values() if loc is not None))


def _as_time(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _later(a: dt.datetime | str, b: dt.datetime | str) -> bool:
    """``a`` after ``b``: two texts (ISO 8601 UTC, the bulk paths) or two datetimes compare as they
    are; a text and a datetime are compared as times."""
    if isinstance(a, str) and isinstance(b, str):
        return a > b
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a > b
    return _as_time(a) > _as_time(b)


@dataclass(slots=True)
class StoreLevel:
    """What one store location may sell of one SKU, and what goes with it."""

    sku: str
    location: str
    available: int = 0
    backorderable: bool = False
    restock_date: dt.date | None = None
    #: newest ``updated_at`` of the ERP records it was computed from (guards against stale writes);
    #: a datetime, or the ERP's ISO 8601 UTC text on the bulk paths (both order correctly)
    source_at: dt.datetime | str | None = None

    def add(
        self, available: int, backorderable: bool, restock_date: dt.date | None, at: dt.datetime | str | None
    ) -> None:
        self.available += available
        self.backorderable = self.backorderable or backorderable
        if restock_date is not None and (self.restock_date is None or restock_date < self.restock_date):
            self.restock_date = restock_date
        if at is not None and (self.source_at is None or _later(at, self.source_at)):
            self.source_at = at


@dataclass(slots=True)
class Aggregate:
    levels: dict[tuple[str, str], StoreLevel] = field(default_factory=dict)
    #: (sku, warehouse) whose warehouse the location map does not know
    unmapped: list[tuple[str, str]] = field(default_factory=list)
    #: sku -> store location -> units its over-allocated warehouses are short (:meth:`settle`)
    short: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the SKUs :meth:`settle` took a shortfall for
    short_skus: list[str] = field(default_factory=list)

    def add(
        self, lmap: LocationMap, sku: str, warehouse: str, available: int, *, backorderable: bool = False,
        restock_date: dt.date | None = None, at: dt.datetime | str | None = None, short: int = 0,
    ) -> None:
        """Fold one warehouse figure (already clamped by :func:`figures_to_sell`) into its location;
        ``short``: what the warehouse is over-allocated by (:func:`over_allocated`), taken off the
        item's locations by :meth:`settle`."""
        location = lmap.mapping.get(warehouse)
        if location is None:
            if warehouse not in lmap.mapping:
                self.unmapped.append((sku, warehouse))
            return
        key = (sku, location)
        lv = self.levels.get(key)
        if lv is None:
            lv = self.levels[key] = StoreLevel(sku, location)
        lv.add(available, backorderable, restock_date, at)
        if short > 0:
            by_loc = self.short.setdefault(sku, {})
            by_loc[location] = by_loc.get(location, 0) + short

    def settle(self, locations: Iterable[str]) -> int:
        """Take each over-allocated item's shortfall off its locations (:func:`take_shortfall`);
        returns the units taken. Call once, after every warehouse of the items was added."""
        order = tuple(locations)
        taken = 0
        self.short_skus = sorted(self.short)
        for sku, short in self.short.items():
            mine = {loc: self.levels[(sku, loc)] for loc in order if (sku, loc) in self.levels}
            before = {loc: lv.available for loc, lv in mine.items()}
            after = take_shortfall(before, short, order)
            for loc, lv in mine.items():
                taken += lv.available - after[loc]
                lv.available = after[loc]
        self.short = {}
        return taken


def aggregate(levels: Iterable[InventoryLevel], lmap: LocationMap) -> Aggregate:
    """Per store location: the sum of its warehouses' available to sell, less what over-allocated
    warehouses are short (:meth:`Aggregate.settle`)."""
    out = Aggregate()
    for lv in levels:
        out.add(lmap, lv.sku, lv.location, available_to_sell(lv), backorderable=lv.backorderable,
                restock_date=lv.restock_date, at=lv.updated_at,
                short=over_allocated(lv.on_hand, lv.allocated, lv.reserved, lv.damaged, lv.quarantined))
    out.settle(lmap.locations)
    return out


# --------------------------------------------------------------------------- kits


def kit_available(components: Mapping[str, int], available: Mapping[str, int]) -> int:
    """Kits that can be built: min over components of floor(available / quantity per kit).

    A component with no figure counts as zero: a kit is never sold on stock we cannot see.
    """
    if not components:
        return 0
    result: int | None = None
    for sku, qty in components.items():
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise ValueError(f"kit component {sku}: quantity {qty!r} must be a positive whole number")
        n = max(0, available.get(sku, 0)) // qty
        result = n if result is None else min(result, n)
    return result or 0


def kit_restock_date(
    components: Mapping[str, int], available: Mapping[str, int], restock: Mapping[str, dt.date]
) -> dt.date | None:
    """When a kit that cannot be built comes back: the latest restock date of its short components
    (unknown, so None, if any short component has no date)."""
    short = [s for s, q in components.items() if max(0, available.get(s, 0)) < q]
    if not short:
        return None
    dates = [restock.get(s) for s in short]
    if any(d is None for d in dates):
        return None
    return max(d for d in dates if d is not None)


# --------------------------------------------------------------------------- channels


def parse_shares(value: Any) -> dict[str, float]:
    """``{"web": 70, ...}`` or ``"web=70,marketplace=20"`` -> channel -> share (not normalised)."""
    if isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"channel shares {value!r}: write channel=share,channel=share")
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"channel shares must map channel -> share, got {value!r}")
    out: dict[str, float] = {}
    for k, v in value.items():
        try:
            share = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"channel share of {k!r}: {v!r} is not a number") from None
        if share < 0 or math.isnan(share) or math.isinf(share):
            raise ValueError(f"channel share of {k!r}: {v!r} must be zero or more")
        out[str(k)] = int(share) if share.is_integer() else share
    if sum(out.values()) <= 0:
        raise ValueError("channel shares add up to zero: give at least one channel a share")
    return out


def split_by_shares(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Largest remainder: whole units by share that always add up to ``total`` (ties: listed first)."""
    weight = sum(shares.values())
    if total <= 0 or weight <= 0:
        return dict.fromkeys(shares, 0)
    exact = {k: total * v / weight for k, v in shares.items()}
    parts = {k: int(math.floor(x)) for k, x in exact.items()}
    left = total - sum(parts.values())
    order = sorted(shares, key=lambda k: (-(exact[k] - parts[k]), list(shares).index(k)))
    for k in order[:left]:
        parts[k] += 1
    return parts


def allocate_channels(
    pool: int, shares: Mapping[str, float], demand: Mapping[str, int] | None = None,
    *, keep_ratio: float = DEFAULT_KEEP_RATIO,
) -> dict[str, int]:
    """Split ``pool`` across channels by ``shares``; with ``demand`` (units each channel is expected
    to sell, e.g. its sales in the last window), a channel selling below its share keeps
    max(demand, keep_ratio x its share) and releases the rest to channels whose demand exceeds their
    share (by share, capped at their shortfall); units nobody needs go back by share. The result
    always adds up to ``pool``."""
    base = split_by_shares(pool, shares)
    if not demand or pool <= 0:
        return base
    alloc = dict(base)
    released = 0
    for ch, units in base.items():
        want = max(0, int(demand.get(ch, 0)))
        if want < units:
            keep = max(want, int(math.floor(units * keep_ratio)))
            released += units - keep
            alloc[ch] = keep
    shortfall = {ch: max(0, int(demand.get(ch, 0)) - alloc[ch]) for ch in alloc}
    while released > 0 and any(shortfall.values()):
        hungry = {ch: shares[ch] or 1e-9 for ch, s in shortfall.items() if s > 0}
        give = split_by_shares(released, hungry)
        moved = 0
        for ch, n in give.items():
            n = min(n, shortfall[ch])
            alloc[ch] += n
            shortfall[ch] -= n
            moved += n
        released -= moved
        if moved == 0:
            break
    if released > 0:  # nobody needs them: back to the channels that gave them, by share
        givers = {ch: shares[ch] for ch in alloc if alloc[ch] < base[ch]} or dict(shares)
        for ch, n in split_by_shares(released, givers).items():
            alloc[ch] += n
    return alloc
