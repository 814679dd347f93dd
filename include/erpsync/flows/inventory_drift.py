"""inventory_drift_check: a full comparison of ERP availability and store stock, every SKU-location.

1. Refresh items and the store's SKUs (as inventory_sync does).
2. Read the whole ERP stock (bulk export, as blocks of array rows, when the adapter speaks the
   canonical shape; otherwise record by record through the adapter's own mapping: Tryton reads
   each product's quantities per warehouse, Vendure each variant's stock levels) and compute what
   every store SKU-location should show (``Engine.aggregate_available`` and ``available_by_location``: the
   figure only, one dict per location, no object per SKU-location), while the store's levels (bulk export) are read in a
   second thread. A record of either export that cannot be read is dead-lettered, never skipped.
3. Classify every difference: ``quantity_mismatch``, ``kit_mismatch`` (the SKU is a kit),
   ``missing_in_store`` (the store carries the SKU but has no level at that location),
   ``missing_in_erp`` (the store has a level for a SKU the ERP does not know), ``unmapped_location``
   (an ERP warehouse the location map does not know, or a store location no warehouse feeds).
4. Store a drift report (counts by kind; the first ``max_items`` differences as items), render the
   summary e-mail and log it. A run that read records but compared no SKU-location, or that could
   read less than ``min_compared_share`` of either side's records (from ``min_compared_batch``
   records), fails (``flows.base.NothingUseful``, :func:`check_compared`) after its report is
   stored: a check that compares nothing never says "no drift".
5. Heal when ``heal`` is on: re-read the ERP stock of the drifted items, recompute, and push only
   where the fresh value still differs and no newer write reached the SKU-location since the check
   began (a sync or fast-lane push after that instant wins; the healer never overwrites it).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from erpsync.errors import ConfigError, MappingError
from erpsync.flows.base import (
    FlowContext,
    NothingUseful,
    RunSummary,
    compared_limits,
    dead_letter,
    side_problems,
)
from erpsync.flows.inventory import Engine, Settings, finish, refresh_items, refresh_store_skus
from erpsync.mappings import stock as canonical
from erpsync.mappings.stock import record_key, stock_available_rows, store_level_rows
from erpsync.rules.availability import StoreLevel, allocate_channels

FLOW = "inventory_drift_check"
KINDS = ("quantity_mismatch", "kit_mismatch", "missing_in_store", "missing_in_erp", "unmapped_location")
HEAL_KINDS = ("quantity_mismatch", "kit_mismatch", "missing_in_store")
DEFAULT_MAX_ITEMS = 50_000


@dataclass
class DriftResult:
    counts: Counter[str] = field(default_factory=Counter)
    items: list[dict[str, Any]] = field(default_factory=list)
    compared: int = 0
    #: store levels with no ERP counterpart that were classified (missing_in_erp, unmapped_location,
    #: a level where no warehouse holds the item): compared too, from the store's side
    store_only: int = 0
    #: records read from the ERP and from the store
    erp_read: int = 0
    store_read: int = 0
    #: records of either export that could not be read: dead-lettered (flow, reason mapping_error)
    unreadable: int = 0
    unreadable_store: int = 0  # of which store levels
    healed: int = 0
    heal_skipped_newer: int = 0
    report_id: int | None = None

    def summary(self) -> dict[str, Any]:
        return {"compared": self.compared, "store_only": self.store_only, "erp_read": self.erp_read,
                "store_read": self.store_read, "differences": sum(self.counts.values()),
                "by_kind": {k: self.counts.get(k, 0) for k in KINDS}, "unreadable": self.unreadable,
                "healed": self.healed,
                "heal_skipped_newer": self.heal_skipped_newer, "stored_items": len(self.items)}


def run(ctx: FlowContext) -> RunSummary:
    return run_with_email(ctx)[0]


def run_with_email(ctx: FlowContext) -> tuple[RunSummary, tuple[str, str], DriftResult]:
    """The check, plus the summary e-mail (subject, body): rendered and logged here, and sent through
    ``ctx.notifier`` when the runtime gives one (SMTP when configured)."""
    summary = RunSummary(flow=ctx.flow, run_id=ctx.run_id)
    try:
        settings = Settings.from_ctx(ctx)
    except ValueError as exc:
        raise ConfigError(f"{ctx.flow}: {exc}") from None
    engine = Engine(ctx, settings, summary)
    result = check(engine)
    subject, body = render_email(ctx.flow, ctx.run_id, result)
    ctx.log.info("drift summary e-mail\nSubject: %s\n\n%s", subject, body)
    notifier = getattr(ctx, "notifier", None)
    if notifier is not None and ctx.params.get("email", True):
        try:
            notifier.send(subject, body)  # SMTP when configured (erpsync_airflow.notifiers), else the log
        except Exception:
            ctx.log.warning("%s: the drift summary e-mail could not be sent", ctx.flow, exc_info=True)
    summary.done = result.healed
    finish(engine)
    # the general rule (flows.base.check_useful): records read on both sides, SKU-locations compared
    summary.read = result.erp_read + result.store_read
    summary.compared = result.compared + result.store_only
    summary.compared_unit = "SKU-locations"
    check_compared(ctx, summary, result)
    return summary, (subject, body), result


def check_compared(ctx: FlowContext, summary: RunSummary, res: DriftResult) -> None:
    """The drift check's form of the general rule (``flows.base.check_useful``): it fails when it
    read records but compared no SKU-location of the ERP with the store, or when either side
    (from ``min_compared_batch`` records) could be read for less than ``min_compared_share`` of
    its records: a check that cannot read one side would report every level as a difference, or
    none at all. The report is stored before."""
    share, batch = compared_limits(ctx.params)
    summary.useful_checked = True
    problems: list[str] = []
    if res.erp_read + res.store_read and res.compared == 0:
        problems.append("compared no SKU-location of the ERP with the store")
    erp_bad = res.unreadable - res.unreadable_store
    problems += side_problems({"ERP stock records": (res.erp_read, res.erp_read - erp_bad),
                               "store levels": (res.store_read, res.store_read - res.unreadable_store)},
                              share, batch)
    if problems:
        reason = (f"{ctx.flow}: {'; '.join(problems)} (read {res.erp_read} ERP stock records and {res.store_read} "
                  f"store levels, {res.unreadable} unreadable: dead letters; drift report #{res.report_id})")
        ctx.log.error("%s\n%s", reason, summary.render())
        raise NothingUseful(reason, summary)


def check(engine: Engine) -> DriftResult:
    ctx, state, s = engine.ctx, engine.state, engine.settings
    started = ctx.store.db.now()
    refresh_items(ctx, state, engine.summary)
    refresh_store_skus(ctx, state)

    # location -> SKU -> available: one small dict per location, no key tuple per SKU-location
    res = DriftResult()
    store_levels: dict[str, dict[str, int]] = {}
    unreadable: list[tuple[dict[str, Any], MappingError]] = []  # dead-lettered below, in this thread
    failure: list[BaseException] = []

    def read_store() -> None:
        try:
            def bad(raw: dict[str, Any], exc: MappingError) -> None:
                unreadable.append((raw, exc))

            for sku, loc, avail in _store_levels(engine, res, bad):
                by_sku = store_levels.get(loc)
                if by_sku is None:
                    by_sku = store_levels[loc] = {}
                by_sku[sku] = avail
        except BaseException as exc:  # re-raised in the main thread
            failure.append(exc)

    reader = threading.Thread(target=read_store, name="drift-store-read", daemon=True)
    reader.start()
    agg = engine.aggregate_available(_erp_figures(engine, res))
    reader.join()
    if failure:
        raise failure[0]
    # read after the join: a database read next to a busy thread waits for the GIL row by row
    items = state.item_skus()
    expected = engine.available_by_location(agg, items)
    agg.clear()
    res.unreadable += len(unreadable)
    res.unreadable_store += len(unreadable)
    for raw, exc in unreadable:
        dead_letter(ctx, engine.summary, "inventory_level", _level_key(raw), raw,
                    f"mapping_error: {exc}", error_kind="mapping")

    store_skus = state.all_store_skus()
    kit_skus = {k.sku for k in engine.kits.values()}
    known_skus = {sku for sku, _ in items.values()}
    items.clear()
    locations = set(s.location_map.locations)
    cap = int(ctx.params.get("max_items", DEFAULT_MAX_ITEMS))
    to_heal: list[tuple[str, str]] = []
    channel = _channel(engine)

    def note(kind: str, sku: str, loc: str, **detail: Any) -> None:
        res.counts[kind] += 1
        if kind in ("missing_in_erp", "unmapped_location") or detail.get("no_erp_record"):
            res.store_only += 1
        if len(res.items) < cap:
            res.items.append({"entity": "inventory_level", "external_id": f"{sku}@{loc}", "kind": kind,
                              "sku": sku, "location": loc, **detail})
        if kind in HEAL_KINDS:
            to_heal.append((sku, loc))

    for loc, want_by_sku in expected.items():
        have_by_sku = store_levels.get(loc) or {}
        for sku, avail in want_by_sku.items():
            if sku not in store_skus:
                continue  # reported by inventory_sync as not_in_store; the catalog publishes it
            res.compared += 1
            want = channel(sku, avail) if channel else avail
            have = have_by_sku.pop(sku, None)
            if have is None:
                note("missing_in_store", sku, loc, erp=want)
            elif have != want:
                note("kit_mismatch" if sku in kit_skus else "quantity_mismatch", sku, loc, erp=want, store=have)
    for loc, have_by_sku in store_levels.items():
        mapped = loc in locations
        for sku, have in have_by_sku.items():
            if not mapped:
                note("unmapped_location", sku, loc, store=have, side="store")
            elif sku not in known_skus:
                note("missing_in_erp", sku, loc, store=have)
            elif sku in store_skus and have != 0:
                # the ERP knows the item but no warehouse feeding this location holds a record of
                # it: nothing to sell there, while the store offers some (an oversell risk)
                note("kit_mismatch" if sku in kit_skus else "quantity_mismatch", sku, loc, erp=0, store=have,
                     no_erp_record=True)
    for reason, n in engine.stats.reports.items():
        if reason == "unmapped_location":
            res.counts["unmapped_location"] += n
            for key in engine.stats.samples[reason]:
                if len(res.items) < cap:
                    res.items.append({"entity": "stock", "external_id": key, "kind": "unmapped_location",
                                      "side": "erp"})
    engine.stats.reports.pop("unmapped_location", None)
    expected.clear()
    store_levels.clear()

    if ctx.params.get("heal") and to_heal:
        heal(engine, to_heal, started, res)
    res.report_id = ctx.store.add_drift_report(ctx.flow, ctx.run_id, res.summary(), res.items)
    return res


def _erp_figures(engine: Engine, res: DriftResult) -> Iterator[tuple[str, str, int]]:
    """(item code, warehouse, available to sell) of every ERP stock record (:func:`_erp_rows`),
    each SKU-warehouse once: a second record of one (an export holds no change time to tell which
    is true) is a dead letter ``duplicate_stock_key``, never added to the first (it would show
    stock twice). One set of item codes per warehouse: the codes are the objects the rows hold."""
    seen: dict[str, set[str]] = {}
    for code, wh, avail in _erp_rows(engine, res):
        codes = seen.get(wh)
        if codes is None:
            codes = seen[wh] = set()
        if code in codes:
            res.unreadable += 1
            dead_letter(engine.ctx, engine.summary, "stock", f"{code}@{wh}",
                        {"item_code": code, "warehouse": wh, "available": avail},
                        f"duplicate_stock_key: {code}@{wh} is in the ERP's stock twice; the first record is "
                        "compared, this one is not (fix the record in the ERP)", error_kind="mapping")
            continue
        codes.add(code)
        yield code, wh, avail


def _erp_rows(engine: Engine, res: DriftResult) -> Iterator[tuple[str, str, int]]:
    """(item code, warehouse, available to sell) of every ERP stock record, from the bulk export's
    blocks; a malformed record is dead-lettered (as ``Engine.figures`` does) and the rest goes on."""
    ctx, summary = engine.ctx, engine.summary

    def bad(raw: dict[str, Any], exc: MappingError) -> None:
        res.unreadable += 1
        dead_letter(ctx, summary, "stock", engine.erp_map.stock_key(raw), raw, f"mapping_error: {exc}",
                    error_kind="mapping")

    safety = engine.settings.include_safety_stock
    stock_figures = engine.erp_map.stock_figures
    if stock_figures is canonical.stock_figures:  # the canonical shape: its bulk export, block by block
        for block in ctx.erp.export_stock_rows():
            engine.stats.read += len(block.rows)
            res.erp_read += len(block.rows)
            yield from stock_available_rows(block.fields, block.rows, bad, include_safety_stock=safety)
        return
    # an ERP with its own shape and no columnar export (Tryton: each product's quantities read per
    # warehouse): record by record through its mapping, as inventory_sync reads it
    for raw in ctx.erp.export_stock():
        engine.stats.read += 1
        res.erp_read += 1
        try:
            f = stock_figures(raw, include_safety_stock=safety)
        except MappingError as exc:
            bad(raw, exc)
            continue
        yield f.item_code, f.warehouse, f.net  # minus the over-allocation: taken off the other locations


def _store_levels(engine: Engine, res: DriftResult,
                  bad: Callable[[dict[str, Any], MappingError], None]) -> Iterator[tuple[str, str, int]]:
    """(sku, store location, available) of every store level: the bulk export's blocks when the
    store speaks the canonical shape, else each level through the store's mapping
    (``store_level_of``: Vendure's variant stock levels)."""
    ctx = engine.ctx
    store_level_of = engine.store_map.store_level_of
    if store_level_of is canonical.store_level_of:
        for block in ctx.storefront.export_inventory_rows():
            res.store_read += len(block.rows)
            yield from store_level_rows(block.fields, block.rows, bad)
        return
    for raw in ctx.storefront.export_inventory():
        res.store_read += 1
        row = store_level_of(raw) if isinstance(raw, dict) else None
        if row is None:
            bad(raw if isinstance(raw, dict) else {"_record": raw},
                MappingError(f"store level {_level_key(raw)}", "sku/location/available",
                             "the store's level shape", raw))
            continue
        yield row["sku"], row["location"], row["available"]


def _level_key(raw: Any) -> str:
    """The id a dead letter of a store level is filed under (``sku@location`` in either shape)."""
    key = record_key(raw, "sku", "location_id")
    if key == "?" and isinstance(raw, dict) and raw.get("stockLocationId") is not None:
        key = record_key({"sku": raw.get("sku"), "loc": str(raw.get("stockLocationId"))}, "sku", "loc")
    return key


def _channel(engine: Engine) -> Callable[[str, int], int] | None:
    """The configured channel's part of a SKU's pool (None: the whole pool is the store's), with
    the same demand as inventory_sync (observed: what each SKU sold in the window)."""
    s = engine.settings
    if s.shares and s.channel:
        shares, demand, channel = s.shares, s.demand, s.channel
        observed = engine.demand_of(None)  # every SKU sold in the window: a few, not a million
        if observed is not None:
            return lambda sku, pool: allocate_channels(pool, shares, observed.get(sku))[channel]
        return lambda sku, pool: allocate_channels(pool, shares, demand)[channel]
    return None


def heal(engine: Engine, keys: list[tuple[str, str]], started: dt.datetime, res: DriftResult) -> None:
    """Push the fresh value of each drifted SKU-location, unless a newer write got there first."""
    state = engine.state
    newer = state.pushed_since(keys, started)
    res.heal_skipped_newer = len(newer)
    wanted = [k for k in keys if k not in newer]
    items = state.items_by_sku({k[0] for k in wanted})
    codes = {i.item_code for i in items.values()}
    fetch = set(codes)
    for code in codes:
        kit = engine.kits.get(code)
        if kit is not None:
            fetch.update(kit.kit or {})
    figs = engine.read_stock(engine.ctx.erp.stock_for_items(sorted(fetch)))  # through the quality gate
    fresh = engine.for_store(engine.compute(figs, codes), skip_hot=False)
    store_level_of, level_to_storefront = engine.store_map.store_level_of, engine.store_map.level_to_storefront
    current: dict[tuple[str, str], Any] = {}
    for r in engine.ctx.storefront.inventory_for(sorted({k[0] for k in wanted})):
        lv_now = store_level_of(r)
        if lv_now is not None:
            current[(lv_now["sku"], lv_now["location"])] = lv_now["available"]
    diffs = []
    for key in sorted(set(wanted)):
        info = items.get(key[0])
        if info is not None and engine.held and any(
                (c, key[1]) in engine.held for c in (info.kit or {info.item_code: 1})):
            continue  # a stock record feeding it was quarantined: the store keeps its figure
        # no fresh level: still no ERP record feeds that location, so there is nothing to sell
        lv = fresh.get(key) or StoreLevel(sku=key[0], location=key[1], available=0)
        if current.get(key) == lv.available:
            continue
        diffs.append((lv, level_to_storefront(lv)))
    res.healed = engine.push(diffs, tag="heal")


def render_email(flow: str, run_id: str, res: DriftResult, *, top: int = 10) -> tuple[str, str]:
    """Subject and plain-text body of the nightly drift summary."""
    total = sum(res.counts.values())
    subject = f"[erpsync] {flow}: {total:,} differences in {res.compared:,} SKU-locations"
    lines = [f"Run {run_id}: compared {res.compared:,} SKU-locations of the ERP and the store "
             f"(read {res.erp_read:,} ERP stock records and {res.store_read:,} store levels).", ""]
    for kind in KINDS:
        lines.append(f"  {kind:<20} {res.counts.get(kind, 0):>10,}")
    lines.append(f"  {'total':<20} {total:>10,}")
    if res.unreadable:
        lines += ["", f"Unreadable records (dead letters, reason mapping_error): {res.unreadable:,}."]
    lines += ["", f"Healed: {res.healed:,} (skipped because a newer write got there first: {res.heal_skipped_newer:,})."]
    if res.items:
        lines += ["", f"First {min(top, len(res.items))} differences:"]
        for it in res.items[:top]:
            lines.append(f"  {it['kind']}: {it['external_id']} erp={it.get('erp')} store={it.get('store')}")
    if res.report_id is not None:
        lines += ["", f"Full report: drift report #{res.report_id} ({len(res.items):,} items stored)."]
    return subject, "\n".join(lines)
