"""Retention: what the state store may keep, and for how long.

``purge(store)`` applies one retention (``ERPSYNC_AUDIT_RETENTION_DAYS``, default 90) to the
history that carries payloads, hence personal data: audit rows, closed dead letters (resolved,
replayed, ignored: open ones are kept whatever their age) and drained outbox rows; and the
observed channel sales. The
``sync_watchdog`` DAG runs it every 15 minutes (a no-op most of the time); ``erpsync`` users
without Airflow can call it from cron. The ledger and the cross-references are kept: they are what
prevents a duplicate and hold ids, not payloads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from erpsync import config as settings
from erpsync.reliability.outbox import purge_outbox
from erpsync.state import StateStore


@dataclass(frozen=True)
class Purged:
    retention_days: int
    audit_rows: int
    dead_letters: int
    outbox_rows: int
    channel_sales_rows: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def purge(store: StateStore, retention_days: int | None = None) -> Purged:
    days = settings.audit_retention_days() if retention_days is None else retention_days
    return Purged(
        retention_days=days,
        audit_rows=store.purge_audit(days),
        dead_letters=store.purge_closed_dead_letters(days),
        outbox_rows=purge_outbox(store, days),
        channel_sales_rows=_purge_sales(store, days),
    )


def _purge_sales(store: StateStore, days: int) -> int:
    """Observed channel sales (order id, SKU, units) older than the retention: the demand window
    is a day; a longer history is no use to the allocation."""
    from erpsync.state.inventory import InventoryState

    return InventoryState(store).purge_sales(store.db.now() - dt.timedelta(days=days))
