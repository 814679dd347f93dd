"""One rate budget per external system, shared by parallel flows, backfills and migrations.

The limits of a system are in the extra of its Airflow Connection (``{"rps": 40, "concurrency":
15}``; :class:`Limits`, defaults below). They are enforced in two halves:

* **Concurrency** is an Airflow pool per system (``erpsync_erp``, ``erpsync_storefront``;
  :func:`pool_specs`): ``concurrency`` slots, so at most that many erpsync tasks work on the system
  at once, whatever DAG, backfill or migration they belong to. A task runs in the pool of the
  system it loads (its writes); ``erpsync pools sync`` creates and resizes the pools from the
  Connections (``scripts/up.sh`` and the compose ``airflow-init`` run it).
* **Requests per second** are one budget per system in the state store (:class:`SharedRate`,
  GCRA: the "virtual scheduling" form of a token bucket), which every process and thread calling
  the system draws from before each request (``HttpClient.throttle``). Why the store and not
  ``rps / pool slots`` per task: a task is in one pool only, but most flows call both systems
  (orders_sync reads the store and writes the ERP), so a per-slot share cannot bound the calls to
  the system whose pool the task is not in; and a per-slot share leaves a task that runs alone
  with ``1 / slots`` of the budget (orders_sync would crawl at night while nothing else runs).
  The shared budget is exact across processes and machines, lets one task use all of it and
  costs one short write per ``LEASE_SECONDS`` worth of requests (at 40 req/s: one per 4 requests).
  It takes its time from the database server (PostgreSQL), so clocks of workers need not agree.
  If the store cannot be reached, the task falls back to ``rps / concurrency`` on its own, which
  keeps all tasks together within ``rps`` as long as each runs in the system's pool.

429 with ``Retry-After`` is still honoured by the HTTP client when the system is stricter than its
Connection says. DAG Params ``<system>_rps`` (with ``<system>_pool_slots``) cap one run further
(the historical migration's own share), on top of the system's budget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

# a system's published limits are its Connection's, declared with the adapters (erpsync.connectors.limits:
# building an adapter checks them at once); the budget enforces them. Re-exported for its callers.
from erpsync.connectors.limits import BURST_SECONDS, DEFAULT_CONCURRENCY, DEFAULT_RPS, Limits  # noqa: F401

if TYPE_CHECKING:
    from erpsync.state import StateStore

log = logging.getLogger(__name__)

#: the external systems that have a budget (and an Airflow pool each)
SYSTEMS = ("erp", "storefront")
#: the Connection of each system
CONNECTIONS = {"erp": "erp_default", "storefront": "storefront_default"}
#: a process reserves this many seconds' worth of requests per round trip to the store
LEASE_SECONDS = 0.1
#: a reserved slot not used within this long after its time is dropped, never sent late in a bunch
LATE_SECONDS = 0.1


def pool_name(system: str) -> str:
    return f"erpsync_{system}"


def limits_of(adapter: Any) -> Limits:
    """The limits of an adapter: its ``limits`` attribute (the Connection's extra, set by
    ``connectors.registry``), else the defaults."""
    extra = getattr(adapter, "limits", None)
    if isinstance(extra, Limits):
        return extra
    return Limits.from_extra(extra if isinstance(extra, Mapping) else None,
                             conn_id=str(getattr(adapter, "connection_id", "") or ""))


def pool_specs(limits: Mapping[str, Limits | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Airflow pools from each system's limits (``{"erp": Limits(...)}`` or ``{"erp": {"rps": 20,
    "concurrency": 4}}``): one pool per system with ``concurrency`` slots; the description says the
    system's requests per second (shared by all slots through the state store)."""
    specs = []
    for system, lim in sorted(limits.items()):
        lim = lim if isinstance(lim, Limits) else Limits.from_extra(lim, conn_id=CONNECTIONS.get(system, system))
        rate = f", {lim.rps:g} req/s shared by all of them" if lim.rps else ", no req/s limit of ours"
        specs.append({"name": pool_name(system), "slots": lim.concurrency, "system": system, "rps": lim.rps,
                      "description": f"erpsync rate budget of the {system}: {lim.concurrency} task(s) at once"
                                     f"{rate} (from Connection {CONNECTIONS.get(system, system)})"})
    return specs


def per_slot_rate(rps: float, slots: int) -> float:
    return rps / max(1, slots)


# --------------------------------------------------------------------------- throttles


class TokenBucket:
    """``acquire()`` blocks until a request may go: at most ``rate`` per second, bursts of ``burst``.
    In-process only (one task's own cap, or the fallback when the store is unreachable)."""

    from_budget = True

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


def reserve(store: StateStore, system: str, rate: float, burst: float, count: int) -> list[float]:
    """Take ``count`` requests of ``system``'s shared budget; returns, for each, the seconds from now
    at which it may be sent (0: at once). One short write transaction (GCRA on ``rate_budgets``:
    a request may go at ``max(now, tat - tau)`` and moves ``tat`` on by ``1 / rate``)."""
    import sqlalchemy as sa

    from erpsync.state import schema as t

    rb = t.rate_budgets
    interval = 1.0 / rate
    tau = (max(1.0, burst) - 1.0) * interval
    with store.db.begin() as conn:
        if store.db.is_sqlite:
            now = time.time()  # one machine: the lock of BEGIN IMMEDIATE orders every process
        else:
            now = float(conn.execute(sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))).scalar_one())
        query = sa.select(rb.c.tat).where(rb.c.system == system).with_for_update()
        tat = conn.execute(query).scalar()
        if tat is None:
            conn.execute(store.db.insert(rb).values(system=system, tat=now, rps=rate, updated_at=store.db.now())
                         .on_conflict_do_nothing(index_elements=["system"]))
            tat = conn.execute(query).scalar_one()
        delays = []
        for _ in range(max(1, count)):
            delays.append(max(0.0, tat - tau - now))
            tat = max(tat, now) + interval
        conn.execute(sa.update(rb).where(rb.c.system == system).values(tat=tat, rps=rate, updated_at=store.db.now()))
    return delays


class SharedRate:
    """``acquire()`` blocks until a request of ``system`` may go within the budget that every
    process shares through the state store (see the module docstring).

    Requests are reserved ``LEASE_SECONDS`` worth at a time; a reserved slot that was not used
    in time is dropped (so a pause never turns into a burst). When the store cannot be reached
    the process keeps going on ``rate / fallback_share`` of its own."""

    from_budget = True

    def __init__(self, store: StateStore, system: str, rate: float, burst: float | None = None, *,
                 fallback_share: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, lease_seconds: float = LEASE_SECONDS) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.store, self.system, self.rate = store, system, float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate * BURST_SECONDS))
        self.lease = max(1, int(self.rate * lease_seconds))
        self.fallback_share = max(1, int(fallback_share))
        self._clock, self._sleep = clock, sleep
        self._slots: deque[float] = deque()
        self._lock = threading.Lock()
        self._fallback: TokenBucket | None = None
        self.dropped = 0  # reserved slots not used in time

    def acquire(self) -> None:
        import sqlalchemy as sa

        with self._lock:
            while True:
                if self._fallback is not None:
                    self._fallback.acquire()
                    return
                now = self._clock()
                while self._slots and self._slots[0] < now - LATE_SECONDS:
                    self._slots.popleft()
                    self.dropped += 1
                if self._slots:
                    at = self._slots.popleft()
                    if at > now:
                        self._sleep(at - now)
                    return
                try:
                    delays = reserve(self.store, self.system, self.rate, self.burst, self.lease)
                except sa.exc.SQLAlchemyError as exc:
                    share = self.rate / self.fallback_share
                    log.warning("%s: the shared rate budget is unavailable (%s); this task keeps to %.3g req/s "
                                "(rps / pool slots) on its own", self.system, exc.__class__.__name__, share)
                    self._fallback = TokenBucket(share, burst=1, clock=self._clock, sleep=self._sleep)
                    continue
                base = self._clock()
                self._slots.extend(base + d for d in delays)


class AllOf:
    """Several throttles in turn: a run's own cap first, then the system's shared budget (so a
    shared slot is never taken, then wasted while the cap holds the request back)."""

    from_budget = True

    def __init__(self, *throttles: Any) -> None:
        self.throttles = throttles

    def acquire(self) -> None:
        for throttle in self.throttles:
            throttle.acquire()


def throttle_for(params: Mapping[str, Any], system: str, *, limits: Limits | None = None,
                 store: StateStore | None = None) -> Any:
    """The throttle of one task's calls to ``system`` (None: no limit).

    ``limits.rps`` (the Connection) is the system's budget, shared through ``store`` by every
    process (``rps / concurrency`` of its own without a store); params ``<system>_rps`` and
    ``<system>_pool_slots`` cap this run further to ``rps / pool_slots``."""
    parts: list[Any] = []
    own = params.get(f"{system}_rps")
    if own:
        parts.append(TokenBucket(per_slot_rate(float(own), int(params.get(f"{system}_pool_slots") or 1))))
    if limits is not None and limits.rps:
        if store is not None:
            parts.append(SharedRate(store, system, limits.rps, limits.burst_size, fallback_share=limits.concurrency))
        else:
            parts.append(TokenBucket(per_slot_rate(limits.rps, limits.concurrency), burst=1))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else AllOf(*parts)


def install(adapter: Any, system: str, params: Mapping[str, Any], store: StateStore | None) -> None:
    """Give ``adapter``'s HTTP client the throttle of ``system`` from its Connection's limits and
    the run's params. A throttle set by someone else (a test, a benchmark) is left alone, and so is
    the one an adapter without limits of its own got from the adapter it was forked from (a worker
    thread's session: ``fork()`` hands on its parent's throttle, one budget per system)."""
    http = getattr(adapter, "http", None)
    if http is None or not hasattr(http, "throttle"):
        return
    if http.throttle is not None and (not getattr(http.throttle, "from_budget", False)
                                      or getattr(adapter, "limits", None) is None):
        return
    http.throttle = throttle_for(params, system, limits=limits_of(adapter), store=store)
