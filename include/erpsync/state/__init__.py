"""State store: cross references, cursors, idempotency ledger, dead letters, audit, approvals, drift reports and run metrics."""

from __future__ import annotations

from erpsync.state.records import (
    Approval,
    AuditEntry,
    DeadLetter,
    DriftItem,
    DriftReport,
    LedgerEntry,
    RunMetric,
    Xref,
)
from erpsync.state.redact import Redactor, redact
from erpsync.state.store import StateStore, create_state_engine

__all__ = [
    "Approval",
    "AuditEntry",
    "DeadLetter",
    "DriftItem",
    "DriftReport",
    "LedgerEntry",
    "Redactor",
    "RunMetric",
    "StateStore",
    "Xref",
    "create_state_engine",
    "redact",
]
