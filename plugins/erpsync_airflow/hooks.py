"""Hooks that turn Airflow Connections into erpsync adapters and the state store.

Written in the style of the apache http provider: each hook names its connection attribute, its
default connection and its type, and reads host, login, password and extra only inside
``get_conn()`` (at run time, never at DAG parse time). The adapters themselves live in the core
(``erpsync.connectors.registry``); these hooks only translate a Connection into arguments.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from erpsync.connectors.base import ErpAdapter, StorefrontAdapter
    from erpsync.reliability.budget import Limits
    from erpsync.state import StateStore


class MissingConnectionError(LookupError):
    """A required Airflow Connection is not defined. The message is one line with the fix."""


#: The sandbox's connections (public test credentials, see README), quoted in the missing-connection line.
CONNECTION_EXAMPLES: dict[str, dict[str, Any]] = {
    "erp_default": {
        "conn_type": "erpsync_erp",
        "host": "127.0.0.1",
        "port": 8101,
        "login": "erpsync",
        "password": "erpsync-sandbox",
        # the sandbox ERP has several warehouses and refuses a sale that names none (as Tryton)
        "extra": {"adapter": "sandbox", "sale_warehouse": "MAIN"},
    },
    "storefront_default": {
        "conn_type": "erpsync_storefront",
        "host": "127.0.0.1",
        "port": 8102,
        "password": "sandbox-token",
        "extra": {"adapter": "sandbox"},
    },
}


def missing_connection_message(conn_id: str) -> str:
    """The one line that says a connection is missing and how to define it."""
    env = f"AIRFLOW_CONN_{conn_id.upper()}"
    example = CONNECTION_EXAMPLES.get(conn_id)
    how = f"set {env}"
    if example:
        how += f" (for the sandbox: export {env}='{json.dumps(example, separators=(',', ':'))}')"
    return (
        f"Airflow connection '{conn_id}' is not defined: {how} "
        f"(or add it with `airflow connections add {conn_id}` / Admin > Connections), then clear the task."
    )


def base_url(conn: Connection, default_scheme: str = "http") -> str:
    """``scheme://host[:port]`` from a Connection; a full URL in ``host`` wins."""
    host = (conn.host or "").strip()
    if not host:
        return ""
    if "://" in host:
        url = host.rstrip("/")
    else:
        scheme = conn.extra_dejson.get("scheme") or conn.schema or default_scheme
        url = f"{scheme}://{host}"
    if conn.port and url.count(":") < 2:
        url = f"{url}:{conn.port}"
    return url


class _ErpsyncHook(BaseHook):
    """Shared part: look the connection up and turn 'not defined' into a one-line error."""

    conn_name_attr = ""
    default_conn_name = ""

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        setattr(self, self.conn_name_attr, conn_id or self.default_conn_name)

    @property
    def conn_id(self) -> str:
        return getattr(self, self.conn_name_attr)

    def _connection(self) -> Connection:
        try:
            return self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            raise MissingConnectionError(missing_connection_message(self.conn_id)) from None

    def get_limits(self) -> Limits:
        """The rate budget of the system in the Connection's extra (``rps``, ``concurrency``; see
        ``erpsync.reliability.budget``), read without building the adapter (no credentials needed)."""
        from erpsync.reliability.budget import Limits

        return Limits.from_extra(self._connection().extra_dejson, conn_id=self.conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's Test button: build the adapter and ping it."""
        try:
            self.get_conn().ping()
        except Exception as exc:  # the UI shows the message
            return False, str(exc)
        return True, f"{self.conn_id}: reachable and credentials accepted"


class ErpHook(_ErpsyncHook):
    """Connection -> :class:`erpsync.connectors.base.ErpAdapter`.

    host/port (or a full URL in host), login, password; extra ``{"adapter": "sandbox",
    "timeout": 10, "page_size": 100}``, rate budget ``{"rps": 40, "concurrency": 4}``.
    """

    conn_name_attr = "erp_conn_id"
    default_conn_name = "erp_default"
    conn_type = "erpsync_erp"
    hook_name = "erpsync ERP"

    def __init__(self, erp_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(erp_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"host": "Host or base URL"},
            "placeholders": {"extra": json.dumps({"adapter": "sandbox", "timeout": 10, "page_size": 100, "rps": 40,
                                                  "concurrency": 4})},
        }

    def get_conn(self) -> ErpAdapter:
        from erpsync.connectors.registry import build_erp

        conn = self._connection()
        extra = {**conn.extra_dejson, "conn_id": self.conn_id}  # names it in ConfigError lines
        return build_erp(
            adapter=extra.get("adapter", "sandbox"),
            base_url=base_url(conn),
            login=conn.login,
            password=conn.password,
            extra=extra,
        )


class StorefrontHook(_ErpsyncHook):
    """Connection -> :class:`erpsync.connectors.base.StorefrontAdapter`.

    host/port (or a full URL in host), password = API token; extra ``{"adapter": "sandbox"}``, rate
    budget ``{"rps": 40, "concurrency": 4}``.
    """

    conn_name_attr = "storefront_conn_id"
    default_conn_name = "storefront_default"
    conn_type = "erpsync_storefront"
    hook_name = "erpsync storefront"

    def __init__(self, storefront_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(storefront_conn_id, **kwargs)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"host": "Host or base URL", "password": "API token"},
            "placeholders": {"extra": json.dumps({"adapter": "sandbox", "rps": 40, "concurrency": 4})},
        }

    def get_conn(self) -> StorefrontAdapter:
        from erpsync.connectors.registry import build_storefront

        conn = self._connection()
        extra = {**conn.extra_dejson, "conn_id": self.conn_id}  # names it in ConfigError lines
        return build_storefront(
            adapter=extra.get("adapter", "sandbox"),
            base_url=base_url(conn),
            token=conn.password,
            extra=extra,
        )


#: One state store per process (the contract in docs/internals.md), keyed by URL.
_STORES: dict[str, StateStore] = {}


class StateStoreHook(_ErpsyncHook):
    """Optional Connection -> :class:`erpsync.state.StateStore`.

    Without the connection the store comes from ``erpsync.config.state_url()``
    (``ERPSYNC_STATE_URL``, else SQLite under ``ERPSYNC_HOME``). A postgres connection becomes a
    ``postgresql+psycopg://`` URL; any other connection gives its URL in host or ``extra.url``.
    """

    conn_name_attr = "state_conn_id"
    default_conn_name = "erpsync_state"
    conn_type = "erpsync_state"
    hook_name = "erpsync state store"

    def __init__(
        self, state_conn_id: str = default_conn_name, *, migrate: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(state_conn_id, **kwargs)
        self.migrate = migrate

    def get_url(self) -> str | None:
        """The SQLAlchemy URL of the connection, or None when the connection is not defined."""
        try:
            conn = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            return None
        return sqlalchemy_url(conn)

    def get_conn(self) -> StateStore:
        from erpsync.config import state_url
        from erpsync.state import StateStore

        url = self.get_url() or state_url()
        store = _STORES.get(url)
        if store is None:
            from airflow.configuration import conf

            from erpsync.config import refuse_sqlite_across_hosts

            # the executor may be set in airflow.cfg, which the core does not read
            refuse_sqlite_across_hosts(url, conf.get("core", "executor", fallback=""))
            store = StateStore.from_url(url)
            if self.migrate:
                store.migrate()
            _STORES[url] = store
        return store

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.get_conn().last_runs("customers_sync", limit=1)
        except Exception as exc:
            return False, str(exc)
        return True, f"{self.conn_id}: state store reachable"


def sqlalchemy_url(conn: Connection) -> str:
    """A SQLAlchemy URL from a Connection (postgres -> ``postgresql+psycopg://``)."""
    from erpsync.config import normalise_db_url

    explicit = conn.extra_dejson.get("url")
    if explicit:
        return normalise_db_url(explicit)
    host = conn.host or ""
    if "://" in host:
        return normalise_db_url(host)
    conn_type = (conn.conn_type or "").lower()
    if conn_type in {"postgres", "postgresql"}:
        auth = ""
        if conn.login:
            auth = quote(conn.login, safe="")
            if conn.password:
                auth += ":" + quote(conn.password, safe="")
            auth += "@"
        port = f":{conn.port}" if conn.port else ""
        return f"postgresql+psycopg://{auth}{host}{port}/{conn.schema or ''}"
    if conn_type == "sqlite":
        return f"sqlite:///{host}"
    raise MissingConnectionError(
        f"Airflow connection '{conn.conn_id}' (type {conn.conn_type!r}) gives no state store URL: "
        'use a postgres connection, or put a SQLAlchemy URL in its host or in extra {"url": ...}'
    )
