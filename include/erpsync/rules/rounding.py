"""The rounding policy: how a price is rounded in each currency, applied in one place.

Every price erpsync publishes goes through :meth:`RoundingPolicy.round` exactly once, right
before it is compared and written, so a storefront never shows ``19.999`` and two runs never
disagree by a cent. A currency without a rule is a configuration error, never a silent guess.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from erpsync.errors import ConfigError

MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}

#: ISO 4217 codes without minor units ("N.A."): metals, SDR, units of account, testing, none
NO_MINOR_UNITS = frozenset({"XAU", "XAG", "XPT", "XPD", "XDR", "XSU", "XUA", "XBA", "XBB", "XBC", "XBD", "XTS", "XXX"})


def minor_units_of(currency: str) -> int | None:
    """ISO 4217 minor units of ``currency`` from the one currency table, babel's CLDR data
    (``babel.numbers.get_currency_precision``): USD 2, JPY 0, KWD 3. None for a code babel does
    not know (never a guessed 2)."""
    from babel.numbers import get_currency_precision, is_currency

    if not (isinstance(currency, str) and len(currency) == 3 and is_currency(currency)) or currency in NO_MINOR_UNITS:
        return None
    return int(get_currency_precision(currency))


DEFAULT_MODE = "half_up"


@dataclass(frozen=True, slots=True)
class RoundingRule:
    mode: str = DEFAULT_MODE
    minor_units: int = 2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"rounding mode {self.mode!r}: use one of {', '.join(MODES)}")
        if isinstance(self.minor_units, bool) or not isinstance(self.minor_units, int) or not 0 <= self.minor_units <= 4:
            raise ConfigError(f"rounding minor_units {self.minor_units!r}: a whole number from 0 to 4")

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)


class RoundingPolicy:
    """Rounding rule per currency (ISO 4217 code)."""

    def __init__(self, rules: Mapping[str, RoundingRule]) -> None:
        self.rules = dict(rules)

    def rule(self, currency: str) -> RoundingRule:
        if currency in self.rules:
            return self.rules[currency]
        minor = minor_units_of(currency)
        if minor is not None and minor <= 4:
            self.rules[currency] = RoundingRule(DEFAULT_MODE, minor)
            return self.rules[currency]
        try:
            return self.rules[currency]
        except KeyError:
            raise ConfigError(
                f"no rounding rule for currency {currency}: add it to the param `rounding` "
                f'(e.g. {{"{currency}": {{"mode": "half_up", "minor_units": 2}}}})'
            ) from None

    def round(self, amount: Decimal, currency: str) -> Decimal:
        if not isinstance(amount, Decimal):
            raise TypeError(f"round() takes a Decimal, got {type(amount).__name__}")
        r = self.rule(currency)
        return amount.quantize(r.quantum, rounding=MODES[r.mode])

    def minor_units(self, currency: str) -> int:
        return self.rule(currency).minor_units

    def to_minor(self, amount: Decimal, currency: str) -> int:
        """The amount in minor units (cents), rounded by the policy: ``12.345 USD -> 1235``."""
        return int(self.round(amount, currency).scaleb(self.minor_units(currency)))

    def to_dict(self) -> dict[str, Any]:
        return {c: {"mode": r.mode, "minor_units": r.minor_units} for c, r in sorted(self.rules.items())}


def rounding_policy(config: Mapping[str, Any] | None = None) -> RoundingPolicy:
    """ISO 4217 minor units (babel's table, :func:`minor_units_of`) with ``half_up``, overridden per currency by ``config``
    (the flow param ``rounding``: ``{"EUR": {"mode": "half_even", "minor_units": 2}}``)."""
    rules: dict[str, RoundingRule] = {}  # every other ISO 4217 currency: babel's minor units, half_up
    for currency, spec in (config or {}).items():
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ConfigError(f"rounding: {currency!r} is not an ISO 4217 currency code")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"rounding.{currency}: expected {{'mode': ..., 'minor_units': ...}}")
        minor = minor_units_of(currency)
        base = rules.get(currency, RoundingRule(DEFAULT_MODE, minor if minor is not None and minor <= 4 else 2))
        rules[currency] = RoundingRule(
            mode=str(spec.get("mode", base.mode)), minor_units=spec.get("minor_units", base.minor_units)
        )
    return RoundingPolicy(rules)
