"""Runtime fault injection: what can go wrong between erpsync and a remote system, on demand.

Decisions come from one RNG seeded by the ``seed`` of the last ``POST /_admin/faults``, so the same
sequence of requests meets the same faults: tests are repeatable.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

ALLOWED = {
    "seed", "latency_ms", "jitter_ms", "error_rate", "error_status", "rate_limit", "commit_then_timeout",
    "hold_seconds", "outage_seconds", "expire_sessions", "malformed_rate", "paths", "methods", "max_faults",
    "concurrency", "ignore_idempotency_keys",
}


class FaultConfigError(ValueError):
    """A fault setting is unknown or has the wrong type."""


@dataclass
class Decision:
    """What the service does to one request before (and after) handling it."""

    delay: float = 0.0
    reject_status: int | None = None
    reject_body: dict[str, Any] | None = None
    retry_after: float | None = None
    commit_then_timeout: float | None = None  # hold seconds, for writes only
    #: a capacity-limited server: hold one of ``limit`` slots for ``service`` seconds (queue when none is free)
    slot: threading.Semaphore | None = None
    service: float = 0.0


class Faults:
    """The current fault settings of one service and the state they need (RNG, budget, outage)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.config: dict[str, Any] = {}
            self.rng = random.Random(0)
            self.outage_until = 0.0
            self.injected: Counter[str] = Counter()
            self._used = 0
            self._bucket = 0.0
            self._bucket_at = time.monotonic()
            self._slots: threading.Semaphore | None = None

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Merge ``changes`` into the settings; returns one-shot actions (e.g. ``expire_sessions``)."""
        if not isinstance(changes, dict):
            raise FaultConfigError("faults must be a JSON object")
        unknown = sorted(set(changes) - ALLOWED)
        if unknown:
            raise FaultConfigError(f"unknown fault settings {unknown}; allowed: {sorted(ALLOWED)}")
        actions: list[str] = []
        with self._lock:
            cfg = dict(self.config)
            for key, value in changes.items():
                if value is None:  # null removes any setting (and what it set up), as documented
                    cfg.pop(key, None)
                    if key == "concurrency":
                        self._slots = None
                    elif key == "outage_seconds":
                        self.outage_until = 0.0
                    continue
                if key == "outage_seconds":
                    self.outage_until = time.monotonic() + _number(key, value)
                elif key == "expire_sessions":
                    if value:
                        actions.append("expire_sessions")
                elif key == "rate_limit":
                    cfg[key] = _rate_limit(value)
                    self._bucket = float(cfg[key].get("rps") or 0)
                    self._bucket_at = time.monotonic()
                elif key == "concurrency":
                    if not isinstance(value, dict) or not isinstance(value.get("limit"), int) or value["limit"] < 1:
                        raise FaultConfigError('concurrency must be {"limit": n, "service_ms": ms}')
                    cfg[key] = {"limit": value["limit"], "service_ms": float(value.get("service_ms", 0))}
                    self._slots = threading.BoundedSemaphore(value["limit"])
                elif key == "commit_then_timeout":
                    cfg[key] = _commit_then_timeout(value)
                elif key == "ignore_idempotency_keys":  # a remote that silently drops the header
                    if not isinstance(value, bool):
                        raise FaultConfigError("ignore_idempotency_keys must be true or false")
                    cfg[key] = value
                elif key in ("paths", "methods", "error_status"):
                    cfg[key] = value if isinstance(value, list) else [value]
                else:
                    cfg[key] = _number(key, value)
            self.config = cfg
            self.rng = random.Random(int(cfg.get("seed", 0)))
            self._used = 0  # max_faults counts from the latest update
        return actions

    def snapshot(self) -> dict[str, Any]:
        remaining = max(0.0, self.outage_until - time.monotonic())
        return {"faults": self.config, "outage_remaining_seconds": round(remaining, 3),
                "injected": dict(self.injected)}

    def applies(self, method: str, path: str) -> bool:
        """``paths``: prefixes (``/api/returns``), or patterns with ``*`` for one path segment
        (``/admin/api/orders/*/fulfillments``, which a prefix cannot single out)."""
        paths = self.config.get("paths")
        methods = self.config.get("methods")
        if paths and not any(_path_matches(path, p) for p in paths):
            return False
        return not (methods and method.upper() not in [m.upper() for m in methods])

    def _budget_left(self) -> bool:
        limit = self.config.get("max_faults")
        return limit is None or self._used < limit

    def decide(self, method: str, path: str, is_write: bool) -> Decision:
        """Roll the dice for one request, in a fixed order so a seed replays the same faults."""
        d = Decision()
        with self._lock:
            if time.monotonic() < self.outage_until:
                self.injected["outage"] += 1
                remaining = self.outage_until - time.monotonic()
                d.reject_status = 503
                d.reject_body = {"error": "outage", "message": f"service unavailable for {remaining:.0f} more seconds"}
                return d
            cfg = self.config
            if not cfg or not self.applies(method, path):
                return d
            if self._slots is not None:
                d.slot, d.service = self._slots, cfg["concurrency"]["service_ms"] / 1000
            latency = float(cfg.get("latency_ms", 0))
            if latency:
                jitter = float(cfg.get("jitter_ms", 0))
                d.delay = max(0.0, latency + (self.rng.uniform(-jitter, jitter) if jitter else 0)) / 1000
                self.injected["latency"] += 1
            rl = cfg.get("rate_limit")
            if rl and self._budget_left():
                retry_after = float(rl.get("retry_after", 1))
                limited = False
                if rl.get("rps"):
                    t = time.monotonic()
                    self._bucket = min(float(rl["rps"]), self._bucket + (t - self._bucket_at) * float(rl["rps"]))
                    self._bucket_at = t
                    if self._bucket >= 1:
                        self._bucket -= 1
                    else:
                        limited = True
                if not limited and rl.get("rate"):
                    limited = self.rng.random() < float(rl["rate"])
                if limited:
                    self.injected["rate_limit"] += 1
                    self._used += 1
                    d.reject_status, d.retry_after = 429, retry_after
                    d.reject_body = {"error": "rate_limited", "message": f"too many requests, retry after {retry_after:g}s"}
                    return d
            rate = float(cfg.get("error_rate", 0))
            if rate and self._budget_left() and self.rng.random() < rate:
                statuses = cfg.get("error_status") or [500, 502, 503]
                d.reject_status = int(self.rng.choice(statuses))
                d.reject_body = {"error": "injected_error", "message": "simulated server failure"}
                self.injected["error"] += 1
                self._used += 1
                return d
            ctt = cfg.get("commit_then_timeout")
            if is_write and ctt and self._budget_left() and self.rng.random() < float(ctt.get("rate", 0)):
                d.commit_then_timeout = float(ctt.get("hold_seconds", cfg.get("hold_seconds", 5)))
                self.injected["commit_then_timeout"] += 1
                self._used += 1
        return d

    def is_malformed(self, key: str) -> bool:
        """Whether the record ``key`` is served broken: stable per (seed, key) across pages and calls."""
        rate = float(self.config.get("malformed_rate", 0) or 0)
        if not rate:
            return False
        digest = hashlib.sha256(f"{self.config.get('seed', 0)}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < rate

    def note_malformed(self) -> None:
        with self._lock:
            self.injected["malformed"] += 1


def _path_matches(path: str, rule: str) -> bool:
    if "*" not in rule:
        return path.startswith(rule)
    parts, want = path.split("/"), rule.split("/")
    return len(parts) == len(want) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, want, strict=True))


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultConfigError(f"fault setting {key!r} must be a number, got {value!r}")
    return value


def _rate_limit(value: Any) -> dict[str, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"rate": float(value), "retry_after": 1}
    if isinstance(value, dict) and set(value) <= {"rate", "rps", "retry_after"}:
        return dict(value)
    raise FaultConfigError('rate_limit must be a number or {"rate"|"rps": n, "retry_after": seconds}')


def _commit_then_timeout(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and set(value) <= {"rate", "hold_seconds"}:
        return {k: _number(f"commit_then_timeout.{k}", v) for k, v in value.items()}
    if isinstance(value, dict):
        raise FaultConfigError('commit_then_timeout must be a number or {"rate": n, "hold_seconds": s}')
    return {"rate": _number("commit_then_timeout", value)}
