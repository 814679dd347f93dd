"""Signed webhooks from the sandbox (issue 21), with the faults real senders have.

Configured per service through its admin API (off until then, and again after ``/_admin/reset``)::

    POST   /_admin/webhooks  {"url": "http://127.0.0.1:8080/erpsync-webhooks/storefront",
                              "secret": "...", "faults": {"duplicate": 0.1, "out_of_order": 0.1,
                              "delay": 0.1, "delay_seconds": 2, "drop": 0.05}, "seed": 7,
                              "events": ["order.paid", ...],          (events: all when left out)
                              "attempts": 6}                          (deliveries per event, 1-10)
    GET    /_admin/webhooks  -> the settings (secret hidden) and counts: emitted, sent, delivered,
                                duplicated, delayed, reordered, dropped, retried, failed
    DELETE /_admin/webhooks  -> off

Each event is ``{"id", "type", "occurred_at", "data": {"id"}}`` signed as ``erpsync.inbox``
expects (``X-Erpsync-Timestamp``, ``X-Erpsync-Signature: v1=<HMAC-SHA256>``). It names the record
only, as real platforms' thin events do. One sender thread delivers in order (unless a fault
says otherwise); a delivery answered with anything but 2xx, or not answered, is retried with
backoff (0.2 s doubling, ``attempts``: 6 by default) as real platforms do, then counted as
``failed``.

Faults (rates 0..1, drawn from a seeded RNG): ``drop`` never sends the event (the flows' cron
sweep must catch the record); ``duplicate`` sends it twice (same event id); ``delay`` holds it
``delay_seconds`` while later events go first; ``out_of_order`` sends it after the next event.

Events per service: storefront ``order.created``, ``order.paid``, ``order.updated``,
``order.cancelled``, ``return.requested``, ``return.updated``, ``customer.redact_requested``
(every event of its ``/admin/api/events`` feed); ERP ``shipment.created``, ``stock.changed``
(an item's stock moved in a warehouse), ``price.changed``.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from typing import Any

from erpsync.inbox import EVENTS, signed_headers

FAULTS = ("duplicate", "out_of_order", "delay", "drop")
RETRIES = 6


class WebhookSender:
    """The webhooks of one sandbox service: ``emit`` queues, a thread delivers."""

    def __init__(self, service: str) -> None:
        self.service = service  # "storefront" or "erp"
        self.known = set(EVENTS.get(service, {}))
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[dict, int] | None] = queue.Queue()
        self._held: list[tuple[float, int, dict]] = []  # delayed events: (due, seq, event)
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self.clear()

    # ------------------------------------------------------------------ admin
    def install(self, svc: Any) -> None:
        svc.admin("GET", "/_admin/webhooks", lambda req: (200, self.snapshot()))
        svc.admin("POST", "/_admin/webhooks", self._configure)
        svc.admin("DELETE", "/_admin/webhooks", self._clear)

    def _clear(self, req: Any) -> tuple[int, Any]:
        self.clear()
        return 200, self.snapshot()

    def clear(self) -> None:
        with self._lock:
            self.generation = getattr(self, "generation", 0) + 1  # queued events of before are dropped
            self.url: str | None = None
            self.secret: str | None = None
            self.faults: dict[str, float] = {}
            self.delay_seconds = 2.0
            self.retries = RETRIES
            self.events: set[str] | None = None
            self.rng = random.Random(0)
            self.counts: Counter[str] = Counter()
            self._pending_swap: dict | None = None
            self._held.clear()

    def _configure(self, req: Any) -> tuple[int, Any]:
        from erpsync.sandbox.server import HttpError

        body = req.json_object()
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise HttpError(422, "validation_failed", "url must be an http(s) URL")
        if not isinstance(secret, str) or not secret:
            raise HttpError(422, "validation_failed", "secret must be a non-empty string")
        faults = body.get("faults") or {}
        if not isinstance(faults, dict) or set(faults) - {*FAULTS, "delay_seconds"}:
            raise HttpError(422, "validation_failed", f"faults accepts {[*FAULTS, 'delay_seconds']}")
        rates: dict[str, float] = {}
        for name in FAULTS:
            value = float(faults.get(name, 0) or 0)
            if not 0 <= value <= 1:
                raise HttpError(422, "validation_failed", f"faults.{name} must be between 0 and 1")
            rates[name] = value
        retries = body.get("attempts", RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 1 <= retries <= 10:
            raise HttpError(422, "validation_failed", "attempts must be a whole number from 1 to 10")
        events = body.get("events")
        if events is not None and (not isinstance(events, list) or set(events) - self.known):
            raise HttpError(422, "validation_failed", f"events must be a list of {sorted(self.known)}")
        self.clear()
        with self._lock:
            self.url, self.secret, self.faults = url, secret, rates
            self.delay_seconds = float(faults.get("delay_seconds", 2))
            self.retries = retries
            self.events = set(events) if events is not None else None
            self.rng = random.Random(int(body.get("seed", 0)))
        self._start()
        return 200, self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"service": self.service, "url": self.url, "secret": "***" if self.secret else None,
                    "faults": dict(self.faults), "delay_seconds": self.delay_seconds,
                    "events": sorted(self.events) if self.events is not None else sorted(self.known),
                    "counts": dict(self.counts), "queued": self._queue.qsize() + len(self._held)}

    # ------------------------------------------------------------------ emit
    def emit(self, kind: str, record_id: Any, at: float | None = None) -> None:
        """Queue one event (no-op when webhooks are off or the kind is not sent). Never blocks."""
        if self.url is None or kind not in self.known or (self.events is not None and kind not in self.events):
            return
        when = dt.datetime.fromtimestamp(time.time() if at is None else at, dt.UTC)
        event = {"id": f"evt_{uuid.uuid4().hex}", "type": kind,
                 "occurred_at": when.isoformat().replace("+00:00", "Z"), "data": {"id": str(record_id)}}
        with self._lock:
            self.counts["emitted"] += 1
            generation = self.generation
        self._queue.put((event, generation))

    # ------------------------------------------------------------------ delivery
    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=f"webhooks-{self.service}", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            timeout = None
            with self._lock:
                if self._held:
                    timeout = max(0.0, self._held[0][0] - time.monotonic())
                if self._pending_swap is not None:  # no next event within 1 s: it goes alone
                    timeout = min(timeout if timeout is not None else 1.0, 1.0)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
                with self._lock:
                    swap, self._pending_swap = self._pending_swap, None
                if swap is not None:
                    self._send(swap)
            self._release_due()
            if item is None:
                continue
            event, generation = item
            if generation != self.generation:
                continue
            self._route(event)

    def _release_due(self) -> None:
        due: list[dict] = []
        with self._lock:
            while self._held and self._held[0][0] <= time.monotonic():
                due.append(heapq.heappop(self._held)[2])
        for event in due:
            self._send(event)

    def _route(self, event: dict) -> None:
        with self._lock:
            roll = {name: self.rng.random() < self.faults.get(name, 0) for name in FAULTS}
            swap, self._pending_swap = self._pending_swap, None
        if roll["drop"]:
            with self._lock:
                self.counts["dropped"] += 1
        elif roll["delay"]:
            with self._lock:
                self.counts["delayed"] += 1
                heapq.heappush(self._held, (time.monotonic() + self.delay_seconds, next(self._seq), event))
        elif roll["out_of_order"] and swap is None:
            with self._lock:
                self.counts["reordered"] += 1
                self._pending_swap = event  # goes after the next event
        else:
            self._send(event)
            if roll["duplicate"]:
                with self._lock:
                    self.counts["duplicated"] += 1
                self._send(event)
        if swap is not None:
            self._send(swap)

    def _send(self, event: dict) -> None:
        with self._lock:
            url, secret = self.url, self.secret
        if url is None or secret is None:
            return
        body = json.dumps(event, separators=(",", ":")).encode()
        delay = 0.2
        attempts = self.retries
        for attempt in range(1, attempts + 1):
            with self._lock:
                self.counts["sent"] += 1
                if attempt > 1:
                    self.counts["retried"] += 1
            try:  # signed per attempt: a retry carries a fresh timestamp, as real senders do
                req = urllib.request.Request(url, data=body, method="POST", headers=signed_headers(secret, body))
                with urllib.request.urlopen(req, timeout=10) as resp:
                    if 200 <= resp.status < 300:
                        with self._lock:
                            self.counts["delivered"] += 1
                        return
            except (urllib.error.URLError, OSError, ValueError):
                pass
            if attempt < attempts:
                time.sleep(delay)
                delay *= 2
        with self._lock:
            self.counts["failed"] += 1
