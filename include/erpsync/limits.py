"""Limits on what a remote may hand us: time, size, depth, money and identifiers.

Every raw record a flow reads passes :func:`raw_problem` (depth and size, at the quality gate,
before any mapping touches it) and every canonical record :func:`record_problem` (a change time
beyond now + the allowed clock skew, an absurd amount, a suspicious identifier). A record that
fails becomes a dead letter with the reason; what is kept of a huge or deep record is a bounded
excerpt (:func:`excerpt`), and every dead-letter reason is cut to :func:`max_reason_chars`.

The walks here are iterative: a record nested a thousand levels deep cannot make them recurse.
Settings are read from the environment when called; a flow param overrides some for one DAG
(``clock_skew_seconds``, ``max_record_depth``, ``max_record_bytes``). Defaults are far above any
honest record (docs/configuration.md#limits-on-hostile-data).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.errors import ConfigError

#: how far ahead of our clock a remote's change time may be (its clock may be a little fast)
DEFAULT_CLOCK_SKEW_SECONDS = 300
#: nesting of one raw record (objects and lists); an order of Vendure's GraphQL is ~8 deep
DEFAULT_MAX_RECORD_DEPTH = 64
#: bytes of one raw record (its strings and keys, approximately its JSON size); a 500-line order is ~300 kB
DEFAULT_MAX_RECORD_BYTES = 2_000_000
#: bytes of one HTTP answer (a page of records); above it the call fails with a clear error
DEFAULT_MAX_RESPONSE_BYTES = 256_000_000
#: characters of a dead-letter reason (it reaches task logs, mails and reports)
DEFAULT_MAX_REASON_CHARS = 1000
#: characters of a value quoted in a reason, and of the excerpt kept for an over-limit record
QUOTE_CHARS = 80
EXCERPT_CHARS = 2000
#: largest amount in major units of any currency (a unit price, a total, a list price); per
#: currency with ERPSYNC_MAX_AMOUNTS="JPY=1e11,KRW=1e12"; ERPSYNC_MAX_AMOUNT for all others
DEFAULT_MAX_AMOUNT = Decimal("1e9")


def _env_number(var: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a number") from None
    if value < minimum:
        raise ConfigError(f"{var}={raw!r} must be at least {minimum}")
    return value


def _setting(params: Mapping[str, Any] | None, param: str, var: str, default: float) -> float:
    if params and params.get(param) is not None:
        try:
            value = float(params[param])
        except (TypeError, ValueError):
            raise ConfigError(f"param {param}={params[param]!r} is not a number") from None
        if value < 0:
            raise ConfigError(f"param {param}={value} must not be negative")
        return value
    return _env_number(var, default)


def clock_skew(params: Mapping[str, Any] | None = None) -> dt.timedelta:
    """Param ``clock_skew_seconds``, else ERPSYNC_CLOCK_SKEW_SECONDS, else 300 s."""
    return dt.timedelta(seconds=_setting(params, "clock_skew_seconds", "ERPSYNC_CLOCK_SKEW_SECONDS",
                                         DEFAULT_CLOCK_SKEW_SECONDS))


def future_bound(params: Mapping[str, Any] | None = None, now: dt.datetime | None = None) -> dt.datetime:
    """The latest change time a record may carry, and a cursor may hold: now + the clock skew."""
    return (now or dt.datetime.now(dt.UTC)) + clock_skew(params)


def max_record_depth(params: Mapping[str, Any] | None = None) -> int:
    return int(_setting(params, "max_record_depth", "ERPSYNC_MAX_RECORD_DEPTH", DEFAULT_MAX_RECORD_DEPTH))


def max_record_bytes(params: Mapping[str, Any] | None = None) -> int:
    return int(_setting(params, "max_record_bytes", "ERPSYNC_MAX_RECORD_BYTES", DEFAULT_MAX_RECORD_BYTES))


def max_response_bytes() -> int:
    return int(_env_number("ERPSYNC_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES, minimum=1))


def max_reason_chars() -> int:
    return int(_env_number("ERPSYNC_MAX_REASON_CHARS", DEFAULT_MAX_REASON_CHARS, minimum=80))


# --------------------------------------------------------------------------- size and depth


def measure(value: Any, *, max_depth: int | None = None, max_bytes: int | None = None) -> tuple[int, int]:
    """``(depth, bytes)`` of a decoded JSON value, without recursion; stops early (returning what it
    has seen so far, already over the limit) once ``max_depth`` or ``max_bytes`` is passed."""
    depth = size = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, Mapping):
            depth = max(depth, level)
            size += 2
            for k, v in item.items():
                size += len(str(k)) + 4
                stack.append((v, level + 1))
        elif isinstance(item, list | tuple):
            depth = max(depth, level)
            size += 2
            stack.extend((v, level + 1) for v in item)
        elif isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, bytes):
            size += len(item)
        else:
            size += 8
        if (max_depth is not None and depth > max_depth) or (max_bytes is not None and size > max_bytes):
            break
    return depth, size


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of ``value`` as text, whatever its depth or size."""
    parts: list[str] = []
    used = 0
    stack: list[Any] = [value]
    while stack and used < limit:
        item = stack.pop()
        if isinstance(item, _Close):
            text = item.text
        elif isinstance(item, Mapping):
            text = "{"
            entries = list(item.items())
            stack.append(_Close("}"))
            for i, (k, v) in reversed(list(enumerate(entries))):
                stack.append(v)
                stack.append(_Close(("" if i == 0 else ", ") + json.dumps(str(k)[:QUOTE_CHARS]) + ": "))
        elif isinstance(item, list | tuple):
            text = "["
            stack.append(_Close("]"))
            for i, v in reversed(list(enumerate(item))):
                stack.append(v)
                if i:
                    stack.append(_Close(", "))
        elif isinstance(item, str):
            text = json.dumps(item[: limit - used + 1])
        else:
            text = repr(item)[: limit - used + 1]
        parts.append(text)
        used += len(text)
    out = "".join(parts)
    return out if len(out) <= limit and not stack else out[: max(0, limit - 1)] + "\u2026"


class _Close:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def bounded(text: str, limit: int | None = None) -> str:
    """``text`` cut to ``limit`` characters (default :func:`max_reason_chars`), saying how much was cut."""
    limit = limit or max_reason_chars()
    if len(text) <= limit:
        return text
    tail = f"\u2026 [{len(text) - limit + 40:,} more characters]"
    return text[: max(0, limit - len(tail))] + tail


def quote(value: Any) -> str:
    """A value for a reason: its repr, at most QUOTE_CHARS characters."""
    text = value if isinstance(value, str) else str(value)
    return repr(text[:QUOTE_CHARS]) + (f"\u2026 ({len(text):,} characters)" if len(text) > QUOTE_CHARS else "")


#: what :func:`measure` counts as 8 bytes: the scalars a decoded JSON record holds (exact types)
_SCALARS = frozenset({int, float, bool, type(None), Decimal, dt.datetime, dt.date})


def _flat_size(record: Any) -> int | None:
    """The size :func:`measure` gives a flat ``dict`` of text and scalars (depth 1), without its
    stack; None for anything else (nested, another mapping type, a str subclass): measure it.
    Most raw records are such rows (an ERP's stock row, a price entry), read a million at a time."""
    if type(record) is not dict:
        return None
    size = 2
    for k, v in record.items():
        size += (len(k) if type(k) is str else len(str(k))) + 4
        t = type(v)
        if t is str:
            size += len(v) + 2
        elif t in _SCALARS:
            size += 8
        else:
            return None
    return size


def raw_limits(params: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """``(max depth, max bytes)`` of one raw record: read once for a batch, handed to
    :func:`raw_problem` for each of its records (the settings come from the environment)."""
    return max_record_depth(params), max_record_bytes(params)


def raw_problem(record: Any, params: Mapping[str, Any] | None = None, *,
                limits: tuple[int, int] | None = None) -> tuple[str, dict[str, Any]] | None:
    """``(reason, bounded payload)`` when a raw record is nested deeper or larger than the limits
    (``limits`` from :func:`raw_limits`, else read from ``params`` and the environment), else None.
    The payload holds an excerpt, the measured figures and the limits, never the value."""
    max_depth, max_bytes = limits if limits is not None else raw_limits(params)
    flat = _flat_size(record)
    if flat is not None and flat <= max_bytes and max_depth >= 1:
        return None  # a flat row within the limits: what measure() would find, at a third of its cost
    depth, size = measure(record, max_depth=max_depth, max_bytes=max_bytes)
    if depth > max_depth:
        reason = (f"record_too_deep: nested more than {max_depth} levels (limit max_record_depth / "
                  "ERPSYNC_MAX_RECORD_DEPTH); only an excerpt is kept")
    elif size > max_bytes:
        _, size = measure(record)
        reason = (f"record_too_large: {size:,} bytes over the limit of {max_bytes:,} (max_record_bytes / "
                  "ERPSYNC_MAX_RECORD_BYTES); only an excerpt is kept")
    else:
        return None
    return reason, {"excerpt": excerpt(record), "depth": depth if depth <= max_depth else f">{max_depth}",
                    "bytes": size, "limits": {"max_record_depth": max_depth, "max_record_bytes": max_bytes}}


def bounded_payload(payload: Any, params: Mapping[str, Any] | None = None) -> Any:
    """``payload`` itself when it is within the limits, else its bounded excerpt (a dead letter
    never keeps a value that could not be written or read back)."""
    found = raw_problem(payload, params)
    return payload if found is None else found[1]


# --------------------------------------------------------------------------- money


def max_amount(currency: str | None) -> Decimal:
    """The largest plausible amount in ``currency`` (major units)."""
    for item in os.environ.get("ERPSYNC_MAX_AMOUNTS", "").split(","):
        code, _, value = item.partition("=")
        if currency and code.strip().upper() == currency and value.strip():
            return _decimal_setting(value.strip(), f"ERPSYNC_MAX_AMOUNTS[{currency}]")
    raw = os.environ.get("ERPSYNC_MAX_AMOUNT", "").strip()
    return _decimal_setting(raw, "ERPSYNC_MAX_AMOUNT") if raw else DEFAULT_MAX_AMOUNT


def _decimal_setting(raw: str, where: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{where}={raw!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ConfigError(f"{where}={raw!r} must be a positive number")
    return value


def price_problem(value: Any, currency: str | None, *, what: str = "price") -> str | None:
    """The one price check of pricing_sync and catalog_sync: a price must read as a finite
    decimal, not negative, within the currency's bound. None when it is fine."""
    if isinstance(value, float) or isinstance(value, bool):
        return f"bad_price: {what} {quote(value)} is a {type(value).__name__}, not a decimal"
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return f"bad_price: {what} {quote(value)} is not a number"
    if not d.is_finite():
        return f"bad_price: {what} {quote(value)} is not a finite amount"
    if d < 0:
        return f"bad_price: {what} {quote(value)} is negative"
    return amount_problem(d, currency, what=what)


def amount_problem(value: Decimal, currency: str | None, *, what: str = "amount") -> str | None:
    if not value.is_finite():
        return f"absurd_amount: {what} {quote(value)} is not a finite amount"
    bound = max_amount(currency)
    if value.copy_abs().compare_total(bound) > 0:
        return (f"absurd_amount: {what} {quote(value)} {currency or ''} is beyond {bound} "
                f"(ERPSYNC_MAX_AMOUNT / ERPSYNC_MAX_AMOUNTS)").replace("  ", " ")
    return None


# --------------------------------------------------------------------------- identifiers

#: scripts told apart in an identifier; a code may use one of them beside digits and punctuation
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "GEORGIAN", "HEBREW", "ARABIC", "DEVANAGARI", "THAI",
            "HANGUL", "HIRAGANA", "KATAKANA", "CJK", "CHEROKEE", "COPTIC")


def normalise_identifier(value: Any) -> Any:
    """Unicode NFKC of a code (``ＳＫＵ－１`` -> ``SKU-1``); other values as they are."""
    return unicodedata.normalize("NFKC", value) if isinstance(value, str) else value


def identifier_problem(value: Any, what: str = "identifier") -> str | None:
    """``suspicious_identifier: ...`` when a code holds control or invisible characters (NUL,
    zero-width, direction marks) or mixes scripts (a Cyrillic letter among Latin ones)."""
    if not isinstance(value, str) or not value:
        return None
    scripts: set[str] = set()
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp") or (cat == "Zs" and ch != " "):
            name = unicodedata.name(ch, f"U+{ord(ch):04X}")
            return (f"suspicious_identifier: {what} {quote(value)} holds an invisible or control character "
                    f"U+{ord(ch):04X} {name}")
        if cat.startswith("L"):
            first = unicodedata.name(ch, "").split(" ", 1)[0]
            scripts.add(first if first in _SCRIPTS else "OTHER")
    if len(scripts) > 1:
        return (f"suspicious_identifier: {what} {quote(value)} mixes scripts "
                f"({' + '.join(sorted(s.title() for s in scripts))}): a lookalike of another code")
    return None


# --------------------------------------------------------------------------- canonical records


def _identifiers(record: Any) -> list[tuple[str, Any]]:
    from erpsync import model

    if isinstance(record, model.Order):
        return [("order id", record.external_id), *((f"sku of line {ln.line_id}", ln.sku) for ln in record.lines)]
    if isinstance(record, model.Product):
        return [("item code", record.code), *(("sku", v.sku) for v in record.variants)]
    if isinstance(record, model.PriceEntry | model.InventoryLevel):
        return [("sku", record.sku)]
    if isinstance(record, model.Shipment):
        return [("order id", record.order_external_id),
                *(("sku", ln.sku) for p in record.packages for ln in p.lines)]
    if isinstance(record, model.Return):
        return [("order id", record.order_external_id), *(("sku", ln.sku) for ln in record.lines)]
    return []


def _amounts(record: Any) -> list[tuple[str, Decimal]]:
    """Every Decimal of a canonical record, by field path (no recursion into deep data: canonical
    records are a few levels deep)."""
    out: list[tuple[str, Decimal]] = []
    stack: list[tuple[str, Any]] = [("", record)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, Decimal):
            out.append((path, item))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend((f"{path}.{f.name}".lstrip("."), getattr(item, f.name)) for f in dataclasses.fields(item))
        elif isinstance(item, list | tuple) and len(path.split(".")) < 6:
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
    return out


#: the identifier columns of a flat row a mapper hands the gate (``mappings.stock.stock_level``)
FLAT_ROW_IDENTIFIERS = ("sku", "location")


def record_problem(record: Any, bound: dt.datetime) -> str | None:
    """Why a canonical record must not be synced, or None: a change time beyond ``bound``
    (``timestamp_in_future``), an absurd amount, a suspicious identifier."""
    if type(record) is dict:
        # a flat row a mapper hands the gate (the stock mapper's ``stock_level``): no change time
        # attribute and no amounts (its figures are the suite's), but its codes are identifiers:
        # checked as a canonical record's, with a fast path for the common printable ASCII code
        for what in FLAT_ROW_IDENTIFIERS:
            value = record.get(what)
            if isinstance(value, str) and not (value.isascii() and value.isprintable()):
                found = identifier_problem(value, what)
                if found:
                    return found
        return None
    updated = getattr(record, "updated_at", None)
    if isinstance(updated, dt.datetime):
        aware = updated if updated.tzinfo else updated.replace(tzinfo=dt.UTC)
        if aware > bound:
            return (f"timestamp_in_future: updated_at {aware.isoformat()} is beyond now + the allowed clock skew "
                    f"({bound.isoformat()}; ERPSYNC_CLOCK_SKEW_SECONDS); the cursor does not move past it")
    for what, value in _identifiers(record):
        found = identifier_problem(value, what)
        if found:
            return found
    currency = getattr(record, "currency", None)
    for path, value in _amounts(record):
        if path.endswith("rate") or path.endswith(".rate"):
            continue
        found = amount_problem(value, currency, what=path)
        if found:
            return found
    return None
