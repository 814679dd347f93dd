"""One rate budget per external system, shared by parallel flows and backfills.

Two halves: concurrency is an Airflow pool per system (``pool_specs``: slots = the system's
allowed concurrent clients), and requests per second are split evenly over those slots, so each
running task throttles itself to ``rps / slots`` (``TokenBucket`` on ``HttpClient.throttle``)
and all of them together stay within ``rps`` however many run. 429 with ``Retry-After`` is still
honoured by the HTTP client when the system is stricter than its published limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any


class TokenBucket:
    """``acquire()`` blocks until a request may go: at most ``rate`` per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.burst
        self._clock, self._sleep = clock, sleep
        self._at = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1 - 1e-9:  # float sums of small waits land just below 1
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)


def pool_name(system: str) -> str:
    return f"erpsync_{system}"


def pool_specs(limits: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Airflow pools from each system's limits ``{"erp": {"rps": 20, "concurrency": 4}}``: one pool
    per system with ``concurrency`` slots; each slot's share of the requests per second is in the
    description (and is what ``per_slot_rate`` gives the tasks)."""
    specs = []
    for system, lim in sorted(limits.items()):
        slots = max(1, int(lim.get("concurrency", 1)))
        rps = lim.get("rps")
        share = f", {per_slot_rate(float(rps), slots):g} req/s per slot" if rps else ""
        specs.append({"name": pool_name(system), "slots": slots,
                      "description": f"{system}: {slots} concurrent task(s){share} (erpsync rate budget)"})
    return specs


def per_slot_rate(rps: float, slots: int) -> float:
    return rps / max(1, slots)


def throttle_for(params: Mapping[str, Any], system: str) -> TokenBucket | None:
    """The bucket of one task: params ``<system>_rps`` and ``<system>_pool_slots`` (the pool size)."""
    rps = params.get(f"{system}_rps")
    if not rps:
        return None
    return TokenBucket(per_slot_rate(float(rps), int(params.get(f"{system}_pool_slots") or 1)))
