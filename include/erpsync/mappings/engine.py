"""A small declarative mapping engine: a spec is a list of fields, each a source and a transform.

Mappings are data so that a newcomer reads one list per entity and system, and so that every
failure names the record, the field and the rule it broke (``MappingError``), never a bare
``KeyError`` deep in a flow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from erpsync.errors import MappingError
from erpsync.model import ModelError, money

T = TypeVar("T")
Transform = Callable[[Any], Any]
_MISSING: Any = object()


class RuleViolation(ValueError):
    """Raised by a transform; the engine turns it into a MappingError naming the field."""

    def __init__(self, rule: str, message: str = "") -> None:
        super().__init__(message or rule)
        self.rule = rule


@dataclass(frozen=True, slots=True)
class F:
    """One target field: where its value comes from and how it is checked and converted.

    ``source`` is a dotted path into the raw record (``"customer.id"``) or a function of the
    whole record (for computed fields). ``required`` refuses a missing, null or blank value;
    ``nullable`` sets a missing value to None (for fields the record has no default for).
    """

    target: str
    source: str | Callable[[Mapping[str, Any]], Any]
    transform: Transform | Many | None = None
    required: bool = False
    default: Any = None
    nullable: bool = False


Spec = Sequence[F]


def get_path(raw: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or ``_MISSING`` if any step is absent or null."""
    cur: Any = raw
    for part in path.split("."):
        if not isinstance(cur, Mapping) or cur.get(part) is None:
            return _MISSING
        cur = cur[part]
    return cur


def apply_spec(spec: Spec, raw: Mapping[str, Any], record: str) -> dict[str, Any]:
    """Run every field of ``spec`` over ``raw``; the result is keyword arguments for a record."""
    if not isinstance(raw, Mapping):
        raise MappingError(record, "<record>", "object", raw)
    out: dict[str, Any] = {}
    for f in spec:
        value = f.source(raw) if callable(f.source) else get_path(raw, f.source)
        if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
            if f.required:
                raise MappingError(record, _name(f), "required", None if value is _MISSING else value)
            if f.default is not None:
                out[f.target] = f.default() if callable(f.default) else f.default
            elif f.nullable:
                out[f.target] = None
            continue
        try:
            if isinstance(f.transform, Many):
                out[f.target] = f.transform.map(value, record)
            else:
                out[f.target] = f.transform(value) if f.transform else value
        except MappingError:
            raise
        except RuleViolation as exc:
            raise MappingError(record, _name(f), exc.rule, value) from exc
        except ModelError as exc:
            raise MappingError(record, _name(f), "model", value) from exc
    return out


def build(factory: Callable[..., T], kwargs: dict[str, Any], record: str) -> T:
    """Construct a canonical record; its own checks (ModelError) become a MappingError."""
    try:
        return factory(**kwargs)
    except ModelError as exc:
        raise MappingError(record, "<record>", "model", str(exc)) from exc


def _name(f: F) -> str:
    return f.source if isinstance(f.source, str) else f.target


# --------------------------------------------------------------------------- transforms


def text(value: Any) -> str:
    """A string, trimmed; numbers are accepted (postcodes and phones arrive as ints sometimes)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RuleViolation("text")
    return str(value).strip()


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise RuleViolation("bool")
    return value


def email(value: Any) -> str:
    """A plausible address (one ``@``, a dot in the domain), trimmed; the case is kept."""
    if not isinstance(value, str):
        raise RuleViolation("email")
    v = value.strip()
    local, at, domain = v.partition("@")
    if not at or not local or "." not in domain or "@" in domain or " " in v:
        raise RuleViolation("email")
    return v


def amount(value: Any) -> Decimal:
    """Money from a string or Decimal; floats are refused (they already lost the cents)."""
    if isinstance(value, float):
        raise RuleViolation("money_not_float")
    try:
        return money(value)
    except ModelError as exc:
        raise RuleViolation("money") from exc


def currency(value: Any) -> str:
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha() and value.isupper()):
        raise RuleViolation("iso4217")
    return value


def country(value: Any) -> str:
    """ISO 3166-1 alpha-2; lower case is tolerated and upper-cased."""
    if not (isinstance(value, str) and len(value.strip()) == 2 and value.strip().isalpha()):
        raise RuleViolation("iso3166")
    return value.strip().upper()


def quantity(value: Any) -> int:
    """A positive whole number; ``"2"`` is read, ``2.5`` and ``0`` are refused."""
    if isinstance(value, bool):
        raise RuleViolation("quantity")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0:
        raise RuleViolation("quantity")
    return value


def timestamp(value: Any) -> dt.datetime:
    """ISO 8601, returned timezone-aware in UTC (a naive time is taken as UTC)."""
    return parse_time(value)


def parse_time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise RuleViolation("iso8601") from exc
    else:
        raise RuleViolation("iso8601")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def one_of(table: Mapping[str, Any], rule: str) -> Transform:
    """Look a code up in a table; an unknown code is a violation of ``rule``."""

    def lookup(value: Any) -> Any:
        if not isinstance(value, str) or value not in table:
            raise RuleViolation(rule)
        return table[value]

    return lookup


@dataclass(frozen=True, slots=True)
class Many:
    """Child records (order lines, addresses, payments), each mapped with its own spec.

    ``keep`` filters children before mapping (e.g. only successful transactions).
    """

    spec: Spec
    factory: Callable[..., Any]
    id_field: str = "id"
    keep: Callable[[Mapping[str, Any]], bool] | None = None

    def map(self, value: Any, record: str) -> list[Any]:
        if not isinstance(value, list):
            raise RuleViolation("list")
        out = []
        for i, child in enumerate(value):
            cid = child.get(self.id_field) if isinstance(child, Mapping) else None
            ref = f"{record}/{cid if cid is not None else i}"
            if self.keep is not None and isinstance(child, Mapping) and not self.keep(child):
                continue
            out.append(build(self.factory, apply_spec(self.spec, child, ref), ref))
        return out


def dec_str(value: Decimal) -> str:
    """Money on the wire: a plain decimal string, never exponent notation."""
    return format(value, "f")
