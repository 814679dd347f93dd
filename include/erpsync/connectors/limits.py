"""A system's published limits, from its Airflow Connection's extra: requests per second, tasks at
once, burst. Declared here, beside the adapters they belong to, so building an adapter checks its
Connection at once (``connectors.registry``); ``erpsync.reliability.budget`` enforces them (the
shared token bucket, the pools)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from erpsync.errors import ConfigError

#: pool slots when the Connection names no ``concurrency``: erpsync tasks on the system at once
DEFAULT_CONCURRENCY = 4
#: requests per second when the Connection names no ``rps``: None, no limit of our own (only the
#: system's 429 + Retry-After); set the figure the vendor publishes
DEFAULT_RPS: float | None = None
#: requests an idle system may get at once, in seconds' worth of its rate (at least 1 request)
BURST_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Limits:
    """A system's published limits, from its Connection's extra."""

    rps: float | None = DEFAULT_RPS
    concurrency: int = DEFAULT_CONCURRENCY
    burst: float | None = None  # requests at once on an idle system (default: BURST_SECONDS of rps)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any] | None, *, conn_id: str = "") -> Limits:
        """``{"rps": 40, "concurrency": 15, "burst": 10}`` (each optional) -> Limits; a bad value is
        a one-line ConfigError naming the Connection."""
        extra = extra or {}
        conn = conn_id or str(extra.get("conn_id") or "the connection")
        rps = _positive(extra.get("rps"), conn, "rps", "requests per second")
        burst = _positive(extra.get("burst"), conn, "burst", "requests at once")
        raw = extra.get("concurrency")
        if raw in (None, ""):
            concurrency = DEFAULT_CONCURRENCY
        else:
            try:
                concurrency = int(raw)
                ok = concurrency >= 1 and float(raw) == concurrency and not isinstance(raw, bool)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConfigError(f"Connection {conn}: extra 'concurrency' must be a whole number >= 1 "
                                  f"(erpsync tasks on the system at once: its pool's slots), got {raw!r}")
        return cls(rps=rps, concurrency=concurrency, burst=burst)

    @property
    def burst_size(self) -> float:
        if self.burst is not None:
            return max(1.0, self.burst)
        return max(1.0, (self.rps or 0) * BURST_SECONDS)

    def to_dict(self) -> dict[str, Any]:
        return {"rps": self.rps, "concurrency": self.concurrency, "burst": self.burst}


def _positive(value: Any, conn: str, key: str, meaning: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number > 0 or math.isinf(number):
        raise ConfigError(f"Connection {conn}: extra {key!r} must be a positive number ({meaning}), got {value!r}")
    return number
