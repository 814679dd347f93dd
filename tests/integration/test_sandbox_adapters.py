"""The registry and the sandbox adapters end to end: building, ping's one-line errors, iterators."""

from __future__ import annotations

import socket

import pytest

from erpsync.connectors.base import ErpAdapter, StorefrontAdapter
from erpsync.connectors.registry import build_erp, build_storefront
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.errors import ConfigError
from erpsync.sandbox.launcher import Sandbox
from tests.drivers.sandbox import erp_customers, store_events

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_build_from_connection_settings(sandbox: Sandbox) -> None:
    host_port = sandbox.erp_url.removeprefix("http://")
    erp = build_erp("sandbox", host_port, sandbox.erp_user, sandbox.erp_password, {"timeout": "5", "page_size": 50})
    assert isinstance(erp, ErpAdapter) and erp.page_size == 50 and erp.base_url == sandbox.erp_url
    erp.ping()
    sf = build_storefront(None, sandbox.storefront_url + "/", sandbox.token, {"adapter": "sandbox"})
    assert isinstance(sf, StorefrontAdapter) and sf.inventory_batch_limit == 250
    sf.ping()


@pytest.mark.parametrize("call,needle", [
    (lambda: build_erp("sap", "http://x", "u", "p", {}), "unknown ERP adapter 'sap'"),
    (lambda: build_erp("sandbox", "http://x", None, "p", {}), "Connection erp_default has no login"),
    (lambda: build_erp("sandbox", "", "u", "p", {}), "Connection erp_default has no host"),
    (lambda: build_storefront("sandbox", "http://x", "", {}), "Connection storefront_default has no API token"),
    (lambda: build_erp("sandbox", "http://x", "u", "p", {"page_size": "many"}), "'page_size' must be a number"),
    (lambda: build_storefront("nope.module:make", "http://x", "t", {}), "cannot import storefront adapter"),
])
def test_configuration_errors_are_one_line(call, needle: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        call()
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_ping_unreachable_names_system_url_and_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError) as err:
        build_erp("sandbox", url, "erpsync", "pw", {}).ping()
    msg = str(err.value)
    assert msg == (f"ERP at {url} is unreachable (connection refused): start the sandbox with `make sandbox` "
                   "or fix the host of Connection erp_default")
    with pytest.raises(ConfigError, match=f"storefront at {url} is unreachable"):
        build_storefront("sandbox", url, "t", {}).ping()


def test_ping_wrong_credentials(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError) as err:
        build_erp("sandbox", sandbox.erp_url, "erpsync", "wrong", {}).ping()
    assert "refused the login of user 'erpsync' (invalid_credentials)" in str(err.value)
    assert "fix login/password of Connection erp_default" in str(err.value)
    with pytest.raises(ConfigError, match=r"refused the API token \(invalid_token\).*storefront_default"):
        build_storefront("sandbox", sandbox.storefront_url, "wrong", {"conn_id": "storefront_default"}).ping()


def test_erp_iterators_read_everything(clean_sandbox: Sandbox, erp_adapter: SandboxErpAdapter) -> None:
    assert len(list(erp_adapter.list_items())) == 60
    stock = list(erp_adapter.list_stock())
    assert len(stock) == 180 and len({(s["item_code"], s["warehouse"]) for s in stock}) == 180
    prices = list(erp_adapter.list_prices())
    assert {p["currency"] for p in prices} >= {"USD", "EUR", "GBP"}
    assert any(p["customer_no"] for p in prices) and any(p["min_qty"] > 1 for p in prices)
    assert any(p["customer_group"] == "wholesale" for p in prices)
    assert len(list(erp_customers(erp_adapter))) == 150
    assert erp_adapter.find_item_by_sku("SKU-000060")["item_code"] == "ITEM-000060"
    assert erp_adapter.find_item_by_sku("SKU-000061") is None
    assert any(i["kit_components"] for i in erp_adapter.list_items())


def test_storefront_iterators_read_everything(clean_sandbox: Sandbox, storefront_adapter: SandboxStorefrontAdapter) -> None:
    assert len(list(storefront_adapter.list_orders())) == 120
    assert len(list(storefront_adapter.list_customers())) == 150
    assert storefront_adapter.get_customer("C100001")["id"] == "C100001"
    assert storefront_adapter.get_customer("C999999") is None
    items, cursor = store_events(storefront_adapter, limit=100)
    assert len(items) == 100 and cursor == "100"
    erp_skus = {f"SKU-{i:06d}" for i in range(1, 61)}
    assert {li["sku"] for o in storefront_adapter.list_orders() for li in o["line_items"]} <= erp_skus
