"""The state store's repositories: one small class per data area, all over one ``StateDB``.

``StateStore`` builds them and exposes each as an attribute (``store.xrefs``, ``store.cursors``,
``store.ledger``, ``store.dead_letters``, ``store.audit_log``, ``store.approvals``,
``store.drift_reports``, ``store.runs``); its older flat methods (``get_xref``, ``set_cursor``, ...)
delegate to them.
"""

from __future__ import annotations

from erpsync.state.repos.approvals import ApprovalRepository
from erpsync.state.repos.audit import AuditRepository
from erpsync.state.repos.cursors import CursorRepository, HighWater
from erpsync.state.repos.dead_letters import DeadLetterRepository
from erpsync.state.repos.drift import DriftReportRepository
from erpsync.state.repos.ledger import LedgerRepository
from erpsync.state.repos.runs import RunRepository
from erpsync.state.repos.xrefs import XrefRepository

__all__ = [
    "ApprovalRepository",
    "AuditRepository",
    "CursorRepository",
    "DeadLetterRepository",
    "DriftReportRepository",
    "HighWater",
    "LedgerRepository",
    "RunRepository",
    "XrefRepository",
]
