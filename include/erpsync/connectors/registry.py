"""Build adapters by name from connection settings (``build_erp`` / ``build_storefront``).

The Airflow hooks read Connections and call these; scripts and tests call them directly. Every
configuration problem becomes one ``ConfigError`` line naming the connection and the fix.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from erpsync.connectors.base import ErpAdapter, StorefrontAdapter
from erpsync.connectors.http import RetryPolicy
from erpsync.errors import ConfigError


def _sandbox_erp(base_url: str, login: str, password: str, extra: Mapping[str, Any]) -> ErpAdapter:
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter

    return SandboxErpAdapter(base_url, login, password, **_common(extra, "erp_default"))


def _sandbox_storefront(base_url: str, token: str, extra: Mapping[str, Any]) -> StorefrontAdapter:
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter

    return SandboxStorefrontAdapter(base_url, token, **_common(extra, "storefront_default"))


def _tryton_erp(base_url: str, login: str, password: str, extra: Mapping[str, Any]) -> ErpAdapter:
    from erpsync.connectors.tryton import TrytonErpAdapter

    options: dict[str, Any] = {k: str(extra[k]) for k in ("database", "warehouse") if extra.get(k)}
    tax_map = extra.get("tax_map")
    if tax_map is not None:
        if not isinstance(tax_map, dict) or not all(isinstance(v, str) and v for v in tax_map.values()):
            conn = extra.get("conn_id", "erp_default")
            raise ConfigError(f"Connection {conn}: extra 'tax_map' must map store tax codes (or 'rate:10') "
                              f"to Tryton tax names, got {tax_map!r}")
        options["tax_map"] = {str(k): v for k, v in tax_map.items()}
    return TrytonErpAdapter(base_url, login, password, **options, **_common(extra, "erp_default"))


def _vendure_storefront(base_url: str, token: str, extra: Mapping[str, Any]) -> StorefrontAdapter:
    from erpsync.connectors.vendure import VendureStorefrontAdapter

    options: dict[str, Any] = {k: str(extra[k]) for k in ("username", "channel_token") if extra.get(k)}
    return VendureStorefrontAdapter(base_url, token, **options, **_common(extra, "storefront_default"))


ERP_ADAPTERS: dict[str, Callable[..., ErpAdapter]] = {"sandbox": _sandbox_erp, "tryton": _tryton_erp}
STOREFRONT_ADAPTERS: dict[str, Callable[..., StorefrontAdapter]] = {
    "sandbox": _sandbox_storefront, "vendure": _vendure_storefront}

#: the mapping module of an adapter that names none (the sandbox adapters and test doubles)
DEFAULT_ERP_MAPPING = "erpsync.mappings.erp_sandbox"
DEFAULT_STOREFRONT_MAPPING = "erpsync.mappings.storefront_sandbox"


def erp_mapping(adapter: object) -> ModuleType:
    """The mapping module of an ERP adapter (its ``mapping`` attribute, a module path).

    Flows map through this, so the same flow runs against any ERP: the Connection picks the
    adapter, the adapter picks its mapping. The module provides ``customer_from_erp``,
    ``customer_to_erp``, ``customer_update_to_erp``, ``order_to_erp`` and the reference accessors
    ``customer_no``, ``customer_external_ref``, ``order_no``, ``item_code`` (docs/adding-a-connector.md).
    """
    return importlib.import_module(getattr(adapter, "mapping", None) or DEFAULT_ERP_MAPPING)


def storefront_mapping(adapter: object) -> ModuleType:
    """The mapping module of a storefront adapter: ``customer_from_storefront``, ``order_from_storefront``."""
    return importlib.import_module(getattr(adapter, "mapping", None) or DEFAULT_STOREFRONT_MAPPING)


def _common(extra: Mapping[str, Any], default_conn: str) -> dict[str, Any]:
    conn = str(extra.get("conn_id", default_conn))
    out: dict[str, Any] = {"connection_id": conn}
    for key, cast in (("timeout", float), ("page_size", int)):
        if extra.get(key) is not None:
            try:
                out[key] = cast(extra[key])
            except (TypeError, ValueError):
                raise ConfigError(f"Connection {conn}: extra {key!r} must be a number, got {extra[key]!r}") from None
    if extra.get("max_attempts") is not None:
        out["retry"] = RetryPolicy(max_attempts=int(extra["max_attempts"]))
    return out


def normalise_url(base_url: str | None, conn: str) -> str:
    """``host:port`` or a full URL -> ``http(s)://host:port`` without trailing slash."""
    if not base_url or not str(base_url).strip():
        raise ConfigError(f"Connection {conn} has no host: set host (and port) or a full URL")
    url = str(base_url).strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url


def _resolve(name: str, table: Mapping[str, Callable[..., Any]], kind: str, conn: str) -> Callable[..., Any]:
    if name in table:
        return table[name]
    if ":" in name:  # a custom adapter: "package.module:factory"
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"Connection {conn}: cannot import {kind} adapter {name!r} ({exc})") from None
    raise ConfigError(
        f"Connection {conn}: unknown {kind} adapter {name!r}; set extra adapter to one of {sorted(table)} "
        "or to 'package.module:factory'")


def build_erp(
    adapter: str | None, base_url: str | None, login: str | None, password: str | None,
    extra: Mapping[str, Any] | None = None,
) -> ErpAdapter:
    extra = dict(extra or {})
    conn = str(extra.get("conn_id", "erp_default"))
    factory = _resolve(adapter or "sandbox", ERP_ADAPTERS, "ERP", conn)
    url = normalise_url(base_url, conn)
    if not login or not password:
        raise ConfigError(f"Connection {conn} has no {'login' if not login else 'password'}: set the ERP user "
                          "and password on the connection")
    return _with_limits(factory(url, login, password, extra), extra, conn)


def build_storefront(
    adapter: str | None, base_url: str | None, token: str | None, extra: Mapping[str, Any] | None = None,
) -> StorefrontAdapter:
    extra = dict(extra or {})
    conn = str(extra.get("conn_id", "storefront_default"))
    factory = _resolve(adapter or "sandbox", STOREFRONT_ADAPTERS, "storefront", conn)
    url = normalise_url(base_url, conn)
    if not token:
        raise ConfigError(f"Connection {conn} has no API token: set it as the connection password")
    return _with_limits(factory(url, token, extra), extra, conn)


def _with_limits(adapter: Any, extra: dict[str, Any], conn: str) -> Any:
    """The Connection's extra rides on the adapter as ``limits``: its rate budget (``rps``,
    ``concurrency``, checked here so a bad value fails at once) and breaker settings, read when a
    flow context protects the adapter (``erpsync.reliability``)."""
    from erpsync.connectors.limits import Limits

    Limits.from_extra(extra, conn_id=conn)
    if getattr(adapter, "limits", None) is None:
        adapter.limits = extra
    replay = extra.get("idempotency_key_replay")
    if replay is not None:  # the remote is known to replay keyed writes (never assumed: default off)
        if not isinstance(replay, bool):
            raise ConfigError(f"Connection {conn}: extra 'idempotency_key_replay' must be true or false, got {replay!r}")
        from erpsync.connectors.capabilities import capabilities_of

        caps = capabilities_of(adapter)
        if replay and not caps.idempotency_keys:  # the capability matrix says the remote has no keys
            raise ConfigError(f"Connection {conn}: extra 'idempotency_key_replay' is true but {caps.name} does not "
                              f"honour idempotency keys ({caps.note('idempotency_keys') or 'capability matrix'}); "
                              "remove it: its writes are looked up by their reference instead")
        http = getattr(adapter, "http", None)
        if http is not None and hasattr(http, "key_replay"):
            http.key_replay = replay
    return adapter
