"""Settings read from the environment, so the core runs the same under Airflow, the CLI and tests.

Every function reads the environment when called (not at import), so tests and task processes can
change a variable and see it at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from erpsync.errors import ConfigError

DEFAULT_AUDIT_RETENTION_DAYS = 90
#: a write's claim on its idempotency key (``flows.base.idempotent_write``): longer than a write's
#: worst case with the default adapter settings: up to 3 writes and 2 look-ups, each up to 5 HTTP
#: attempts of 13.05 s (connect 3.05 + read 10) with 4 waits of up to 66 s (Retry-After cap 60 s
#: plus jitter) between them: 5 x 330 s = 1650 s
DEFAULT_LEDGER_LEASE_SECONDS = 1800
#: how long a writer waits for another writer's claim on the same key before giving up for this run
DEFAULT_LEDGER_WAIT_SECONDS = 120

_PG_PREFIXES = ("postgres://", "postgresql://", "postgres+psycopg://")


def erpsync_home() -> Path:
    """Runtime home (`ERPSYNC_HOME`, default `<cwd>/var`): state DB, exports, logs."""
    raw = os.environ.get("ERPSYNC_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.cwd() / "var"


def normalise_db_url(url: str) -> str:
    """Turn `postgres://` / `postgresql://` into `postgresql+psycopg://` (psycopg 3 is the driver we ship)."""
    url = url.strip()
    for prefix in _PG_PREFIXES:
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def state_url() -> str:
    """SQLAlchemy URL of the state store: `ERPSYNC_STATE_URL`, else a SQLite file under the home.

    The home directory is created for the SQLite default, since SQLite will not create it.
    """
    raw = os.environ.get("ERPSYNC_STATE_URL", "").strip()
    if raw:
        return normalise_db_url(raw)
    home = erpsync_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home.resolve() / 'state.db'}"


#: Airflow executors that run every task on the scheduler's machine; any other executor (Celery,
#: Kubernetes, Edge, ...) may run tasks on several machines
SINGLE_HOST_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})


def worker_hosts() -> tuple[str, ...]:
    """`ERPSYNC_WORKER_HOSTS`: the machines that run erpsync tasks, comma separated (default none
    named: this one). Set it when tasks run on several machines under an executor erpsync does not
    recognise as such (see `multi_host_reason`)."""
    raw = os.environ.get("ERPSYNC_WORKER_HOSTS", "")
    return tuple(h.strip() for h in raw.split(",") if h.strip())


def multi_host_reason(executor: str | None = None) -> str | None:
    """Why erpsync tasks may run on more than one machine, or None when they all run on this one.

    `executor` is Airflow's ``[core] executor`` (None: `AIRFLOW__CORE__EXECUTOR`); it may list
    several executors (``LocalExecutor,CeleryExecutor``), each a name, a class path or
    ``alias:path``.
    """
    hosts = worker_hosts()
    if len(hosts) > 1:
        return f"ERPSYNC_WORKER_HOSTS names {len(hosts)} worker hosts ({', '.join(hosts)})"
    raw = executor if executor is not None else os.environ.get("AIRFLOW__CORE__EXECUTOR", "")
    for entry in raw.split(","):
        name = entry.strip().rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        if name and name not in SINGLE_HOST_EXECUTORS:
            return f"the Airflow executor is {name}, which runs tasks on several worker hosts"
    return None


def refuse_sqlite_across_hosts(url: str, executor: str | None = None) -> None:
    """Raise ConfigError when `url` is a SQLite state store and tasks may run on several machines.

    The state store holds what every worker must see at once: the ledger of written records
    (exactly once), the cursors, the shared rate budget and the circuit breaker. A SQLite file is
    on one machine (and its locking is unsafe on network file systems), so each host would keep
    its own and the guarantees would silently break; PostgreSQL is shared.
    """
    if not url.strip().lower().startswith("sqlite"):
        return
    reason = multi_host_reason(executor)
    if reason:
        raise ConfigError(
            f"the state store is SQLite ({url}), a file on one machine, but {reason}: every worker "
            "must share one state store (ledger, cursors, rate budget, breaker). Use PostgreSQL: "
            "ERPSYNC_STATE_URL=postgresql://user:password@host:5432/erpsync and the erpsync_state "
            "Connection (docs/deployment.md)"
        )


def audit_retention_days() -> int:
    """Days audit rows are kept (`ERPSYNC_AUDIT_RETENTION_DAYS`, default 90)."""
    raw = os.environ.get("ERPSYNC_AUDIT_RETENTION_DAYS", "").strip()
    if not raw:
        return DEFAULT_AUDIT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise ConfigError(
            f"ERPSYNC_AUDIT_RETENTION_DAYS={raw!r} is not a whole number of days; set e.g. 90"
        ) from None
    if days < 1:
        raise ConfigError(f"ERPSYNC_AUDIT_RETENTION_DAYS={days} must be at least 1; set e.g. 90")
    return days


def audit_redact_keys() -> frozenset[str]:
    """Extra payload keys to mask in the audit log (`ERPSYNC_AUDIT_REDACT_KEYS`, comma separated)."""
    raw = os.environ.get("ERPSYNC_AUDIT_REDACT_KEYS", "")
    return frozenset(k.strip() for k in raw.split(",") if k.strip())


def ledger_lease_seconds() -> int:
    """Seconds a writer holds its claim on an idempotency key (``ERPSYNC_LEDGER_LEASE_SECONDS``,
    default 1800). It must exceed a write's worst case (Connection ``timeout`` x ``max_attempts``
    with their retry waits, times the flow's ``write_attempts`` and look-ups): a writer still at it
    when its lease runs out can be joined by a second one. A crashed writer's key waits this long
    before another writer takes it over (looking the record up first)."""
    return _env_int("ERPSYNC_LEDGER_LEASE_SECONDS", DEFAULT_LEDGER_LEASE_SECONDS, 1)


def ledger_wait_seconds() -> int:
    """Seconds a writer waits for another writer's live claim on the same key to end
    (``ERPSYNC_LEDGER_WAIT_SECONDS``, default 120); then it raises a TransientError and the record
    is retried by the next run (0: do not wait)."""
    return _env_int("ERPSYNC_LEDGER_WAIT_SECONDS", DEFAULT_LEDGER_WAIT_SECONDS, 0)


def _env_int(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; set e.g. {default}") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}; set e.g. {default}")
    return value


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: use true or false")


def catalog_hold_settings() -> dict[str, object]:
    """Which catalog changes catalog_sync holds for approval (``erpsync.rules.catalog_holds``):
    `ERPSYNC_CATALOG_HOLDS` (on), `ERPSYNC_CATALOG_HOLD_RETIRE_PCT` (10: a run retiring more than
    this share of the published products, and at least `ERPSYNC_CATALOG_HOLD_RETIRE_MIN`, 5, of them), `ERPSYNC_CATALOG_HOLD_OPEN_ORDERS` (on: a product with
    open orders retired), `ERPSYNC_CATALOG_HOLD_OPEN_ORDER_DAYS` (14), `ERPSYNC_CATALOG_HOLD_BEST_SELLER_TOP`
    (50: the best sellers are the top SKUs by units sold) over `ERPSYNC_CATALOG_HOLD_DAYS` (30)."""
    from decimal import Decimal, InvalidOperation

    raw = os.environ.get("ERPSYNC_CATALOG_HOLD_RETIRE_PCT", "").strip()
    try:
        pct = Decimal(raw) if raw else Decimal(10)
    except InvalidOperation:
        raise ConfigError(f"ERPSYNC_CATALOG_HOLD_RETIRE_PCT={raw!r} is not a number; set e.g. 10") from None
    if not pct.is_finite() or not 0 <= pct <= 100:
        raise ConfigError(f"ERPSYNC_CATALOG_HOLD_RETIRE_PCT={raw} must be a percentage from 0 to 100; set e.g. 10")
    return {
        "enabled": _env_flag("ERPSYNC_CATALOG_HOLDS", True),
        "retire_share_pct": int(pct) if pct == pct.to_integral_value() else pct,
        "retire_min": _env_int("ERPSYNC_CATALOG_HOLD_RETIRE_MIN", 5, 1),
        "open_orders": _env_flag("ERPSYNC_CATALOG_HOLD_OPEN_ORDERS", True),
        "open_order_days": _env_int("ERPSYNC_CATALOG_HOLD_OPEN_ORDER_DAYS", 14, 1),
        "best_seller_top": _env_int("ERPSYNC_CATALOG_HOLD_BEST_SELLER_TOP", 50, 0),
        "days": _env_int("ERPSYNC_CATALOG_HOLD_DAYS", 30, 1),
    }


def console_url(airflow_base: str | None = None) -> str | None:
    """Where the erpsync console is, for links in alert e-mails: `ERPSYNC_CONSOLE_URL`, else
    ``<Airflow's [api] base_url>/erpsync`` (``airflow_base``, else `AIRFLOW__API__BASE_URL`), else None."""
    raw = os.environ.get("ERPSYNC_CONSOLE_URL", "").strip()
    if raw:
        if not raw.lower().startswith(("http://", "https://")):
            raise ConfigError(f"ERPSYNC_CONSOLE_URL={raw!r} is not an http(s) URL; set e.g. "
                              "https://airflow.example.com/erpsync")
        return raw.rstrip("/")
    base = (airflow_base if airflow_base is not None else os.environ.get("AIRFLOW__API__BASE_URL", "")).strip()
    return f"{base.rstrip('/')}/erpsync" if base else None
