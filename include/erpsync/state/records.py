"""Frozen records the state store returns: values, not live rows, so callers cannot mutate state by accident."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any, Self

from sqlalchemy import RowMapping


class _Record:
    """Builds a record from a row mapping, ignoring columns the record does not expose."""

    __slots__ = ()

    @classmethod
    def from_row(cls, row: RowMapping, **extra: Any) -> Self:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in row.items() if k in names}
        values.update(extra)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Xref(_Record):
    """External id of a record in one system <-> our internal id, with when it was last synced."""

    id: int
    system: str
    entity: str
    external_id: str
    internal_id: str
    last_synced_at: dt.datetime
    content_hash: str | None


@dataclass(frozen=True, slots=True)
class LedgerEntry(_Record):
    """One write to an external system, keyed by its idempotency key."""

    id: int
    key: str
    flow: str
    target_system: str
    request_hash: str | None
    status: str
    result_ref: str | None
    response: Any
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    #: the writer that may send this write now, and until when (None: nobody is writing it)
    claimed_by: str | None = None
    lease_until: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter(_Record):
    """A record that could not be synced, with the payload and reason, kept until resolved."""

    id: int
    flow: str
    entity: str
    external_id: str
    payload: Any
    reason: str
    error_kind: str
    attempts: int
    status: str
    correlation_id: str | None
    first_seen: dt.datetime
    last_seen: dt.datetime


@dataclass(frozen=True, slots=True)
class AuditEntry(_Record):
    """One transfer to or from an external system; request and response are already redacted."""

    id: int
    flow: str
    system: str
    operation: str
    entity: str
    external_id: str | None
    request: Any
    response: Any
    duration_ms: int | None
    result: str
    run_id: str | None
    correlation_id: str | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class Approval(_Record):
    """A change held back for a person to approve (e.g. a large price drop)."""

    id: int
    flow: str
    entity: str
    external_id: str
    kind: str
    proposed: Any
    current: Any
    reason: str
    status: str
    decided_by: str | None
    decided_at: dt.datetime | None
    note: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class DriftItem(_Record):
    """One difference found by a reconciliation run; `detail` is the item as the flow reported it."""

    id: int
    entity: str | None
    external_id: str | None
    kind: str | None
    detail: Any


@dataclass(frozen=True, slots=True)
class DriftReport(_Record):
    """The result of one reconciliation run."""

    id: int
    flow: str
    run_id: str
    summary: Any
    item_count: int
    created_at: dt.datetime
    items: tuple[DriftItem, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class RunMetric(_Record):
    """Counts of one flow run, for dashboards and alerting on trends."""

    id: int
    flow: str
    run_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    done: int
    failed: int
    quarantined: int
    skipped: int
    extra: Any
