"""Tables of the state store (SQLAlchemy Core) and the two column types that make both dialects agree.

The tables are created by the Alembic migrations in `migrations/`, never by `metadata.create_all`;
a test checks that this module and the migrations describe the same schema.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

UTC = dt.UTC


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes in and out, on every dialect.

    PostgreSQL keeps the instant (timestamptz) but answers in the session time zone; SQLite
    keeps no zone at all. Values are stored as naive UTC on SQLite (so text comparison orders
    them) and always come back as aware UTC. Naive input is refused: guessing its zone would
    silently shift times.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def to_jsonable(value: Any, *, lenient: bool = False) -> Any:
    """Plain JSON values: Decimals become strings (money must not turn into floats), times ISO 8601.

    Unknown types raise, so state never holds a lossy value; `lenient=True` (the audit log,
    which must never fail a sync) stores their `repr` instead.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, lenient=lenient) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, lenient=lenient) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, lenient=lenient)
    if hasattr(value, "to_dict"):
        return to_jsonable(value.to_dict(), lenient=lenient)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name), lenient=lenient) for f in dataclasses.fields(value)
        }
    if lenient:
        return repr(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


class JSONValue(sa.types.TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) that accepts Decimals, datetimes and dataclass-like `to_dict()` values."""

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(sa.JSON(none_as_null=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else to_jsonable(value)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

LEDGER_STATUSES = ("pending", "done", "failed")
DEAD_LETTER_STATUSES = ("open", "replayed", "resolved", "ignored")
APPROVAL_STATUSES = ("pending", "approved", "rejected", "published")


def _status_check(values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"status IN ({allowed})", name="status")


xref = sa.Table(
    "xref",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("internal_id", sa.String(255), nullable=False),
    sa.Column("last_synced_at", UTCDateTime, nullable=False),
    sa.Column("content_hash", sa.String(128)),
    sa.UniqueConstraint("system", "entity", "external_id"),
    sa.Index(None, "system", "entity", "internal_id"),
    # migration 0011: both ids name a real record (never "", "None", "null": store.check_ref)
    sa.CheckConstraint(
        "lower(trim(internal_id)) NOT IN ('', 'none', 'null', 'nil', 'undefined', '?') AND "
        "lower(trim(external_id)) NOT IN ('', 'none', 'null', 'nil', 'undefined', '?')",
        name="ck_xref_real_ids"),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("flow", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

idempotency_ledger = sa.Table(
    "idempotency_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("target_system", sa.String(64), nullable=False),
    sa.Column("request_hash", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result_ref", sa.String(255)),
    sa.Column("response", JSONValue),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # who may send the key's write now, and until when (``LedgerRepository.claim``); NULL: nobody
    sa.Column("claimed_by", sa.String(255)),
    sa.Column("lease_until", UTCDateTime),
    sa.UniqueConstraint("key"),
    _status_check(LEDGER_STATUSES),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("payload", JSONValue),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("error_kind", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("correlation_id", sa.String(128)),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    _status_check(DEAD_LETTER_STATUSES),
)
# At most one open dead letter per record: re-adding bumps `attempts` on it (ON CONFLICT on this index).
sa.Index(
    "uq_dead_letters_open",
    dead_letters.c.flow,
    dead_letters.c.entity,
    dead_letters.c.external_id,
    unique=True,
    postgresql_where=sa.text("status = 'open'"),
    sqlite_where=sa.text("status = 'open'"),
)
sa.Index(None, dead_letters.c.status, dead_letters.c.flow, dead_letters.c.last_seen)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(255)),
    sa.Column("request", JSONValue),
    sa.Column("response", JSONValue),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("result", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(255)),
    sa.Column("correlation_id", sa.String(128)),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "at"),
    sa.Index(None, "flow", "entity", "external_id"),
    sa.Index(None, "correlation_id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("proposed", JSONValue),
    sa.Column("current", JSONValue),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("note", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    _status_check(APPROVAL_STATUSES),
)
# One pending approval per change: a flow that meets the same change every run updates it.
sa.Index(
    "uq_approvals_pending",
    approvals.c.flow,
    approvals.c.entity,
    approvals.c.external_id,
    approvals.c.kind,
    unique=True,
    postgresql_where=sa.text("status = 'pending'"),
    sqlite_where=sa.text("status = 'pending'"),
)
sa.Index(None, approvals.c.status, approvals.c.flow)

drift_reports = sa.Table(
    "drift_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("summary", JSONValue),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("flow", "run_id"),
)

drift_items = sa.Table(
    "drift_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("report_id", sa.Integer, sa.ForeignKey("drift_reports.id", ondelete="CASCADE"), nullable=False),
    sa.Column("entity", sa.String(64)),
    sa.Column("external_id", sa.String(255)),
    sa.Column("kind", sa.String(64)),
    sa.Column("detail", JSONValue),
    sa.Index(None, "report_id", "id"),  # a report's items a page at a time in id order (0017)
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(255), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("extra", JSONValue),
    sa.UniqueConstraint("flow", "run_id"),
    sa.Index(None, "flow", "started_at"),
)

# -- reliability (issue 7): circuit breakers shared by all workers, their history, the outbox ------

BREAKER_STATES = ("closed", "open", "half_open")
OUTBOX_STATUSES = ("queued", "claimed", "done")

# One row per external system; every transition is a guarded UPDATE (compare-and-set on `state`),
# so concurrent workers agree on who opened or recovered the circuit.
circuit_breakers = sa.Table(
    "circuit_breakers",
    metadata,
    sa.Column("system", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("opened_at", UTCDateTime),
    sa.Column("probe_owner", sa.String(128)),
    sa.Column("probe_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("state IN ('closed', 'open', 'half_open')", name="state"),
)

# What happened to each breaker (opened, half_open, reopened, recovered); one row per transition.
breaker_events = sa.Table(
    "breaker_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "system", "at"),
)

# Source records kept while their target system is unavailable; drained oldest first.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(128), nullable=False),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("dedupe_key", sa.String(255), nullable=False),
    sa.Column("payload", JSONValue),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("claimed_by", sa.String(255)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("flow", "dedupe_key"),
    sa.Index(None, "flow", "status", "id"),
    sa.Index(None, "status", "flow"),  # the dashboard's depth per flow (migration 0015_console_indexes)
    _status_check(OUTBOX_STATUSES),
)

# -- inventory (issue 4): compact tables for 1M SKU-locations, written in set-based batches --------

#: what inventory_sync last pushed to the store, per (sku, store location)
inventory_pushed = sa.Table(
    "inventory_pushed",
    metadata,
    sa.Column("sku", sa.String(255), primary_key=True),
    sa.Column("location", sa.String(64), primary_key=True),
    sa.Column("available", sa.Integer, nullable=False),
    sa.Column("backorderable", sa.Boolean, nullable=False),
    sa.Column("restock_date", sa.String(10)),
    # newest ERP modified_at (wire format, so text order is time order) the value was computed from
    sa.Column("source_modified", sa.String(32)),
    sa.Column("pushed_at", UTCDateTime, nullable=False),
    sa.Index(None, "pushed_at"),  # the dashboard's newest pushes (migration 0015_console_indexes)
)

#: what inventory needs of each ERP item: its SKU, whether it is active, its kit components
inventory_items = sa.Table(
    "inventory_items",
    metadata,
    sa.Column("item_code", sa.String(255), primary_key=True),
    sa.Column("sku", sa.String(255), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("kit", JSONValue),  # {component sku: qty per kit}, null for a plain item
    sa.Column("modified", sa.String(32)),
    sa.Index(None, "sku"),
)

#: the SKUs the store carries (stock is pushed only for these)
inventory_store_skus = sa.Table(
    "inventory_store_skus",
    metadata,
    sa.Column("sku", sa.String(255), primary_key=True),
    sa.Column("product_id", sa.String(255), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

#: units sold per store order line and channel (migration 0010_channel_sales): the observed demand
#: of channel reallocation (``channel_demand: "observed"``); one row per (order, sku), rewritten
#: when the order changes (0 units once cancelled)
channel_sales = sa.Table(
    "channel_sales",
    metadata,
    sa.Column("order_id", sa.String(255), primary_key=True),
    sa.Column("sku", sa.String(255), primary_key=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("units", sa.Integer, nullable=False),
    sa.Column("sold_at", UTCDateTime, nullable=False),
    sa.Index(None, "sold_at"),
)

# -- pricing (issue 3; migration 0003_pricing) ------------------------------------------------

# One row per price a storefront shows (list handle | sku | min_qty): the accepted ERP rules
# behind it (rules that passed the price guard or were approved), what was last published, and
# when a rule next starts or ends, so the hourly run republishes only what changed.
price_book = sa.Table(
    "price_book",
    metadata,
    sa.Column("key", sa.String(400), primary_key=True),
    sa.Column("handle", sa.String(200), nullable=False),
    sa.Column("sku", sa.String(128), nullable=False),
    sa.Column("min_qty", sa.Integer, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("rules", JSONValue, nullable=False),
    sa.Column("published", JSONValue),
    sa.Column("published_at", UTCDateTime),
    sa.Column("next_change_at", UTCDateTime),
    sa.Column("dirty", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "dirty"),
    sa.Index(None, "next_change_at"),
    sa.Index(None, "sku"),
)

# ERP items as pricing needs them: item code -> SKU (the cross reference of price rows) and cost
# (the price guard's floor), refreshed incrementally from the ERP.
pricing_items = sa.Table(
    "pricing_items",
    metadata,
    sa.Column("item_code", sa.String(128), primary_key=True),
    sa.Column("sku", sa.String(128), nullable=False),
    sa.Column("cost", sa.String(40)),
    sa.Column("currency", sa.String(3)),
    sa.Column("active", sa.Boolean, nullable=False),
    # False: the storefront refused prices for this SKU (no such product); rechecked against the
    # catalog's cross reference each run, so the price goes out once catalog_sync created it
    sa.Column("in_store", sa.Boolean),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "sku"),
)

# Newest source version (``updated_at``) each flow has handled per record: an older version that
# arrives later (an out-of-order event, a stale redelivery) is skipped instead of undoing it.
record_versions = sa.Table(
    "record_versions",
    metadata,
    sa.Column("flow", sa.String(128), primary_key=True),
    sa.Column("external_id", sa.String(255), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# -- historical migration (issue 8; migration 0008_migration) -----------------------------------

MIGRATION_STATUSES = ("pending", "running", "stopped", "failed", "succeeded")

# One row per historical migration job: what it migrates (entity, direction, [date_from, date_to),
# batch size, dry run), where it stands (the checkpoint of the last committed batch and its
# counts), who runs it (a lease, so two processes never run one job) and, at the end, its report.
migration_jobs = sa.Table(
    "migration_jobs",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("direction", sa.String(32), nullable=False),
    sa.Column("date_from", UTCDateTime, nullable=False),
    sa.Column("date_to", UTCDateTime, nullable=False),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("params", JSONValue),
    sa.Column("status", sa.String(16), nullable=False),
    # {"token": next page to read (None: from the start), "exhausted": bool}
    sa.Column("checkpoint", JSONValue),
    sa.Column("total", sa.Integer),
    sa.Column("batches", sa.Integer, nullable=False),
    sa.Column("processed", sa.Integer, nullable=False),
    sa.Column("written", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("counts", JSONValue),  # reasons -> records (skipped, dead-lettered, would write ...)
    sa.Column("owner", sa.String(255)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("report", JSONValue),
    sa.Column("error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Index(None, "status", "updated_at"),
    _status_check(MIGRATION_STATUSES),
)

# -- rate budget (issue 7; migration 0009_rate_budget) ------------------------------------------

# One row per external system: the shared request budget of every process that calls it (GCRA,
# the "virtual scheduling" token bucket: ``tat`` is the theoretical arrival time of the next
# request, in seconds since the epoch on the clock of the database server where it has one).
rate_budgets = sa.Table(
    "rate_budgets",
    metadata,
    sa.Column("system", sa.String(64), primary_key=True),
    sa.Column("tat", sa.Double, nullable=False),
    sa.Column("rps", sa.Double, nullable=False),  # the rate its last caller used (for people reading it)
    sa.Column("updated_at", UTCDateTime, nullable=False),
)


# -- webhook inbox (issue 21; migration 0013_inbox) ---------------------------------------------

INBOX_STATUSES = ("pending", "claimed", "done")

# One row per webhook delivery that passed its signature check: the event only names a record
# (the flow re-reads it from the API); (source, event_id) is unique, so a redelivery is stored once.
# pending -> claimed (the triggerer's InboxTrigger fired an Asset event for it) -> done (a run read it).
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False),
    sa.Column("occurred_at", UTCDateTime),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("claim", sa.String(64)),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("done_at", UTCDateTime),
    sa.Column("run_id", sa.String(255)),
    sa.UniqueConstraint("source", "event_id"),
    sa.Index(None, "entity", "status"),
    _status_check(INBOX_STATUSES),
)
