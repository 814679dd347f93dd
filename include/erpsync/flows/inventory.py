"""inventory_sync and the fast lane: ERP stock -> store availability, only the differences.

One cycle (``run``):

1. refresh what inventory knows of items (SKU, active, kit components) and of the store's SKUs,
   each from its own cursor (a few calls when nothing changed);
2. read the ERP stock records changed since the cursor (minus the lookback overlap); on the very
   first run, the whole stock through the bulk export, and take the store's current levels as
   the "last pushed" baseline, so the first run pushes only real differences; every record read
   passes the quality gate (suite ``stock``): a quarantined one holds the SKU-location its
   warehouse feeds (the store keeps its figure), a cycle too bad fails before any push;
3. complete what the changed records touch: every warehouse of an item whose store location is fed
   by several warehouses, every component of a kit one of whose components changed;
4. compute availability (``rules.availability``: formula, location map with every mapped
   warehouse and an over-allocated one's shortfall taken off the item's other locations, kits,
   the store's orders not in the ERP yet, channel share);
5. compare with what the store holds now (``inventory_for`` of the computed SKUs through the
   store mapping: what it *sells*; ``store_changed`` when it moved under us), else with what was
   last pushed (``inventory_pushed``), and push only the differences, in batches of the store's
   limit, each with an idempotency key; remember each batch once the store accepted it;
6. advance the cursor to the newest ``modified_at`` read, after everything was pushed.

A SKU the store does not carry is reported (reason ``not_in_store``), never pushed; a warehouse
the location map does not know is reported (``unmapped_location`` per record, and once per run
as a gap of the map with one dead letter: ``warehouse_not_mapped``; a mapped warehouse the ERP
does not have: ``location_without_source``). Hot SKUs configured for the
fast lane (``run_fast_lane``) are left to it, so the two never write the same SKU.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from erpsync.connectors.registry import erp_mapping, storefront_mapping
from erpsync.errors import MappingError, PermanentError, TransientError
from erpsync.flows.base import (
    FlowContext,
    RunSummary,
    audit,
    cursor_since,
    dead_letter,
    refuse_test_seams,
)
from erpsync.mappings.stock import StockFigures
from erpsync.quality.stale import StaleLetters
from erpsync.rules.availability import (
    Aggregate,
    LocationMap,
    StoreLevel,
    allocate_channels,
    kit_available,
    kit_restock_date,
    parse_shares,
    take_shortfall,
)
from erpsync.state.inventory import InventoryState, ItemInfo, Pushed
from erpsync.state.repos.cursors import HighWater

FLOW = "inventory_sync"
FAST_FLOW = "inventory_fast_lane"
ENTITY = "inventory_level"
SAMPLE = 20  # SKUs named in a report line
#: the items and products cursors are shared by the inventory flows: they refresh the same tables
SHARED = "inventory"
#: reported, but not skipped: in-flight units are a deduction; a held SKU-location is counted as
#: quarantined already (its record's dead letter)
NOT_SKIPS = {"in_flight_units", "held_by_quality_gate", "over_allocated_units", "store_changed"}
BASELINE_CHUNK = 50_000
#: stock rows validated together by the quality gate, on the first run's full export and in every
#: cycle: GX costs ~45 ms a batch whatever its size, plus ~12 µs a row (docs/benchmarks.md), so a
#: cycle re-reading 30k rows pays 2 batches, not 7 of the flows' default 5,000. The bad-share limit
#: (ERPSYNC_QUALITY_THRESHOLDS) applies to each chunk
FIRST_RUN_CHUNK = STOCK_GATE_CHUNK = 20_000


# --------------------------------------------------------------------------- configuration


@dataclass
class Settings:
    location_map: LocationMap
    shares: dict[str, float] | None
    channel: str | None
    demand: dict[str, int] | None
    hot_skus: frozenset[str]
    include_safety_stock: bool
    batch_limit: int
    #: ``channel_demand: "observed"``: each SKU's demand per channel is what it sold in the last
    #: ``demand_window_hours`` (store orders, recorded by every channel's runs in ``channel_sales``)
    observed: bool = False
    demand_window: dt.timedelta = dt.timedelta(hours=24)

    @classmethod
    def from_ctx(cls, ctx: FlowContext) -> Settings:
        p = ctx.params
        lmap_param = p.get("location_map")
        if lmap_param:
            lmap = LocationMap.from_param(lmap_param)
        else:
            locations = ctx.storefront.list_locations()
            if not locations:
                raise ValueError("the store cannot list its locations: set the param location_map")
            lmap = LocationMap.identity(locations)
        shares = parse_shares(p["channel_shares"]) if p.get("channel_shares") else None
        channel = p.get("channel") or (next(iter(shares)) if shares else None)
        if shares and channel not in shares:
            raise ValueError(f"channel {channel!r} has no share in channel_shares {sorted(shares)}")
        hot = p.get("fast_lane_skus") or []
        if isinstance(hot, str):
            hot = [s.strip() for s in hot.split(",") if s.strip()]
        limit = int(p.get("batch_limit") or ctx.storefront.inventory_batch_limit)
        limit = min(limit, ctx.storefront.inventory_batch_limit)
        demand = p.get("channel_demand")
        observed = demand == "observed"
        if demand is not None and not observed and not (
                isinstance(demand, dict) and all(isinstance(v, int) and v >= 0 for v in demand.values())):
            raise ValueError(f'channel_demand {demand!r} must be "observed" or units per channel, e.g. {{"web": 40}}')
        try:
            hours = float(p.get("demand_window_hours", 24))
        except (TypeError, ValueError):
            raise ValueError(f"demand_window_hours {p.get('demand_window_hours')!r} is not a number") from None
        if hours <= 0:
            raise ValueError(f"demand_window_hours {hours} must be above 0")
        return cls(lmap, shares, channel, None if observed else demand, frozenset(hot),
                   bool(p.get("include_safety_stock", True)), limit, observed, dt.timedelta(hours=hours))


@dataclass
class CycleStats:
    """What one cycle did, for the log line and the benchmarks."""

    read: int = 0
    refetched: int = 0
    computed: int = 0
    changed: int = 0
    pushed: int = 0
    push_calls: int = 0
    reports: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def report(self, reason: str, key: str, n: int = 1) -> None:
        self.reports[reason] += n
        sample = self.samples[reason]
        if len(sample) < SAMPLE and key not in sample:
            sample.append(key)


# --------------------------------------------------------------------------- refresh items and the store's SKUs


def refresh_items(ctx: FlowContext, state: InventoryState, summary: RunSummary) -> int:
    """ERP items changed since the items cursor -> inventory_items (SKU, active, kit)."""
    since = _cursor(ctx, "items", SHARED)
    infos: list[ItemInfo] = []
    modified: dict[str, str] = {}
    high = HighWater()
    mapping = erp_mapping(ctx.erp)
    for raw in ctx.erp.list_items(updated_since=since):
        try:
            info = mapping.item_from_erp(raw)
        except MappingError as exc:
            dead_letter(ctx, summary, "item", str(raw.get("item_code") or "?"), raw, f"mapping_error: {exc}",
                        error_kind="mapping")
            continue
        infos.append(info)
        m = mapping.item_changed_at(raw)
        if isinstance(m, str):
            modified[info.item_code] = m
            high.see(m)
    state.upsert_items(infos, modified)
    if high.high is not None:
        ctx.store.cursors.advance(SHARED, high.high, "items")
    return len(infos)


def refresh_store_skus(ctx: FlowContext, state: InventoryState) -> list[str]:
    """Store products changed since the products cursor -> inventory_store_skus; returns their SKUs."""
    since = _cursor(ctx, "products", SHARED)
    rows: list[tuple[str, str, bool]] = []
    high = HighWater()
    mapping = storefront_mapping(ctx.storefront)
    for raw in ctx.storefront.list_products(updated_since=since):
        rows.extend(mapping.store_skus_of(raw))
        high.see(mapping.product_changed_at(raw))
    state.upsert_store_skus(rows)
    if high.high is not None:
        ctx.store.cursors.advance(SHARED, high.high, "products")
    return [r[0] for r in rows]


def _cursor(ctx: FlowContext, name: str, flow: str | None = None) -> dt.datetime | None:
    return cursor_since(ctx, name, flow)


# --------------------------------------------------------------------------- compute


class Engine:
    """Read -> compute -> compare -> push, shared by the cycle, the fast lane and the drift healer."""

    def __init__(self, ctx: FlowContext, settings: Settings, summary: RunSummary) -> None:
        self.ctx = ctx
        self.settings = settings
        self.summary = summary
        self.state = InventoryState(ctx.store)
        self.stats = CycleStats()
        #: the adapters' mappings: raw stock, items and store levels in each system's own shape
        self.erp_map = erp_mapping(ctx.erp)
        self.store_map = storefront_mapping(ctx.storefront)
        self._kits: dict[str, ItemInfo] | None = None
        self._kits_of: dict[str, set[str]] | None = None
        #: (item code, store location) fed by a stock record quarantined this cycle: not pushed, the
        #: store keeps its last good figure until the record is fixed (a fixed record is read again,
        #: with every warehouse of a location several feed: nothing of it is lost)
        self.held: set[tuple[str, str]] = set()
        self._quarantined: set[str] = set()  # stock keys dead-lettered this cycle: not checked twice
        self._recent: list[Any] | None = None  # store orders of the last minutes, read once a pass
        self._unknown: set[str] = set()  # item codes of stock records dead-lettered as unknown_item
        self.map_gaps = 0  # location-map gaps dead-lettered this run (check_location_map)
        #: the open dead letters of stock records: one this run reads again fixed is resolved (finish)
        self.stale = StaleLetters(ctx, "stock")

    # -- items and kits
    @property
    def kits(self) -> dict[str, ItemInfo]:
        if self._kits is None:
            self._kits = self.state.kits()
        return self._kits

    @property
    def kits_of(self) -> dict[str, set[str]]:
        """component item code -> kit item codes."""
        if self._kits_of is None:
            idx: dict[str, set[str]] = defaultdict(set)
            for code, info in self.kits.items():
                for comp in info.kit or {}:
                    idx[comp].add(code)
            self._kits_of = idx
        return self._kits_of

    # -- figures
    def figures(self, raws: Iterable[dict[str, Any]]) -> Iterator[StockFigures]:
        """Map raw stock rows; a malformed one is dead-lettered and the batch goes on."""
        safety = self.settings.include_safety_stock
        stock_figures = self.erp_map.stock_figures
        for raw in raws:
            self.stats.read += 1
            try:
                yield stock_figures(raw, include_safety_stock=safety)
            except MappingError as exc:
                dead_letter(self.ctx, self.summary, "stock", self.erp_map.stock_key(raw), raw, f"mapping_error: {exc}",
                            error_kind="mapping")

    def read_stock(self, raws: Iterable[dict[str, Any]]) -> list[StockFigures]:
        """Raw ERP stock rows through the quality gate (:meth:`gated`), then their figures; of a
        warehouse read twice (changed mid-read), the newest copy."""
        newest: dict[tuple[str, str], StockFigures] = {}
        for f in self.figures(self.gated(raws)):
            key = (f.item_code, f.warehouse)
            old = newest.get(key)
            if old is not None:
                if old == f:
                    self.stats.report("superseded_copy", f"{f.item_code}@{f.warehouse}")  # the same record twice
                    continue
                if (f.modified or "") == (old.modified or ""):
                    # two different records of one SKU-warehouse, neither newer: which is true cannot
                    # be told; the first is used, the other is a dead letter (never summed, never silent)
                    dead_letter(self.ctx, self.summary, "stock", f"{f.item_code}@{f.warehouse}",
                                {"item_code": f.item_code, "warehouse": f.warehouse, "available": f.net,
                                 "modified_at": f.modified, "first_copy_available": old.net},
                                f"duplicate_stock_key: {f.item_code}@{f.warehouse} read twice with different "
                                f"figures ({old.net} and {f.net}) and the same change time; the first is used, "
                                "fix the record in the ERP", error_kind="mapping")
                    continue
                # changed mid-read: the newest copy wins (documented, counted as superseded_copy)
                self.stats.report("superseded_copy", f"{f.item_code}@{f.warehouse}")
                if (f.modified or "") < (old.modified or ""):
                    continue
            newest[key] = f
        return list(newest.values())

    def unknown_item(self, code: str) -> None:
        """ERP stock of an item code erpsync does not know (not among the ERP's items, or its item
        record is a dead letter): nothing can be pushed for it; a dead letter once per run."""
        if code in self._unknown:
            return
        self._unknown.add(code)
        dead_letter(self.ctx, self.summary, "stock", code, {"item_code": code},
                    f"unknown_item: the ERP has stock for item {code!r}, which is not among its items (or its "
                    "item record is a dead letter): its stock reaches no store SKU; fix the item in the ERP",
                    error_kind="mapping")

    def gated(self, raws: Iterable[dict[str, Any]], chunk: int = STOCK_GATE_CHUNK) -> Iterator[dict[str, Any]]:
        """Raw ERP stock rows through the quality gate, ``chunk`` rows at a time (streamed): suite
        ``stock`` quarantines a negative deduction or an implausible quantity with its check and
        value, and a chunk too bad fails the run before any of it is pushed. The item of a
        quarantined row is held at the store location its warehouse feeds (:attr:`held`)."""
        batch: list[dict[str, Any]] = []
        quarantined, stock_key = self._quarantined, self.erp_map.stock_key
        for raw in raws:
            if quarantined and stock_key(raw) in quarantined:
                continue  # re-read to complete a location: already dead-lettered and held
            batch.append(raw)
            if len(batch) >= chunk:
                yield from self._gate_chunk(batch)
                batch = []
        if batch:
            yield from self._gate_chunk(batch)

    def _gate_chunk(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from erpsync.quality import run_gate

        self.ctx.summary = self.summary  # a failed run's e-mail still has its counts
        passed = run_gate(self.ctx, "stock", rows, self.summary, mapper=self.erp_map.stock_level,
                          key=self.erp_map.stock_key)
        for raw in passed:
            self.stale.saw(self.erp_map.stock_key(raw))
        if len(passed) < len(rows):
            self.stats.read += len(rows) - len(passed)
            ok = {id(r) for r in passed}
            stock_key, mapping = self.erp_map.stock_key, self.settings.location_map.mapping
            for raw in rows:
                if id(raw) not in ok:
                    key = stock_key(raw)
                    code, _, wh = key.rpartition("@")
                    if not code:  # not a record: nothing to hold, and no key to skip it by
                        continue
                    self._quarantined.add(key)
                    loc = mapping.get(wh)
                    if loc is not None:
                        self.held.add((code, loc))
        return passed

    def complete(self, figs: list[StockFigures]) -> tuple[list[StockFigures], set[str]]:
        """Add what the changed records need to be computed right; returns (figures, items to compute)."""
        by_item: dict[str, set[str]] = defaultdict(set)
        for f in figs:
            by_item[f.item_code].add(f.warehouse)
        targets = set(by_item)
        for code in list(by_item):
            targets.update(self.kits_of.get(code, ()))
        need: set[str] = set()
        lmap = self.settings.location_map
        # with more than one warehouse, any of them changing can change every location of the item
        # (several feed one location, or an over-allocated one takes from the others): read them all
        multi = sum(1 for loc in lmap.mapping.values() if loc is not None) > 1
        for code in targets:
            kit = self.kits.get(code)
            if kit is not None:
                need.update(c for c in kit.kit or {} if c not in by_item or multi)
            elif code in by_item and multi:
                need.add(code)
        known = {(f.item_code, f.warehouse) for f in figs}
        if need:
            extra = [f for f in self.read_stock(self.ctx.erp.stock_for_items(sorted(need)))
                     if (f.item_code, f.warehouse) not in known]
            self.stats.refetched += len(extra)
            figs = figs + extra
        return figs, targets

    def compute(self, figs: Iterable[StockFigures], targets: set[str] | None = None) -> dict[tuple[str, str], StoreLevel]:
        """(sku, store location) -> level for the target items (all items when ``targets`` is None)."""
        lmap = self.settings.location_map
        agg = Aggregate()
        for f in figs:
            restock = dt.date.fromisoformat(f.restock_date) if f.restock_date else None
            agg.add(lmap, f.item_code, f.warehouse, f.available, backorderable=f.backorderable,
                    restock_date=restock, at=f.modified, short=f.short)
        short = agg.settle(lmap.locations)
        if short:
            self.stats.report("over_allocated_units", ",".join(sorted(agg.short_skus)), short)
        for code, wh in agg.unmapped:
            self.stats.report("unmapped_location", f"{code}@{wh}")
        by_code = agg.levels
        codes = {code for code, _ in by_code} if targets is None else set(targets)
        kit_codes = [c for c in codes if c in self.kits]
        if targets is None:
            kit_codes = list(self.kits)
        infos = self.state.items(codes | set(kit_codes))
        out: dict[tuple[str, str], StoreLevel] = {}
        components = set(self.kits_of)
        locations = lmap.locations  # a property: built once, not once per item
        held = self.held
        for code in codes:
            if code in self.kits:
                continue
            info = infos.get(code)
            keep = code in components  # kits below still need it; the rest is freed as we go
            for loc in locations:
                lv = by_code.get((code, loc)) if keep else by_code.pop((code, loc), None)
                if lv is None:
                    continue
                if held and (code, loc) in held:
                    self.stats.report("held_by_quality_gate", f"{code}@{loc}")
                    continue
                if info is None:
                    self.unknown_item(code)
                    break
                avail = lv.available if info.active else 0
                if keep:  # kits below read the component's own figure
                    out[(info.sku, loc)] = StoreLevel(info.sku, loc, avail, lv.backorderable, lv.restock_date,
                                                      lv.source_at)
                else:  # reuse the object: a million of them at full scale
                    lv.sku, lv.available = info.sku, avail
                    out[(info.sku, loc)] = lv
        for code in kit_codes:
            info = self.kits[code]
            comps = info.kit or {}
            for loc in locations:
                if held and any((c, loc) in held for c in comps):
                    self.stats.report("held_by_quality_gate", f"{code}@{loc}")
                    continue
                comp_avail = {c: by_code[(c, loc)].available for c in comps if (c, loc) in by_code}
                comp_restock = {c: d for c in comps
                                if (c, loc) in by_code and (d := by_code[(c, loc)].restock_date) is not None}
                srcs = [by_code[(c, loc)].source_at for c in comps if (c, loc) in by_code]
                n = kit_available(comps, comp_avail) if info.active else 0
                out[(info.sku, loc)] = StoreLevel(info.sku, loc, n, False,
                                                  kit_restock_date(comps, comp_avail, comp_restock),
                                                  max((s for s in srcs if s), default=None))
        self.stats.computed += len(out)
        return out

    def aggregate_available(self, figures: Iterable[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
        """Store location -> item code -> the sum of its warehouses' available to sell, from (item
        code, warehouse, available to sell) figures; a warehouse the map does not know is reported
        (``unmapped_location``), one mapped to None is left out on purpose. The first half of
        :meth:`available_by_location`, without any item facts (the drift check reads them after)."""
        mapping = self.settings.location_map.mapping
        locations = self.settings.location_map.locations
        agg: dict[str, dict[str, int]] = {loc: {} for loc in locations}
        short: dict[str, dict[str, int]] = {}  # item code -> location -> units over-allocated
        for code, wh, avail in figures:
            loc = mapping.get(wh)
            if loc is None:
                if wh not in mapping:
                    self.stats.report("unmapped_location", f"{code}@{wh}")
                continue
            by_code = agg[loc]
            if avail < 0:  # a net figure: the warehouse is over-allocated by -avail
                owed = short.setdefault(code, {})
                owed[loc] = owed.get(loc, 0) - avail
                avail = 0
            by_code[code] = by_code.get(code, 0) + avail
        taken = 0
        for code, owed in short.items():
            before = {loc: agg[loc][code] for loc in locations if code in agg[loc]}
            for loc, n in take_shortfall(before, owed, locations).items():
                taken += agg[loc][code] - n
                agg[loc][code] = n
        if taken:
            self.stats.report("over_allocated_units", ",".join(sorted(short)), taken)
        return agg

    def available_by_location(
        self, agg: dict[str, dict[str, int]], items: Mapping[str, tuple[str, bool]]
    ) -> dict[str, dict[str, int]]:
        """Store location -> SKU -> available, for every item: the ``available`` of what
        :meth:`compute` gives for all items (same location map, kits, inactive items, reports of
        unknown items), without a level object per SKU-location: the drift check's path through a
        million of them. ``agg`` comes from :meth:`aggregate_available`, ``items`` maps every item
        code to (SKU, active) (``InventoryState.item_skus``)."""
        locations = self.settings.location_map.locations
        kits = self.kits
        out: dict[str, dict[str, int]] = {loc: {} for loc in locations}
        unknown: set[str] = set()
        for loc in locations:
            by_sku = out[loc]
            for code, avail in agg[loc].items():
                if code in kits:
                    continue
                info = items.get(code)
                if info is None:
                    if code not in unknown:
                        unknown.add(code)
                        self.unknown_item(code)
                    continue
                by_sku[info[0]] = avail if info[1] else 0
        for kit in kits.values():
            comps = kit.kit or {}
            for loc in locations:
                have = agg[loc]
                out[loc][kit.sku] = kit_available(comps, {c: have[c] for c in comps if c in have}) if kit.active else 0
        self.stats.computed += sum(len(v) for v in out.values())
        return out

    # -- the location map against the ERP's warehouses (issue 16, 1)
    def check_location_map(self, seen: Iterable[str] | None = None) -> int:
        """Report, once per run, every gap between the location map and the ERP's warehouses: a
        mapped warehouse the ERP does not have (its store location gets nothing from it:
        ``location_without_source``), an ERP warehouse the map does not name (its stock reaches no
        store: ``warehouse_not_mapped``; map it to null to leave it out on purpose). Each gap is a
        warning in the log, a reason in the run's summary and one open dead letter (entity
        ``location_map``, id ``warehouse:<code>``), closed by the first run that finds it fixed.
        The ERP's warehouses come from ``list_warehouses``; an ERP that cannot list them is
        checked against ``seen`` (the warehouses of a full read), else not at all. Returns the gaps."""
        ctx, lmap = self.ctx, self.settings.location_map
        listed = ctx.erp.list_warehouses()
        if listed is None:
            if seen is None:  # a partial read tells nothing of the warehouses that are missing
                return 0
            # what a full read showed, quarantined rows too; nothing read: nothing to tell
            seen = set(seen) | {k.rpartition("@")[2] for k in self._quarantined}
            if not seen:
                return 0
            listed = list(seen)
        erp = set(listed)
        gaps: dict[str, tuple[str, str]] = {}
        for wh, loc in lmap.mapping.items():
            if loc is not None and wh not in erp:
                fed = [w for w in lmap.sources(loc) if w in erp]
                gaps[wh] = ("location_without_source",
                            f"location_map: store location {loc!r} is fed by ERP warehouse {wh!r}, which the ERP "
                            f"does not have (its warehouses: {', '.join(sorted(erp)) or 'none'}): {loc!r} gets no "
                            + (f"stock from it (only from {', '.join(fed)})" if fed else "stock at all")
                            + "; fix the param location_map")
        for wh in sorted(erp - set(lmap.mapping)):
            gaps[wh] = ("warehouse_not_mapped",
                        f"location_map: ERP warehouse {wh!r} feeds no store location, so its stock reaches no "
                        f"store; map it to a location of the store, or to null to leave it out on purpose")
        fixed = {wh for wh in erp | set(lmap.mapping)} | {
            d.external_id.removeprefix("warehouse:") for d in ctx.store.list_dead_letters(
                flow=ctx.flow, reason_like="location_map:") if d.entity == "location_map"}
        for wh in sorted(fixed - set(gaps)):
            ctx.store.resolve_dead_letters(ctx.flow, "location_map", f"warehouse:{wh}")
        self.map_gaps += len(gaps)
        for wh, (kind, reason) in sorted(gaps.items()):
            ctx.log.warning("%s: %s", ctx.flow, reason)
            dead_letter(ctx, self.summary, "location_map", f"warehouse:{wh}",
                        {"warehouse": wh, "location": lmap.mapping.get(wh), "erp_warehouses": sorted(erp),
                         "location_map": dict(lmap.mapping)}, f"{kind}: {reason}", error_kind="config")
        return len(gaps)

    # -- what the store holds now (issue 16, 4)
    def store_now(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """(sku, location) -> the store's level as it is now (``store_level_of``: what it sells),
        read for these SKUs only (``inventory_for``): the cycle compares with the store, not only
        with what it last pushed, so a figure moved under it (a hand edit, a fulfilment the store
        booked its own way) is seen and set right."""
        skus = sorted({k[0] for k in keys})
        if not skus:
            return {}
        store_level_of = self.store_map.store_level_of
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for raw in self.ctx.storefront.inventory_for(skus):
            row = store_level_of(raw)
            if row is not None:
                out[(row["sku"], str(row["location"]))] = row
        return out

    # -- store orders the ERP has not received yet
    def deduct_in_flight(self, levels: dict[tuple[str, str], StoreLevel]) -> int:
        """Take the units of store orders not yet written to the ERP off the pool.

        The store already counted them down, the ERP does not know them until orders_sync writes
        them (every minute); pushing the ERP's figure as it is would hand those units out again.
        Orders updated in the last ``in_flight_minutes`` (15) without a sales-order cross reference
        are in flight; their units come off the SKU's store locations in location order.
        """
        ctx = self.ctx
        if not levels or not ctx.params.get("deduct_in_flight", True):
            return 0
        skus = {k[0] for k in levels}
        in_flight = self.store_map.in_flight_lines
        orders = [held for held in map(in_flight, self.recent_orders()) if held]
        synced = ctx.store.xref_map("erp", "sales_order", [oid for oid, _ in orders])
        units: Counter[str] = Counter()
        for oid, lines in orders:
            if oid in synced:
                continue
            for sku, qty in lines:
                if sku in skus:
                    units[sku] += qty
        taken = 0
        for sku, n in units.items():
            for loc in self.settings.location_map.locations:
                lv = levels.get((sku, loc))
                if lv is None or n <= 0:
                    continue
                take = min(n, lv.available)
                lv.available -= take
                n -= take
                taken += take
        if taken:
            self.stats.report("in_flight_units", ",".join(sorted(units)), taken)
        return taken

    def recent_orders(self) -> list[Any]:
        """Store orders updated in the last ``in_flight_minutes`` (15), read once per pass."""
        if self._recent is None:
            minutes = float(self.ctx.params.get("in_flight_minutes", 15))
            since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
            self._recent = list(self.ctx.storefront.list_orders(updated_since=since))
        return self._recent

    def observe_sales(self) -> int:
        """With ``channel_demand: "observed"``: record the units of the recent store orders per SKU
        and channel (the order's ``source_name``, else this run's channel). Each run of every
        channel records its store's orders in the shared state store, so each sees the others'
        demand. An order read again rewrites its rows: nothing counts twice."""
        s = self.settings
        sale_lines = getattr(self.store_map, "sale_lines", None)
        default = s.channel  # set whenever shares are (Settings.from_ctx)
        if not s.observed or not s.shares or not default or sale_lines is None:
            return 0
        now = dt.datetime.now(dt.UTC)
        rows: list[tuple[str, str, str, int, dt.datetime]] = []
        for sale in map(sale_lines, self.recent_orders()):
            if sale is None:
                continue
            oid, channel, at, lines = sale
            channel = channel if channel in s.shares else default
            rows.extend((oid, sku, channel, units, at or now) for sku, units in lines)
        return self.state.record_sales(rows) if rows else 0

    def demand_of(self, skus: Iterable[str] | None) -> dict[str, dict[str, int]] | None:
        """SKU -> channel -> units expected (observed: sold in the window); None: the static
        ``channel_demand`` (or none) for every SKU."""
        s = self.settings
        if not s.observed:
            return None
        return self.state.channel_demand(dt.datetime.now(dt.UTC) - s.demand_window, skus)

    # -- channel share and store filter
    def for_store(self, levels: dict[tuple[str, str], StoreLevel], *, skip_hot: bool) -> dict[tuple[str, str], StoreLevel]:
        s = self.settings
        store_skus = self.state.store_skus({k[0] for k in levels})
        observed = self.demand_of(store_skus) if s.shares and s.channel else None
        out: dict[tuple[str, str], StoreLevel] = {}
        for key, lv in levels.items():
            if key[0] not in store_skus:
                self.stats.report("not_in_store", key[0])
                continue
            if skip_hot and key[0] in s.hot_skus:
                self.stats.report("fast_lane", key[0])
                continue
            if s.shares and s.channel:
                demand = observed.get(key[0]) if observed is not None else s.demand
                lv.available = allocate_channels(lv.available, s.shares, demand)[s.channel]
            out[key] = lv
        return out

    # -- compare and push
    def differences(
        self, levels: dict[tuple[str, str], StoreLevel], *, reread: bool = True
    ) -> list[tuple[StoreLevel, dict[str, Any]]]:
        """What differs from the store: from what it holds now (:meth:`store_now`, with ``reread``
        and the param ``compare_with_store``, on by default), else from what was last pushed. A
        level the store changed under us (it differs from what we last pushed and from what it
        should be) is reported as ``store_changed`` and set right."""
        pushed = self.state.pushed(levels)
        now = self.store_now(levels) if reread and self.ctx.params.get("compare_with_store", True) else {}
        diffs: list[tuple[StoreLevel, dict[str, Any]]] = []
        unchanged = 0
        level_to_storefront = self.store_map.level_to_storefront
        for key in sorted(levels):
            lv = levels[key]
            payload = level_to_storefront(lv)
            last = pushed.get(key)
            current = now.get(key)
            if current is not None:
                if _same_now(current, payload):
                    unchanged += 1
                    continue
                if last is not None and _same(last, payload):
                    self.stats.report("store_changed", f"{key[0]}@{key[1]}")
            elif last is not None and _same(last, payload):
                unchanged += 1
                continue
            diffs.append((lv, payload))
        self.summary.skipped += unchanged
        if unchanged:
            self.summary.reasons["unchanged"] += unchanged
        self.stats.changed += len(diffs)
        return diffs

    def push(self, diffs: list[tuple[StoreLevel, dict[str, Any]]], *, tag: str = "") -> int:
        """Send the differences in batches of the store's limit; remember each accepted batch."""
        limit = self.settings.batch_limit
        sent = 0
        for n, start in enumerate(range(0, len(diffs), limit)):
            batch = diffs[start : start + limit]
            sent += self._push_batch(batch, f"{n}{tag}")
        return sent

    def _push_batch(self, batch: list[tuple[StoreLevel, dict[str, Any]]], label: str) -> int:
        ctx = self.ctx
        payload = [p for _, p in batch]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        key = f"inventory:{ctx.flow}:{ctx.run_id}:{label}:{digest}"
        started = time.monotonic()
        self.stats.push_calls += 1
        try:
            response = ctx.storefront.set_inventory(payload, idempotency_key=key)
        except PermanentError as exc:
            audit(ctx, "storefront", "set_inventory", ENTITY, f"batch:{label}", {"items": len(payload)},
                  {"error": str(exc), "status": exc.status}, _ms(started), "error")
            bad = _rejected(exc, len(payload))
            if not bad or len(bad) == len(payload) and len(payload) == 1:
                for lv, p in batch if not bad else [batch[i] for i in bad]:
                    dead_letter(ctx, self.summary, ENTITY, f"{lv.sku}@{lv.location}", p,
                                f"store_rejected: {exc.status} {exc}")
                if not bad:
                    return 0
            else:
                for i in bad:
                    lv, p = batch[i]
                    dead_letter(ctx, self.summary, ENTITY, f"{lv.sku}@{lv.location}", p,
                                f"store_rejected: {_reason_of(exc, i)}")
            rest = [b for i, b in enumerate(batch) if i not in bad]
            return self._push_batch(rest, f"{label}r") if rest else 0
        audit(ctx, "storefront", "set_inventory", ENTITY, f"batch:{label}", {"items": len(payload), "key": key},
              {"updated": (response or {}).get("updated") if isinstance(response, dict) else None},
              _ms(started), "ok")
        self.state.record_pushed(
            {"sku": lv.sku, "location": lv.location, "available": p["available"],
             "backorderable": bool(p.get("backorderable")), "restock_date": p.get("restock_date"),
             "source_modified": _src(lv.source_at)}
            for lv, p in batch
        )
        self.summary.done += len(batch)
        self.stats.pushed += len(batch)
        return len(batch)


def _src(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _same(last: Pushed, payload: dict[str, Any]) -> bool:
    return (last.available == payload["available"] and last.backorderable == bool(payload.get("backorderable"))
            and (last.restock_date or None) == payload.get("restock_date"))


def _same_now(current: dict[str, Any], payload: dict[str, Any]) -> bool:
    """The store's level as it is now already shows ``payload``."""
    return (current.get("available") == payload["available"]
            and bool(current.get("backorderable")) == bool(payload.get("backorderable"))
            and (current.get("restock_date") or None) == payload.get("restock_date"))


def _rejected(exc: PermanentError, n: int) -> set[int]:
    """Indexes the store named in a 422 ``errors[]``; empty when it named none."""
    body = exc.body if isinstance(exc.body, dict) else {}
    out = set()
    for e in body.get("errors") or []:
        i = e.get("index") if isinstance(e, dict) else None
        if isinstance(i, int) and 0 <= i < n:
            out.add(i)
    return out


def _reason_of(exc: PermanentError, i: int) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    for e in body.get("errors") or []:
        if isinstance(e, dict) and e.get("index") == i:
            return str(e.get("error"))
    return str(exc)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --------------------------------------------------------------------------- the cycle


def run(ctx: FlowContext) -> RunSummary:
    """One inventory_sync cycle (see the module docstring)."""
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    try:
        settings = Settings.from_ctx(ctx)
    except ValueError as exc:
        from erpsync.errors import ConfigError

        raise ConfigError(f"{ctx.flow}: {exc}") from None
    engine = Engine(ctx, settings, summary)
    try:
        cycle(engine)
    except TransientError:
        summary.failed += 1
        ctx.log.error("%s: stopped by a transient error; batches already pushed are kept\n%s",
                      ctx.flow, summary.render())
        raise
    finish(engine)
    return summary


def cycle(engine: Engine) -> CycleStats:
    ctx, state = engine.ctx, engine.state
    refresh_items(ctx, state, engine.summary)
    new_skus = refresh_store_skus(ctx, state)
    since = _cursor(ctx, "stock")
    first = since is None  # no cursor: the first run, or an ERP whose stock has no change time (Tryton)
    seen: set[str] = set()  # the warehouses of a full read: the map's check when the ERP cannot list them
    baseline = 0
    if first:
        ctx.log.info("%s: full stock export (first run, or an ERP without stock change times)", ctx.flow)
        baseline = bootstrap_baseline(engine)
        # through the quality gate in large chunks: streamed, memory bounded by one chunk
        raws: Iterable[dict[str, Any]] = engine.gated(ctx.erp.export_stock(), chunk=FIRST_RUN_CHUNK)
    else:
        ctx.log.info("%s: stock changed since %s", ctx.flow, since)
        raws = ctx.erp.list_stock(updated_since=since)
    if first:  # streamed: a million records are folded as they arrive, never held as a list
        water = HighWater()

        def tracked() -> Iterator[StockFigures]:
            for f in engine.figures(raws):
                water.see(f.modified)
                seen.add(f.warehouse)
                yield f

        levels = engine.compute(tracked())
        high = water.high
        # the store's orders the ERP has not received yet come off on a full read too
        engine.observe_sales()
        engine.deduct_in_flight(levels)
    else:
        levels, high = _incremental(engine, raws, new_skus)
    if first:
        engine.check_location_map(seen)
    else:
        engine.check_location_map()
    levels = engine.for_store(levels, skip_hot=True)
    # a baseline just taken is the store's levels read a moment ago: no second read; every other
    # cycle compares with what the store holds now
    engine.push(engine.differences(levels, reread=not baseline))
    if high is not None:
        ctx.store.cursors.advance(ctx.flow, high, "stock")
    return engine.stats


def _incremental(
    engine: Engine, raws: Iterable[dict[str, Any]], new_skus: list[str]
) -> tuple[dict[tuple[str, str], StoreLevel], dt.datetime | None]:
    ctx, state = engine.ctx, engine.state
    figs = engine.read_stock(raws)
    water = HighWater()  # the latest change time, compared as a time (ERPs differ in how they write it)
    for f in figs:
        water.see(f.modified)
    high = water.high
    if new_skus:  # products published since the last cycle: their stock goes too
        seen = {f.item_code for f in figs}
        codes = [i.item_code for i in state.items_by_sku(new_skus).values() if i.item_code not in seen]
        if codes:
            extra = engine.read_stock(ctx.erp.stock_for_items(codes))
            engine.stats.refetched += len(extra)
            figs += extra
    figs, targets = engine.complete(figs)
    levels = engine.compute(figs, targets)
    engine.observe_sales()
    engine.deduct_in_flight(levels)
    return levels, high


def bootstrap_baseline(engine: Engine) -> int:
    """First run: what the store shows now counts as "last pushed" (only real differences go)."""
    if engine.state.pushed_count():
        return 0
    rows: list[dict[str, Any]] = []
    total = 0
    store_level_of = engine.store_map.store_level_of
    for raw in engine.ctx.storefront.export_inventory():
        row = store_level_of(raw)
        if row is not None:
            rows.append(row)
        if len(rows) >= BASELINE_CHUNK:  # bounded memory at a million levels
            total += engine.state.record_pushed(rows)
            rows = []
    return total + engine.state.record_pushed(rows)


def finish(engine: Engine) -> None:
    """Fold the reports into the summary and log them with samples; resolve the dead letters of the
    stock records this run read again fixed (``erpsync.quality.stale``)."""
    engine.stale.resolve()
    s, st = engine.summary, engine.stats
    # the general rule (flows.base.check_useful): stock records read, and those that reached the
    # computation (not dead-lettered)
    s.read = max(s.read, st.read)
    s.compared = max(0, st.read - (s.quarantined - engine.map_gaps))  # a map gap is no stock record
    for reason, n in st.reports.items():
        if reason not in NOT_SKIPS:
            s.skipped += n
        s.reasons[reason] += n
        engine.ctx.log.warning("%s: %s x%d (e.g. %s)", engine.ctx.flow, reason, n, ", ".join(st.samples[reason][:SAMPLE]))
    engine.ctx.log.info(
        "%s: read %d stock records (+%d to complete kits/locations), %d levels computed, %d changed, "
        "%d pushed in %d calls (batch limit %d)", engine.ctx.flow, st.read, st.refetched, st.computed, st.changed,
        st.pushed, st.push_calls, engine.settings.batch_limit)


# --------------------------------------------------------------------------- the fast lane


#: how the fast lane waits between two polls; tests replace it (``monkeypatch.setattr(inventory,
#: "poll_sleep", ...)``), never through a run's Params
poll_sleep = time.sleep


def run_fast_lane(ctx: FlowContext) -> RunSummary:
    """Hot SKUs only, polled every ``poll_seconds`` for ``budget_seconds`` (0: one pass).

    Each pass reads the ERP stock of the hot SKUs (and of the components of hot kits) by item,
    computes, and pushes what differs from what was last pushed: a change reaches the store within
    one poll interval plus a push.
    """
    refuse_test_seams(ctx)
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    settings = _fast_settings(ctx)
    if not settings.hot_skus:
        ctx.log.info("%s: no fast_lane_skus configured; nothing to do", ctx.flow)
        return summary
    poll = float(ctx.params.get("poll_seconds", 10))
    budget = float(ctx.params.get("budget_seconds", 0))
    engine = Engine(ctx, settings, summary)
    engine.check_location_map()
    deadline = time.monotonic() + budget
    passes = 0
    while True:
        passes += 1
        fast_pass(engine)
        if time.monotonic() + poll > deadline:
            break
        poll_sleep(poll)
    finish(engine)
    ctx.log.info("%s: %d passes", ctx.flow, passes)
    return summary


def _fast_settings(ctx: FlowContext) -> Settings:
    try:
        return Settings.from_ctx(ctx)
    except ValueError as exc:
        from erpsync.errors import ConfigError

        raise ConfigError(f"{ctx.flow}: {exc}") from None


def run_fast_lane_for(ctx: FlowContext, item_codes: Iterable[str]) -> RunSummary:
    """The event-driven fast lane (issue 21): one pass over the hot SKUs that the ERP items named
    by ``stock.changed`` events feed (the item itself, or a component of a hot kit).

    The event is a hint: their stock is read again from the ERP (``stock_for_items`` of those items
    and their kits' components), never taken from the payload. An item that feeds no hot SKU is
    reported (``not_hot``) and left to ``inventory_sync``, which reads it by cursor: the two flows
    still never write the same SKU.
    """
    refuse_test_seams(ctx)
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    named = {str(c) for c in item_codes}
    settings = _fast_settings(ctx)
    if not settings.hot_skus:
        ctx.log.info("%s: no fast_lane_skus configured; %d named item(s) left to inventory_sync",
                     ctx.flow, len(named))
        return summary
    engine = Engine(ctx, settings, summary)
    engine.check_location_map()
    fast_pass(engine, named=named)
    finish(engine)
    return summary


def fast_pass(engine: Engine, named: set[str] | None = None) -> int:
    """One read-compute-push of the hot SKUs; ``named``: only those fed by these item codes."""
    state = engine.state
    items = state.items_by_sku(engine.settings.hot_skus)
    missing = engine.settings.hot_skus - set(items)
    for sku in sorted(missing):
        engine.stats.report("unknown_item", sku)
    if named is not None:
        items = {sku: i for sku, i in items.items()
                 if i.item_code in named or named & set((engine.kits.get(i.item_code) or i).kit or {})}
        feeding = {i.item_code for i in items.values()} | {
            c for i in items.values() for c in ((engine.kits.get(i.item_code) or i).kit or {})}
        for code in sorted(named - feeding):
            engine.stats.report("not_hot", code)
    codes = {i.item_code for i in items.values()}
    fetch = set(codes)
    for code in codes:
        kit = engine.kits.get(code)
        if kit is not None:
            fetch.update(kit.kit or {})
    if not fetch:
        return 0
    figs = engine.read_stock(engine.ctx.erp.stock_for_items(sorted(fetch)))
    levels = engine.compute(figs, codes)
    engine._recent = None  # each poll reads the orders of its own last minutes
    engine.observe_sales()
    engine.deduct_in_flight(levels)
    levels = engine.for_store(levels, skip_hot=False)
    return engine.push(engine.differences(levels), tag=f"f{int(time.time() * 1000)}")
