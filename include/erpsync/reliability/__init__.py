"""Reliability shared by every flow: circuit breakers in the state store, the outbox, the rate
budget, breaker e-mails. Plain Python, no Airflow (the Airflow side sizes pools from
``budget.pool_specs`` and hands in a notifier)."""

from __future__ import annotations

from erpsync.reliability.breaker import (
    BreakerConfig,
    BreakerGuard,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
)
from erpsync.reliability.notify import LogNotifier, Notifier, RecordingNotifier, render_breaker_email
from erpsync.reliability.outbox import Outbox, OutboxItem, outbox_counts, purge_outbox
from erpsync.reliability.process import breaker_for, protect, sync_records

__all__ = [
    "BreakerConfig",
    "BreakerGuard",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "LogNotifier",
    "Notifier",
    "Outbox",
    "OutboxItem",
    "RecordingNotifier",
    "breaker_for",
    "outbox_counts",
    "protect",
    "purge_outbox",
    "render_breaker_email",
    "sync_records",
]
