"""Settings read from the environment, so the core runs the same under Airflow, the CLI and tests.

Every function reads the environment when called (not at import), so tests and task processes can
change a variable and see it at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from erpsync.errors import ConfigError

DEFAULT_AUDIT_RETENTION_DAYS = 90

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
