"""More transforms for mapping specs: case, date formats, ISO 3166 countries, units of measure,
currency minor units, look-ups (cross references) and validation rules, composable with ``chain``.

Each is a plain function of one value (or a factory returning one) that raises ``RuleViolation``
naming its rule, so the engine reports ``record / field / rule`` for every failure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from erpsync.mappings.engine import RuleViolation, Transform, parse_time, text


def chain(*steps: Transform) -> Transform:
    """Apply transforms left to right: ``chain(text, upper, check(...))``."""

    def run(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return run


def upper(value: Any) -> str:
    return text(value).upper()


def lower(value: Any) -> str:
    return text(value).lower()


def title(value: Any) -> str:
    return text(value).title()


def check(predicate: Callable[[Any], bool], rule: str) -> Transform:
    """A validation rule: the value passes unchanged or the record fails with ``rule``."""

    def run(value: Any) -> Any:
        if not predicate(value):
            raise RuleViolation(rule)
        return value

    return run


def date_in(*formats: str) -> Transform:
    """A date or time written in one of ``formats`` (``"%d/%m/%Y"``) or ISO 8601, as aware UTC."""

    def run(value: Any) -> dt.datetime:
        if isinstance(value, str):
            for fmt in formats:
                try:
                    return dt.datetime.strptime(value.strip(), fmt).replace(tzinfo=dt.UTC)
                except ValueError:
                    continue
        try:
            return parse_time(value)
        except RuleViolation:
            raise RuleViolation("date_format") from None

    return run


#: ISO 3166-1 alpha-3 and common names of the countries we trade with -> alpha-2
COUNTRY_ALIASES: dict[str, str] = {
    "USA": "US", "UNITED STATES": "US", "UNITED STATES OF AMERICA": "US",
    "GBR": "GB", "UNITED KINGDOM": "GB", "UK": "GB", "GREAT BRITAIN": "GB",
    "DEU": "DE", "GERMANY": "DE", "DEUTSCHLAND": "DE",
    "FRA": "FR", "FRANCE": "FR", "NLD": "NL", "NETHERLANDS": "NL", "THE NETHERLANDS": "NL",
    "CAN": "CA", "CANADA": "CA", "AUT": "AT", "AUSTRIA": "AT", "ÖSTERREICH": "AT",
    "CHE": "CH", "SWITZERLAND": "CH", "SCHWEIZ": "CH", "ITA": "IT", "ITALY": "IT", "ESP": "ES", "SPAIN": "ES",
    "BEL": "BE", "BELGIUM": "BE", "POL": "PL", "POLAND": "PL", "AUS": "AU", "AUSTRALIA": "AU",
    "JPN": "JP", "JAPAN": "JP", "MEX": "MX", "MEXICO": "MX", "IRL": "IE", "IRELAND": "IE",
}


def country_iso(value: Any) -> str:
    """ISO 3166-1 alpha-2 from alpha-2, alpha-3 or a known name (``"Deutschland" -> "DE"``)."""
    if not isinstance(value, str) or not value.strip():
        raise RuleViolation("iso3166")
    v = value.strip().upper()
    if len(v) == 2 and v.isalpha():
        return v
    if v in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[v]
    raise RuleViolation("iso3166")


def unit(factors: Mapping[str, Decimal], *, whole: bool = True) -> Transform:
    """Convert ``(quantity, unit)`` to the base unit of ``factors`` (``{"kg": 1000, "g": 1}``);
    ``whole`` rounds half up to an int. Used with a computed source giving the pair."""

    def run(pair: Any) -> Any:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise RuleViolation("unit")
        qty, uom = pair
        key = str(uom or "").strip().lower()
        if key not in factors:
            raise RuleViolation("unit_of_measure")
        try:
            amount = Decimal(str(qty).strip()) * Decimal(factors[key])
        except (InvalidOperation, ValueError):
            raise RuleViolation("quantity") from None
        if isinstance(qty, float) or not amount.is_finite() or amount < 0:
            raise RuleViolation("quantity")
        return int(amount.to_integral_value(rounding="ROUND_HALF_UP")) if whole else amount

    return run


WEIGHT_GRAMS: dict[str, Decimal] = {
    "g": Decimal(1), "gram": Decimal(1), "kg": Decimal(1000), "lb": Decimal("453.59237"),
    "oz": Decimal("28.349523125"),
}
#: ERP units of measure -> pieces per unit (a BOX of 12, a PK of 6)
UOM_PIECES: dict[str, int] = {"EA": 1, "PC": 1, "PK": 6, "BOX": 12, "CASE": 24}


def uom(value: Any) -> str:
    """An ERP unit of measure we know (``ea`` -> ``EA``)."""
    v = text(value).upper()
    if v not in UOM_PIECES:
        raise RuleViolation("unit_of_measure")
    return v


def minor_units(minor: Mapping[str, int]) -> Callable[[Any], int]:
    """``(amount, currency)`` -> whole minor units (``("12.34", "USD") -> 1234``); more decimals
    than the currency has are refused (rounding belongs to the rounding policy, not a mapping)."""

    def run(pair: Any) -> int:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise RuleViolation("minor_units")
        amount, currency = pair
        if currency not in minor:
            raise RuleViolation("iso4217")
        if isinstance(amount, float):
            raise RuleViolation("money_not_float")
        try:
            d = Decimal(str(amount).strip())
        except InvalidOperation:
            raise RuleViolation("money") from None
        scaled = d.scaleb(minor[currency])
        if not scaled.is_finite() or scaled != scaled.to_integral_value():
            raise RuleViolation("minor_units")
        return int(scaled)

    return run


def lookup(resolve: Callable[[str], str | None], rule: str = "xref") -> Transform:
    """Translate a key through a resolver (a cross-reference look-up); no match fails with ``rule``."""

    def run(value: Any) -> str:
        key = text(value)
        found = resolve(key)
        if not found:
            raise RuleViolation(rule)
        return found

    return run
