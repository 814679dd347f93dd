"""A circuit breaker per external system, shared by every worker through the state store.

The state lives in the ``circuit_breakers`` row of the system, never in process memory, so a
scheduler running ten task processes on three machines has one breaker per system. Every
transition is a guarded UPDATE (compare-and-set on ``state``) inside one transaction, so when many
workers fail at once exactly one of them opens the circuit, and exactly one of them recovers it;
that worker records the event and sends the one e-mail.

    closed --(threshold consecutive failures)--> open --(cooldown passed, one worker probes)-->
    half_open --(probe succeeds)--> closed      half_open --(probe fails)--> open (again)

A failure is a transient failure of the system itself after the HTTP client's own retries
(timeouts, 5xx, refused connections); 4xx answers are successes (the system is up), and 429 is
neither: the rate budget handles it. Times come from the store's clock, so tests and the chaos
suite can move through a ten-minute outage in simulated time.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from erpsync.errors import TransientError
from erpsync.state import schema as t

if TYPE_CHECKING:
    from erpsync.reliability.notify import Notifier
    from erpsync.state import StateStore

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 60.0
DEFAULT_PROBE_LEASE_SECONDS = 120.0


class CircuitOpenError(TransientError):
    """The system's circuit is open: nothing was sent. Keep the work (outbox) and try later."""

    def __init__(self, system: str, retry_at: dt.datetime | None = None) -> None:
        when = f" until about {retry_at:%Y-%m-%d %H:%M:%S} UTC" if retry_at else ""
        super().__init__(f"{system}: circuit open{when}; the call was not sent", system=system)
        self.retry_at = retry_at


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    threshold: int = DEFAULT_THRESHOLD  # consecutive failures that open the circuit
    cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS  # open this long before a probe
    probe_lease_seconds: float = DEFAULT_PROBE_LEASE_SECONDS  # a silent prober loses the probe after this

    @classmethod
    def from_settings(cls, *sources: Any) -> BreakerConfig:
        """First value found in the mappings ``sources`` (connection extras, DAG params), keys
        ``breaker_threshold``, ``breaker_cooldown_seconds``, ``breaker_probe_lease_seconds``."""
        values: dict[str, Any] = {}
        for field, cast in (("threshold", int), ("cooldown_seconds", float), ("probe_lease_seconds", float)):
            for src in sources:
                if src and src.get(f"breaker_{field}") is not None:
                    values[field] = cast(src[f"breaker_{field}"])
                    break
        return cls(**values)


@dataclass(frozen=True, slots=True)
class BreakerState:
    system: str
    state: str  # closed | open | half_open
    failures: int
    opened_at: dt.datetime | None
    probe_owner: str | None
    probe_until: dt.datetime | None
    last_error: str | None
    updated_at: dt.datetime

    @classmethod
    def from_row(cls, row: Any) -> BreakerState:
        return cls(**{k: row[k] for k in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    id: int
    system: str
    event: str  # opened | half_open | reopened | recovered
    detail: str | None
    at: dt.datetime


def worker_id() -> str:
    """Who holds a probe: host, process and a random part (a restarted process is someone else)."""
    return f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class CircuitBreaker:
    """The breaker of one ``system`` in ``store``. Cheap to build; build one per task."""

    def __init__(
        self,
        store: StateStore,
        system: str,
        config: BreakerConfig | None = None,
        *,
        notifier: Notifier | None = None,
        owner: str | None = None,
        on_event: Any = None,
    ) -> None:
        self.store = store
        self.system = system
        self.config = config or BreakerConfig()
        self.notifier = notifier
        self.owner = owner or worker_id()
        self.on_event = on_event  # callable(event, state) -> None, e.g. to render the e-mail with counts
        self._lock = threading.Lock()
        self._known_clean = False  # last seen closed with no failures: a success needs no write
        self._ensured = False

    # -- reading -----------------------------------------------------------------------------

    def _ensure(self) -> None:
        if self._ensured:
            return
        b = t.circuit_breakers
        stmt = (
            self.store.db.insert(b)
            .values(system=self.system, state="closed", failures=0, updated_at=self.store.db.now())
            .on_conflict_do_nothing(index_elements=[b.c.system])
        )
        with self.store.db.begin() as conn:
            conn.execute(stmt)
        self._ensured = True

    def state(self) -> BreakerState:
        self._ensure()
        b = t.circuit_breakers
        with self.store.db.begin(write=False) as conn:
            row = conn.execute(sa.select(b).where(b.c.system == self.system)).mappings().one()
        return BreakerState.from_row(row)

    def events(self, limit: int = 100) -> list[BreakerEvent]:
        e = t.breaker_events
        q = sa.select(e).where(e.c.system == self.system).order_by(e.c.id).limit(limit)
        with self.store.db.begin(write=False) as conn:
            return [BreakerEvent(**dict(r)) for r in conn.execute(q).mappings()]

    # -- the three calls a client makes --------------------------------------------------------

    def allow(self) -> None:
        """Return if a call may be sent now; raise :class:`CircuitOpenError` if not.

        When the cooldown has passed, one worker (whoever wins the UPDATE) becomes the prober
        and is let through; the others keep waiting until it reports back.
        """
        st = self.state()
        if st.state == "closed":
            self._known_clean = st.failures == 0
            return
        self._known_clean = False
        now = self.store.db.now()
        b = t.circuit_breakers
        if st.state == "half_open":
            if st.probe_owner == self.owner:
                return
            if st.probe_until is not None and st.probe_until < now:  # the prober went silent
                if self._cas(sa.and_(b.c.state == "half_open", b.c.probe_until < now),
                             probe_owner=self.owner, probe_until=self._lease(now)):
                    log.info("%s: circuit half-open, probe taken over by %s", self.system, self.owner)
                    return
            raise CircuitOpenError(self.system, st.probe_until)
        retry_at = (st.opened_at or now) + dt.timedelta(seconds=self.config.cooldown_seconds)
        if now >= retry_at and self._cas(
            sa.and_(b.c.state == "open", b.c.opened_at <= now - dt.timedelta(seconds=self.config.cooldown_seconds)),
            state="half_open", probe_owner=self.owner, probe_until=self._lease(now),
            event=("half_open", f"cooldown of {self.config.cooldown_seconds:g}s passed; probing"),
        ):
            log.warning("%s: circuit half-open, probing with the next call", self.system)
            return
        raise CircuitOpenError(self.system, retry_at)

    def record_success(self) -> None:
        """The system answered. A probe's success closes the circuit (and sends the recovery e-mail)."""
        if self._known_clean:
            return
        b = t.circuit_breakers
        if self._cas(sa.and_(b.c.state == "half_open", b.c.probe_owner == self.owner),
                     state="closed", failures=0, opened_at=None, probe_owner=None, probe_until=None,
                     event=("recovered", "probe succeeded; calls resume")):
            log.warning("%s: circuit closed again (recovered)", self.system)
        else:
            self._cas(sa.and_(b.c.state == "closed", b.c.failures > 0), failures=0)
        self._known_clean = True

    def record_failure(self, reason: str = "") -> None:
        """A transient failure of the system: count it; at the threshold, open the circuit once."""
        self._known_clean = False
        self._ensure()
        b = t.circuit_breakers
        now = self.store.db.now()
        reason = (reason or "failure")[:500]
        events: list[tuple[str, str]] = []
        with self._lock, self.store.db.begin() as conn:
            res = conn.execute(
                sa.update(b).where(b.c.system == self.system, b.c.state == "half_open", b.c.probe_owner == self.owner)
                .values(state="open", opened_at=now, probe_owner=None, probe_until=None, last_error=reason,
                        updated_at=now)
            )
            if res.rowcount:
                events.append(("reopened", f"probe failed: {reason}"))
            else:
                conn.execute(
                    sa.update(b).where(b.c.system == self.system, b.c.state == "closed")
                    .values(failures=b.c.failures + 1, last_error=reason, updated_at=now)
                )
                opened = conn.execute(
                    sa.update(b)
                    .where(b.c.system == self.system, b.c.state == "closed", b.c.failures >= self.config.threshold)
                    .values(state="open", opened_at=now, updated_at=now)
                )
                if opened.rowcount:
                    events.append(("opened", f"{self.config.threshold} consecutive failures; last: {reason}"))
            for event, detail in events:
                conn.execute(sa.insert(t.breaker_events).values(system=self.system, event=event, detail=detail, at=now))
        for event, detail in events:
            log.warning("%s: circuit %s (%s)", self.system, event, detail)
            self._announce(event)

    # -- plumbing ------------------------------------------------------------------------------

    def _lease(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.config.probe_lease_seconds)

    def _cas(self, guard: Any, *, event: tuple[str, str] | None = None, **values: Any) -> bool:
        """UPDATE the row WHERE ``guard``; True if this call changed it (and then log ``event``)."""
        self._ensure()
        b = t.circuit_breakers
        now = self.store.db.now()
        with self._lock, self.store.db.begin() as conn:
            res = conn.execute(
                sa.update(b).where(b.c.system == self.system, guard).values(updated_at=now, **values)
            )
            won = res.rowcount == 1
            if won and event is not None:
                conn.execute(
                    sa.insert(t.breaker_events).values(system=self.system, event=event[0], detail=event[1], at=now)
                )
        if won and event is not None:
            self._announce(event[0])
        return won

    def _announce(self, event: str) -> None:
        """The opening and the recovery each send one e-mail; the notifier never fails a sync."""
        if event not in ("opened", "recovered"):
            return
        if self.on_event is not None:
            try:
                self.on_event(event, self.state())
            except Exception:
                log.warning("%s: breaker event hook failed", self.system, exc_info=True)
            return
        if self.notifier is None:
            return
        from erpsync.reliability.notify import render_breaker_email

        try:
            subject, body = render_breaker_email(event, self.state(), queued=None)
            self.notifier.send(subject, body)
        except Exception:
            log.warning("%s: could not send the breaker %s e-mail", self.system, event, exc_info=True)


class BreakerGuard:
    """What :class:`~erpsync.connectors.http.HttpClient` calls around each request."""

    def __init__(self, breaker: CircuitBreaker, *, cache_seconds: float = 0.0) -> None:
        self.breaker = breaker
        self.cache_seconds = cache_seconds
        self._allowed_until = 0.0

    def before(self) -> None:
        if self.cache_seconds and time.monotonic() < self._allowed_until:
            return
        self.breaker.allow()
        if self.breaker._known_clean and self.cache_seconds:
            self._allowed_until = time.monotonic() + self.cache_seconds

    def success(self) -> None:
        self.breaker.record_success()

    def failure(self, reason: str) -> None:
        self._allowed_until = 0.0
        self.breaker.record_failure(reason)
