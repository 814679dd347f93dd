"""ERP stock and items, store inventory levels: raw <-> what the inventory rules work on.

Written by hand rather than as an engine spec because it runs a million times per drift check
(~1 µs a record); the errors still name the record, the field and the rule. The bulk readers
(:func:`stock_available_rows`, :func:`store_level_rows`) take export blocks of array rows and
check the common shape inline (~0.3 µs a row); any row off that shape goes through the per-record
function, so a row is accepted, or fails with its error, exactly as the per-record path decides.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from erpsync.connectors.base import NOT_A_RECORD
from erpsync.errors import MappingError
from erpsync.model import InventoryLevel
from erpsync.rules.availability import StoreLevel, figures_to_sell, over_allocated
from erpsync.state.inventory import ItemInfo

Raw = dict[str, Any]
FIGURES = ("on_hand", "allocated", "reserved", "damaged", "quarantined", "safety_stock")


@dataclass(frozen=True, slots=True)
class StockFigures:
    """One ERP stock record reduced to what the store needs."""

    item_code: str
    warehouse: str
    available: int  # already through rules.availability.figures_to_sell
    backorderable: bool
    restock_date: str | None  # ISO date
    modified: str | None  # ERP modified_at, wire format
    #: units committed beyond the warehouse's stock (``rules.availability.over_allocated``): taken
    #: off the item's other store locations
    short: int = 0

    @property
    def net(self) -> int:
        """Available to sell, or minus the over-allocation: the signed figure of the bulk paths."""
        return -self.short if self.short else self.available


def _key(raw: Raw) -> str:
    return f"stock {raw.get('item_code')}@{raw.get('warehouse')}"


def stock_figures(raw: Raw, *, include_safety_stock: bool = True) -> StockFigures:
    code, wh = raw.get("item_code"), raw.get("warehouse")
    if not isinstance(code, str) or not code:
        raise MappingError(_key(raw), "item_code", "text", code)
    if not isinstance(wh, str) or not wh:
        raise MappingError(_key(raw), "warehouse", "text", wh)
    vals = []
    for name in FIGURES:
        v = raw.get(name, 0)
        if v is None:
            v = 0
        if type(v) is not int:
            raise MappingError(_key(raw), name, "whole quantity", v)
        vals.append(v)
    if not include_safety_stock:
        vals[5] = 0
    restock = raw.get("restock_date")
    if restock is not None:
        try:
            restock = dt.date.fromisoformat(str(restock)[:10]).isoformat()
        except ValueError:
            raise MappingError(_key(raw), "restock_date", "date", restock) from None
    back = raw.get("backorderable", False)
    if not isinstance(back, bool):
        raise MappingError(_key(raw), "backorderable", "bool", back)
    modified = raw.get("modified_at")
    if modified is not None and not _valid_time(modified):
        # a change time that is no time would become the stock cursor (and stop every later cycle)
        raise MappingError(_key(raw), "modified_at", "iso8601", modified)
    return StockFigures(code, wh, figures_to_sell(*vals), back, restock,
                        modified if isinstance(modified, str) else None, over_allocated(*vals[:5]))


#: a malformed row of a bulk block: its record (as far as it can be read) and the error
OnBad = Callable[[Raw, MappingError], None]


def row_record(fields: Sequence[str], row: Sequence[Any]) -> Raw:
    """A bulk row as its record; a row of the wrong length keeps its values under ``_row``."""
    if len(row) == len(fields):
        return dict(zip(fields, row, strict=True))
    return {**dict(zip(fields, row, strict=False)), "_row": list(row)}


def _wrong_length(what: str, fields: Sequence[str], raw: Raw) -> MappingError:
    if NOT_A_RECORD in raw:
        return MappingError(what, NOT_A_RECORD, "a JSON object", raw[NOT_A_RECORD])
    return MappingError(what, "_row", f"{len(fields)} values ({', '.join(fields)})", raw.get("_row"))


def stock_available_rows(
    fields: Sequence[str], rows: Sequence[Sequence[Any]], bad: OnBad, *, include_safety_stock: bool = True
) -> Iterator[tuple[str, str, int]]:
    """(item_code, warehouse, net) of each row of a bulk stock block: net is available to sell,
    or minus the units the warehouse is over-allocated by (``StockFigures.net``).

    Accepts and refuses exactly what :func:`stock_figures` does (a row it refuses goes to ``bad``
    with its record and the error, the rest of the block goes on); the figure is
    :func:`~erpsync.rules.availability.figures_to_sell` of the row, or
    -:func:`~erpsync.rules.availability.over_allocated` when that is above 0.
    """
    pos = {f: i for i, f in enumerate(fields)}
    cols = ("item_code", "warehouse", *FIGURES)
    n = len(fields)
    if any(c not in pos for c in cols):  # not the common shape: every row the per-record way
        get = None
    else:
        get = operator.itemgetter(*(pos[c] for c in cols))
    i_restock, i_back, i_mod = pos.get("restock_date"), pos.get("backorderable"), pos.get("modified_at")
    dates: set[str] = set()  # restock dates seen valid (a few hundred distinct ones at most)
    for row in rows:
        if get is not None and len(row) == n:
            code, wh, oh, al, rs, dm, qu, ss = get(row)
            if (type(code) is str and code and type(wh) is str and wh and type(oh) is int and type(al) is int
                    and type(rs) is int and type(dm) is int and type(qu) is int and type(ss) is int
                    and (i_restock is None or row[i_restock] is None or row[i_restock] in dates
                         or _valid_date(row[i_restock], dates))
                    and (i_back is None or type(row[i_back]) is bool)
                    and (i_mod is None or row[i_mod] is None or _valid_time(row[i_mod]))):
                short = al + rs + dm + qu - oh
                yield code, wh, (-short if short > 0 else
                                 figures_to_sell(oh, al, rs, dm, qu, ss if include_safety_stock else 0))
                continue
        raw = row_record(fields, row)
        try:
            if "_row" in raw or NOT_A_RECORD in raw:
                raise _wrong_length(_key(raw), fields, raw)
            f = stock_figures(raw, include_safety_stock=include_safety_stock)
        except MappingError as exc:
            bad(raw, exc)
            continue
        yield f.item_code, f.warehouse, f.net


def _valid_time(value: Any) -> bool:
    """An ERP change time :func:`stock_figures` accepts: ISO 8601 text (``Z`` allowed)."""
    if type(value) is not str:
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return False
    return True


def _valid_date(value: Any, seen: set[str]) -> bool:
    """A restock date :func:`stock_figures` accepts as it is (text); remembered in ``seen``."""
    if type(value) is not str:
        return False
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return False
    seen.add(value)
    return True


def stock_from_erp(raw: Raw, sku: str) -> InventoryLevel:
    """The canonical record of one ERP stock row (per-record paths and tests)."""
    f = stock_figures(raw)
    restock = dt.date.fromisoformat(f.restock_date) if f.restock_date else None
    def figure(name: str) -> int:
        return int(raw.get(name) or 0)

    return InventoryLevel(
        sku=sku, location=f.warehouse, backorderable=f.backorderable, restock_date=restock,
        on_hand=figure("on_hand"), allocated=figure("allocated"), reserved=figure("reserved"),
        damaged=figure("damaged"), quarantined=figure("quarantined"), safety_stock=figure("safety_stock"),
    )


def stock_level(raw: Raw) -> dict[str, Any]:
    """What the quality gate checks of one ERP stock row (the columns of the suite ``stock``): its
    figures as the ERP gave them, the item code standing for the SKU and the warehouse for the
    location. Raises MappingError as :func:`stock_figures` does. A flat row, not an
    InventoryLevel: the gate reads every record of a first run (a million), and the canonical
    object and its serialisation cost four times the check itself."""
    stock_figures(raw)
    code, wh = raw["item_code"], raw["warehouse"]
    get = raw.get
    return {"sku": code, "location": wh, "key": f"{code}@{wh}",
            **{name: get(name) or 0 for name in FIGURES}}


def record_key(raw: Any, what: str, where: str) -> str:
    """``raw[what]@raw[where]``, the id a dead letter of a stock row or level is filed under; "?"
    when either is not a non-empty text (``flows.base.dead_letter`` then files it by its content)."""
    a, b = (raw.get(what), raw.get(where)) if isinstance(raw, Mapping) else (None, None)
    if not isinstance(a, str) or not a or not isinstance(b, str) or not b:
        return "?"
    return f"{a}@{b}"


def stock_key(raw: Raw) -> str:
    """The id a dead letter of one ERP stock row is filed under: ``item_code@warehouse``."""
    return record_key(raw, "item_code", "warehouse")


def item_from_erp(raw: Raw) -> ItemInfo:
    """SKU, active flag and kit (component item code -> quantity per kit) of one ERP item."""
    code, sku = raw.get("item_code"), raw.get("sku")
    rec = f"item {code}"
    if not isinstance(code, str) or not code:
        raise MappingError(rec, "item_code", "text", code)
    if not isinstance(sku, str) or not sku:
        raise MappingError(rec, "sku", "text", sku)
    active = raw.get("active", True)
    if not isinstance(active, bool):
        raise MappingError(rec, "active", "bool", active)
    kit: dict[str, int] = {}
    for comp in raw.get("kit_components") or []:
        c, q = comp.get("item_code") if isinstance(comp, dict) else None, comp.get("qty") if isinstance(comp, dict) else None
        if not isinstance(c, str) or type(q) is not int or q <= 0:
            raise MappingError(rec, "kit_components", "item_code + positive whole qty", comp)
        kit[c] = kit.get(c, 0) + q
    return ItemInfo(code, sku, active, kit or None)


def store_level(raw: Raw) -> tuple[str, str, int]:
    """(sku, location, available) of one store inventory level."""
    s, loc, avail = raw.get("sku"), raw.get("location_id"), raw.get("available")
    if not isinstance(s, str) or not isinstance(loc, str):
        raise MappingError(f"level {s}@{loc}", "sku/location_id", "text", (s, loc))
    if type(avail) is not int:
        raise MappingError(f"level {s}@{loc}", "available", "whole quantity", avail)
    return s, loc, avail


def store_level_rows(
    fields: Sequence[str], rows: Sequence[Sequence[Any]], bad: OnBad
) -> Iterator[tuple[str, str, int]]:
    """(sku, location, available) of each row of a bulk block of store levels; accepts and refuses
    exactly what :func:`store_level` does (a refused row goes to ``bad``)."""
    pos = {f: i for i, f in enumerate(fields)}
    n = len(fields)
    get = (operator.itemgetter(pos["sku"], pos["location_id"], pos["available"])
           if all(c in pos for c in ("sku", "location_id", "available")) else None)
    for row in rows:
        if get is not None and len(row) == n:
            s, loc, avail = get(row)
            if type(s) is str and type(loc) is str and type(avail) is int:
                yield s, loc, avail
                continue
        raw = row_record(fields, row)
        try:
            if "_row" in raw or NOT_A_RECORD in raw:
                raise _wrong_length(f"level {raw.get('sku')}@{raw.get('location_id')}", fields, raw)
            level = store_level(raw)
        except MappingError as exc:
            bad(raw, exc)
            continue
        yield level


def level_to_storefront(level: StoreLevel, restock_date: str | None = None) -> Raw:
    """The store's inventory write for one SKU-location; restock date and backorder pass through."""
    out: Raw = {"sku": level.sku, "location_id": level.location, "available": level.available}
    restock = restock_date or (level.restock_date.isoformat() if level.restock_date else None)
    if restock:
        out["restock_date"] = restock
    if level.backorderable:
        out["backorderable"] = True
    return out


# --------------------------------------------------------------------------- what inventory_sync reads, per system
# The sandbox's raw records are already in these shapes; each real system's mapping provides the
# same functions (``tryton_stock``, ``vendure_stock``), picked through the adapter's mapping.


def item_changed_at(raw: Raw) -> str | None:
    """An ERP item's change time (the items cursor follows it)."""
    m = raw.get("modified_at")
    return m if isinstance(m, str) else None


def store_skus_of(raw: Raw) -> list[tuple[str, str, bool]]:
    """(SKU, store product id, active) of each variant of a store product."""
    active = raw.get("status", "active") == "active"
    return [(v["sku"], str(raw.get("id")), active) for v in raw.get("variants") or []
            if isinstance(v, dict) and isinstance(v.get("sku"), str)]


def product_changed_at(raw: Raw) -> str | None:
    """A store product's change time (the products cursor follows it)."""
    u = raw.get("updated_at")
    return u if isinstance(u, str) else None


def store_level_of(raw: Raw) -> Raw | None:
    """A store level as inventory_sync remembers it (``sku``, ``location``, ``available``,
    ``backorderable``, ``restock_date``); None for a row off that shape."""
    s, loc, avail = raw.get("sku"), raw.get("location_id"), raw.get("available")
    if not (isinstance(s, str) and isinstance(loc, str) and type(avail) is int):
        return None
    return {"sku": s, "location": loc, "available": avail, "backorderable": bool(raw.get("backorderable")),
            "restock_date": raw.get("restock_date")}


def sale_lines(raw: Raw) -> tuple[str, str | None, dt.datetime | None, list[tuple[str, int]]] | None:
    """(order id, channel, placed at, [(SKU, units)]) of a store order, for the observed channel
    demand: the channel is the order's ``source_name`` (None: the store's own channel); a
    cancelled or unpaid order sells 0 units. None for what is not an order."""
    if not isinstance(raw, dict) or not raw.get("id"):
        return None
    sold = not raw.get("cancelled_at") and raw.get("financial_status") in ("paid", "pending")
    lines = [(ln["sku"], ln["quantity"] if sold else 0) for ln in raw.get("line_items") or []
             if isinstance(ln, dict) and isinstance(ln.get("sku"), str) and type(ln.get("quantity")) is int]
    channel = raw.get("source_name")
    placed = raw.get("created_at")
    try:
        at = dt.datetime.fromisoformat(placed.replace("Z", "+00:00")) if isinstance(placed, str) else None
    except ValueError:
        at = None
    return str(raw["id"]), channel if isinstance(channel, str) and channel else None, at, lines


def in_flight_lines(raw: Raw) -> tuple[str, list[tuple[str, int]]] | None:
    """(order id, [(SKU, quantity)]) of a store order that holds stock (paid or pending, not
    cancelled); None for one that does not."""
    if raw.get("cancelled_at") or raw.get("financial_status") not in ("paid", "pending"):
        return None
    lines = [(ln["sku"], ln["quantity"]) for ln in raw.get("line_items") or []
             if isinstance(ln, dict) and isinstance(ln.get("sku"), str) and type(ln.get("quantity")) is int]
    return str(raw.get("id")), lines
