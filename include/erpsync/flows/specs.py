"""One declaration per flow (``FlowSpec``), like a Singer SDK stream declaration.

Everything erpsync states about a flow apart from its code lives here, once: which way it syncs,
the systems it touches, its entity, its schedule (cron) and the Assets it produces or consumes,
the Airflow pool of its tasks, its deadline, what the watchdog expects of it, its quality suite
and bad-share limit, how its dead letters are replayed, its historical-migration entity and how it
knows where to read from (its cursor kind). "Where is everything about returns_sync declared?":
``SPECS["returns_sync"]`` below.

The registries that used to be keyed by flow-name strings are views derived from ``SPECS``:
``erpsync_airflow.defaults.POOL_SYSTEMS`` / ``DEADLINES``, ``quality.settings.FLOW_MAX_BAD_SHARE``,
``watchdog.DEFAULT_CADENCES`` / ``DEFAULT_CURSOR_STALL``, ``flows.base.NOT_REPLAYED``,
``flows.replay.REPLAYERS`` and ``flows.migration.ENTITIES`` (the functions stay in their modules;
which flow has which is declared here). The DAG files read schedule, pool, deadline and tags from
their spec, and a test checks README's flow table against it.

Pure data: this module imports nothing of erpsync (every layer may read it) and never Airflow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

Direction = Literal["store_to_erp", "erp_to_store", "compare", "none"]
#: how a run knows where to read from:
#: ``window``: the run's data interval ``[start, end)`` (back to the stored cursor after a gap,
#: manual runs from the cursor; ``flows.base.read_window``); ``since``: the stored cursor minus a
#: lookback overlap (``flows.base.cursor_since``); ``day``: the day of its data interval;
#: ``none``: reads the whole current state or an open queue on every run (no cursor).
CursorKind = Literal["window", "since", "day", "none"]
#: ``records``: one dead letter at a time through ``flows.replay.REPLAYERS``; ``rerun``: the next
#: run recomputes from the source (``not_replayed`` says what to do); ``none``: never dead-letters
Replay = Literal["records", "rerun", "none"]

MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """What erpsync declares about one flow (= one DAG, named ``name``)."""

    name: str
    direction: Direction
    #: the external systems the flow reads or writes ("storefront", "erp")
    systems: tuple[str, ...]
    #: the canonical entity it syncs (the ``entity`` of its dead letters), None: none of its own
    entity: str | None
    #: cron expression (UTC) of its timetable; None: triggered on demand only
    schedule: str | None
    #: the system whose Airflow pool its tasks run in (``erpsync_<system>``); None: default_pool
    pool_system: str | None
    #: tags of its DAG besides ``erpsync``
    tags: tuple[str, ...] = ()
    #: URI of the Asset it updates after a run / that also starts it
    produces: str | None = None
    consumes: str | None = None
    #: how long after being queued a run must be done; None: sized from the schedule
    #: (``erpsync_airflow.defaults.deadline_interval``: twice the cadence, nightly by 06:00 UTC)
    deadline: dt.timedelta | None = None
    #: the watchdog checks it (overdue after twice its cadence, nothing compared)
    watched: bool = True
    #: the watchdog alerts when its running cursor stands still this long; None: not checked
    cursor_stall: dt.timedelta | None = None
    #: the quality suite its records pass (``quality.suites.suite``); None: no gate
    quality_suite: str | None = None
    #: share of a batch that may be bad before the run fails (``quality.settings.max_bad_share``)
    max_bad_share: float | None = None
    replay: Replay = "none"
    #: for ``replay="rerun"``: what to do instead of replaying one record (task log, ``replay``)
    not_replayed: str | None = None
    #: the entity ``historical_migration`` migrates through this flow's writer; None: not migrated
    migration_entity: str | None = None
    cursor: CursorKind = "none"
    #: a run's records split over this many mapped tasks (Celery workers take them in parallel;
    #: orders_sync only: ``flows.orders.Partition``, ``ERPSYNC_PARTITIONS_ORDERS_SYNC``); 1: one task
    partitions: int = 1

    @property
    def cadence(self) -> dt.timedelta | None:
        """The gap between two scheduled runs (None: on demand)."""
        return cron_cadence(self.schedule) if self.schedule else None

    @property
    def cadence_text(self) -> str:
        """The cadence as README's flow table says it: ``every 15 min``, ``hourly``, ``nightly 02:30``."""
        return cron_text(self.schedule)


def _field(value: str, low: int, high: int) -> int | None:
    return int(value) if value.isdigit() and low <= int(value) <= high else None


def cron_cadence(expression: str) -> dt.timedelta:
    """The gap between two runs of the simple crons erpsync uses (``*``, ``*/N``, hourly at a
    minute, daily at a time); any other expression is refused with what is understood."""
    fields = expression.split()
    if len(fields) == 5 and fields[2:] == ["*", "*", "*"]:
        minute, hour = fields[0], fields[1]
        if hour == "*":
            if minute == "*":
                return MINUTE
            if minute.startswith("*/") and _field(minute[2:], 1, 59):
                return int(minute[2:]) * MINUTE
            if _field(minute, 0, 59) is not None:
                return dt.timedelta(hours=1)
        elif _field(hour, 0, 23) is not None and _field(minute, 0, 59) is not None:
            return dt.timedelta(days=1)
    raise ValueError(f"cron {expression!r}: a flow's schedule is '*', '*/N', 'M *' or 'M H' (then '* * *')")


def cron_text(expression: str | None) -> str:
    if expression is None:
        return "on demand"
    cadence = cron_cadence(expression)
    minute, hour = expression.split()[:2]
    if cadence == MINUTE:
        return "every minute"
    if cadence < dt.timedelta(hours=1):
        return f"every {int(cadence / MINUTE)} min"
    if cadence == dt.timedelta(hours=1):
        return "hourly"
    return f"nightly {int(hour):02d}:{int(minute):02d}"


_INVENTORY = ("{flow} recomputes store levels from the ERP: fix the cause (the ERP record, the location map, "
              "the store's SKU); a level is pushed again when its ERP stock next changes, and "
              'inventory_drift_check with Params {{"heal": true}} pushes the ERP value now wherever the store differs')

_ALL: tuple[FlowSpec, ...] = (
    FlowSpec("customers_sync", "store_to_erp", ("storefront", "erp"), "customer", "*/15 * * * *", "erp",
             tags=("customers",), produces="erpsync://customers", quality_suite="customer", max_bad_share=0.10,
             replay="records", migration_entity="customers", cursor="since"),
    # near real time; the cron is the sweep beside the inbox events (ERPSYNC_SWEEP_CRON_ORDERS_SYNC)
    FlowSpec("orders_sync", "store_to_erp", ("storefront", "erp"), "order", "* * * * *", "erp",
             tags=("orders",), consumes="erpsync://inbox/order", deadline=2 * MINUTE,
             cursor_stall=dt.timedelta(hours=1), quality_suite="order", max_bad_share=0.10,
             replay="records", migration_entity="orders", cursor="window"),
    # the cron is the sweep beside the ERP's shipment.created events (inbox Asset, issue 21)
    FlowSpec("shipments_sync", "erp_to_store", ("erp", "storefront"), "shipment", "*/5 * * * *", "storefront",
             tags=("shipments",), consumes="erpsync://inbox/shipment", quality_suite="shipment", max_bad_share=0.10,
             replay="records", migration_entity="shipments", cursor="window"),
    # RMAs from the store; status, credit memo and refund back (both directions gated); the cron is
    # the sweep beside the store's return/refund events (inbox Asset, issue 21)
    FlowSpec("returns_sync", "store_to_erp", ("storefront", "erp"), "return", "*/10 * * * *", "erp",
             tags=("returns",), consumes="erpsync://inbox/return", quality_suite="return", max_bad_share=0.10,
             replay="records", migration_entity="returns", cursor="window"),
    # reads both; the ERP's sales orders are the heavy read
    FlowSpec("orders_reconciliation", "compare", ("storefront", "erp"), "order", "30 2 * * *", "erp",
             tags=("orders",), cursor="day"),
    # the cron is the sweep beside the store's customer.redact_requested events (inbox Asset, issue 21)
    FlowSpec("customer_erasure", "store_to_erp", ("storefront", "erp"), "erasure_request", "15 * * * *", "erp",
             tags=("customers",), consumes="erpsync://inbox/customer_redact", replay="records", cursor="none"),
    # a nightly catalog with a tenth of its products broken is an ERP-side problem, not a few typos
    FlowSpec("catalog_sync", "erp_to_store", ("erp", "storefront"), "product", "30 2 * * *", "storefront",
             tags=("catalog",), produces="erpsync://catalog", quality_suite="product", max_bad_share=0.10,
             replay="records", migration_entity="products", cursor="since"),
    # prices: a wrong price costs more than a late one; a twentieth bad stops the hourly run; the
    # cron is the sweep beside the ERP's price.changed events (inbox Asset, issue 21)
    FlowSpec("pricing_sync", "erp_to_store", ("erp", "storefront"), "price", "5 * * * *", "storefront",
             tags=("pricing",), consumes="erpsync://inbox/price", quality_suite="price", max_bad_share=0.05, replay="rerun",
             not_replayed="pricing_sync rebuilds its price book from the ERP: fix the cause (the ERP price, the "
                          "rounding or the SKU named in the reason), then trigger pricing_sync with Params "
                          '{"full_pass": true} to read every ERP price again (rows of a rejected batch stay due '
                          "and are sent again by the next run anyway)",
             cursor="since"),
    # stock: the changed records of a cycle; a tenth broken is an ERP-side problem
    FlowSpec("inventory_sync", "erp_to_store", ("erp", "storefront"), "inventory_level", "*/5 * * * *",
             "storefront", tags=("inventory",), consumes="erpsync://catalog", deadline=4 * MINUTE,
             quality_suite="stock", max_bad_share=0.10, replay="rerun",
             not_replayed=_INVENTORY.format(flow="inventory_sync"), cursor="since"),
    # hot SKUs: the ERP's stock.changed events (inbox Asset, issue 21) OR every minute (polling inside)
    FlowSpec("inventory_fast_lane", "erp_to_store", ("erp", "storefront"), "inventory_level", "* * * * *",
             "storefront", tags=("inventory",), consumes="erpsync://inbox/stock", deadline=4 * MINUTE,
             quality_suite="stock", max_bad_share=0.10, replay="rerun", not_replayed=_INVENTORY.format(flow="inventory_fast_lane"), cursor="none"),
    # reads every store level
    FlowSpec("inventory_drift_check", "compare", ("erp", "storefront"), "inventory_level", "15 3 * * *",
             "storefront", tags=("inventory", "reconciliation"), quality_suite="stock", max_bad_share=0.10,
             replay="rerun",
             not_replayed="inventory_drift_check reads every ERP and store level again on each run: fix the record "
                          "named in the reason and trigger inventory_drift_check again",
             cursor="none"),
    # the state store only
    FlowSpec("sync_watchdog", "none", (), None, "*/15 * * * *", None, tags=("watchdog",), watched=False),
    # most dead letters are orders and customers for the ERP
    FlowSpec("dead_letter_replay", "none", ("storefront", "erp"), None, None, "erp", tags=("dead-letters",),
             watched=False),
    # takes the systems' whole budget; mostly store -> ERP
    FlowSpec("historical_migration", "none", ("storefront", "erp"), None, None, "erp", tags=("migration",),
             watched=False),
)

#: flow name -> its spec (the order of README's flow table)
SPECS: dict[str, FlowSpec] = {spec.name: spec for spec in _ALL}


def spec(name: str) -> FlowSpec:
    """The spec of flow ``name``; a KeyError naming this module for one not declared."""
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"{name}: declare the flow in erpsync.flows.specs.SPECS (known: {', '.join(SPECS)})") from None


def _check() -> None:
    for s in _ALL:
        if s.schedule:
            cron_cadence(s.schedule)
        if (s.replay == "rerun") != bool(s.not_replayed):
            raise ValueError(f"{s.name}: not_replayed is said for replay='rerun' flows, and only for them")
        if s.partitions != 1 and s.name != "orders_sync":
            raise ValueError(f"{s.name}: only orders_sync splits its runs into partitions")
        if s.pool_system not in (None, *s.systems):
            raise ValueError(f"{s.name}: its pool's system {s.pool_system} is not one it calls")


_check()
