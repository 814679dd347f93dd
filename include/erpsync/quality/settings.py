"""Quality-gate settings: allowed codes, failure-share thresholds, report retention.

Read from the environment when called (like ``erpsync.config``); a flow param overrides the
environment for one DAG (``quality_max_bad_share``, ``quality_min_batch``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from erpsync.errors import ConfigError
from erpsync.flows.specs import SPECS
from erpsync.rules.countries import iso_countries

#: the currencies the business trades in (the ERP's price lists); override ERPSYNC_ALLOWED_CURRENCIES
DEFAULT_CURRENCIES = ("USD", "EUR", "GBP", "CAD")


#: share of a batch (mapping errors + failed expectations) above which the run fails
DEFAULT_MAX_BAD_SHARE = 0.10
#: per-flow defaults, each flow's ``FlowSpec.max_bad_share`` (``erpsync.flows.specs``: prices 5 %,
#: the others 10 %); ERPSYNC_QUALITY_THRESHOLDS="orders_sync=0.05,inventory_sync=0.2" overrides
FLOW_MAX_BAD_SHARE: dict[str, float] = {
    name: spec.max_bad_share for name, spec in SPECS.items() if spec.max_bad_share is not None
}
#: a stock figure beyond this (in units, either sign) is a unit or keying error, not stock
MAX_STOCK_QUANTITY = 1_000_000_000
#: a batch smaller than this never fails the run on its share (its bad records are still
#: quarantined; the watchdog's dead-letter check catches a steady trickle)
DEFAULT_MIN_BATCH = 10
#: fewer bad records than this never fail the run on their share, whatever the batch size (one
#: negative price among 14 changed ones is quarantined, the 13 others go on); param
#: ``quality_min_bad`` or ERPSYNC_QUALITY_MIN_BAD
DEFAULT_MIN_BAD = 3
#: rounding policy of "lines + shipping + tax - discounts = total"
TOTAL_TOLERANCE = 0.01
DEFAULT_REPORT_RETENTION_DAYS = 14


def _codes(var: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    codes = tuple(c.strip().upper() for c in raw.split(",") if c.strip())
    if not codes:
        raise ConfigError(f"{var}={raw!r} lists no codes; set e.g. USD,EUR")
    return codes


def allowed_currencies() -> tuple[str, ...]:
    return _codes("ERPSYNC_ALLOWED_CURRENCIES", DEFAULT_CURRENCIES)


def allowed_countries() -> tuple[str, ...]:
    return _codes("ERPSYNC_ALLOWED_COUNTRIES", iso_countries())  # ISO 3166-1, officially assigned (babel)


def _share(raw: Any, where: str) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}={raw!r} is not a share; set e.g. 0.1 for 10 %") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"{where}={raw!r} must be between 0 and 1 (0.1 = 10 %)")
    return value


def max_bad_share(flow: str, params: Mapping[str, Any] | None = None) -> float:
    """Param ``quality_max_bad_share``, else ERPSYNC_QUALITY_THRESHOLDS for the flow, else the
    per-flow default, else ERPSYNC_QUALITY_MAX_BAD_SHARE, else 10 %."""
    if params and params.get("quality_max_bad_share") is not None:
        return _share(params["quality_max_bad_share"], "param quality_max_bad_share")
    for item in os.environ.get("ERPSYNC_QUALITY_THRESHOLDS", "").split(","):
        name, _, value = item.partition("=")
        if name.strip() == flow and value.strip():
            return _share(value.strip(), f"ERPSYNC_QUALITY_THRESHOLDS[{flow}]")
    if flow in FLOW_MAX_BAD_SHARE:
        return FLOW_MAX_BAD_SHARE[flow]
    raw = os.environ.get("ERPSYNC_QUALITY_MAX_BAD_SHARE", "").strip()
    return _share(raw, "ERPSYNC_QUALITY_MAX_BAD_SHARE") if raw else DEFAULT_MAX_BAD_SHARE


def min_batch(params: Mapping[str, Any] | None = None) -> int:
    raw = (params or {}).get("quality_min_batch")
    if raw is None:
        raw = os.environ.get("ERPSYNC_QUALITY_MIN_BATCH", "").strip() or DEFAULT_MIN_BATCH
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        raise ConfigError(f"quality_min_batch {raw!r} is not a whole number; set e.g. 10") from None


def min_bad(params: Mapping[str, Any] | None = None) -> int:
    """Param ``quality_min_bad``, else ERPSYNC_QUALITY_MIN_BAD, else 3: the bad records a batch needs
    before its bad share can fail the run."""
    raw = (params or {}).get("quality_min_bad")
    if raw is None:
        raw = os.environ.get("ERPSYNC_QUALITY_MIN_BAD", "").strip() or DEFAULT_MIN_BAD
    try:
        return max(1, int(raw))
    except (TypeError, ValueError):
        raise ConfigError(f"quality_min_bad {raw!r} is not a whole number; set e.g. 3") from None


def report_retention_days() -> int:
    raw = os.environ.get("ERPSYNC_QUALITY_REPORT_RETENTION_DAYS", "").strip()
    try:
        return int(raw) if raw else DEFAULT_REPORT_RETENTION_DAYS
    except ValueError:
        raise ConfigError(f"ERPSYNC_QUALITY_REPORT_RETENTION_DAYS={raw!r} is not a whole number") from None
