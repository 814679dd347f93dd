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

#: ISO 4217 minor units of the currencies we expect; others are added by configuration
ISO_MINOR_UNITS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2,
    "PLN": 2, "CZK": 2, "MXN": 2, "BRL": 2, "INR": 2, "CNY": 2, "SGD": 2, "HKD": 2, "ZAR": 2,
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "HUF": 2,
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}
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
    """ISO 4217 minor units with ``half_up``, overridden per currency by ``config``
    (the flow param ``rounding``: ``{"EUR": {"mode": "half_even", "minor_units": 2}}``)."""
    rules = {c: RoundingRule(DEFAULT_MODE, n) for c, n in ISO_MINOR_UNITS.items()}
    for currency, spec in (config or {}).items():
        if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
            raise ConfigError(f"rounding: {currency!r} is not an ISO 4217 currency code")
        if not isinstance(spec, Mapping):
            raise ConfigError(f"rounding.{currency}: expected {{'mode': ..., 'minor_units': ...}}")
        base = rules.get(currency, RoundingRule())
        rules[currency] = RoundingRule(
            mode=str(spec.get("mode", base.mode)), minor_units=spec.get("minor_units", base.minor_units)
        )
    return RoundingPolicy(rules)
