"""The capability matrix (issue 18): each connector's declaration is true to its code, the docs'
table and `erpsync connectors list` show exactly the declarations, and a Connection cannot claim
key replay for a system declared without idempotency keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from erpsync.connectors import registry
from erpsync.connectors.base import ErpAdapter, StorefrontAdapter
from erpsync.connectors.capabilities import (
    CAPABILITIES,
    Capabilities,
    capabilities_of,
    known_adapters,
    matrix,
)
from erpsync.errors import ConfigError
from tests.fixtures.clock import pricing_clock

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding-a-connector.md"

# capability -> the method(s) a connector declaring it must implement itself (not inherit the refusal)
NEEDS = {
    "erp": {"rmas": ("create_return", "find_return", "list_returns"), "erasure": ("anonymize_customer",),
            "resumable_paging": ("read_page",), "sales_order_listing": ("list_sales_orders",),
            "bulk_stock_export": ("export_stock_rows",)},
    "storefront": {"rmas": ("list_returns", "get_return", "update_return", "refund_return"),
                   "erasure": ("list_erasure_requests", "complete_erasure_request"),
                   "resumable_paging": ("read_page",), "bulk_stock_export": ("export_inventory_rows",),
                   "price_lists": ("list_price_lists", "upsert_price_list", "change_price_list_prices"),
                   "multi_location_stock": ("list_locations",)},
}


def test_every_builtin_connector_declares_its_capabilities_and_the_registry_knows_them() -> None:
    adapters = known_adapters()
    assert {k.partition(":")[2] for k in adapters if k.startswith("erp:")} == set(registry.ERP_ADAPTERS)
    assert {k.partition(":")[2] for k in adapters if k.startswith("storefront:")} == set(registry.STOREFRONT_ADAPTERS)
    for label, cls in adapters.items():
        assert isinstance(cls.__dict__.get("capabilities"), Capabilities), f"{label} declares no Capabilities"
        caps = capabilities_of(cls)
        assert set(caps.as_dict()) == set(CAPABILITIES)
        for cap, _note in caps.notes:  # a note explains a gap: it is never on something declared present
            assert not caps.has(cap), f"{label}: a note on {cap}, which it declares"


@pytest.mark.parametrize("label", list(known_adapters()))
def test_a_declared_capability_is_implemented_and_an_implemented_one_declared(label: str) -> None:
    cls = known_adapters()[label]
    base = ErpAdapter if issubclass(cls, ErpAdapter) else StorefrontAdapter
    caps = capabilities_of(cls)
    for cap, methods in NEEDS[label.partition(":")[0]].items():
        own = [m for m in methods if getattr(cls, m) is not getattr(base, m)]
        if caps.has(cap):
            assert own == list(methods), f"{label} declares {cap} but inherits {set(methods) - set(own)}"
        else:
            assert not own or cap == "multi_location_stock", f"{label} implements {own} but declares no {cap}"


def _doc_rows() -> list[dict[str, str]]:
    text = DOC.read_text()
    block = text.split("<!-- capability-matrix:start -->")[1].split("<!-- capability-matrix:end -->")[0]
    lines = [ln for ln in block.strip().splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for ln in lines[2:]:
        cells = [c.strip().strip("`") for c in ln.strip().strip("|").split("|")]
        rows.append(dict(zip(head, cells, strict=True)))
    return rows


def test_the_docs_table_is_the_declarations() -> None:
    assert _doc_rows() == matrix(known_adapters())
    assert "a new connector is done when the conformance suite passes" in DOC.read_text().lower()


def test_erpsync_connectors_list_prints_the_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    from erpsync_airflow.cli import main

    assert main(["connectors", "list", "--notes"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for row in matrix(known_adapters()):
        line = next(ln for ln in lines if ln.startswith(row["capability"] + " "))
        assert re.split(r"\s{2,}", line.strip())[1:5] == [row[k] for k in known_adapters()], line
    assert "storefront:vendure (Vendure 3.7) lacks price_lists: Vendure has no customer-group" in out


def test_a_connection_cannot_claim_key_replay_for_a_system_without_keys() -> None:
    with pytest.raises(ConfigError, match="Tryton 8.2 does not honour idempotency keys"):
        registry.build_erp("tryton", "http://127.0.0.1:9/db", "admin", "pw",
                           {"conn_id": "erp_x", "idempotency_key_replay": True})
    erp = registry.build_erp("sandbox", "http://127.0.0.1:9", "u", "p", {"idempotency_key_replay": True})
    assert erp.http.key_replay is True  # the sandbox replays keys: the claim is allowed


def test_an_adapter_that_declares_nothing_gets_what_it_overrides() -> None:
    from tests.unit.flow_doubles import FakeErp, FakeStorefront

    erp, sf = capabilities_of(FakeErp), capabilities_of(FakeStorefront)
    assert "undeclared" in erp.name and not erp.rmas and not erp.erasure
    assert sf.price_lists and sf.quantity_breaks  # assumed: its mapping's refusals stay one per target


def test_pricing_says_once_per_lacking_capability_what_a_vendure_store_cannot_hold(tmp_path: Path) -> None:
    """The Vendure mapping's refusals name their capability; a store declared as Vendure is (no
    price lists, no quantity breaks, one currency) gets one dead letter per lacking capability and
    run, listing every target and its rows, not one per customer or group."""
    from erpsync.connectors.vendure import VendureStorefrontAdapter
    from erpsync.flows import pricing
    from erpsync.state import StateStore
    from tests.unit.flow_doubles import make_ctx
    from tests.unit.test_pricing_vendure_targets import PricedErp, VendureLike

    class DeclaredVendure(VendureLike):
        capabilities = VendureStorefrontAdapter.capabilities

    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    erp, sf = PricedErp(), DeclaredVendure()
    erp.add_item("SKU-1", "ITEM-1")
    erp.add_item("SKU-2", "ITEM-2")
    with pricing_clock("2026-11-24T12:00:00Z"):
        summary = pricing.run(make_ctx(store, "pricing_sync", erp, sf, "r1"))
    assert summary.done == 1 and sf.writes == [[{"sku": "SKU-2", "price": 999, "currency": "USD"}]]
    letters = {d.external_id: d for d in store.list_dead_letters(flow="pricing_sync")}
    assert set(letters) == {"storefront:price_lists", "storefront:quantity_breaks", "storefront:multi_currency_prices"}
    lists = letters["storefront:price_lists"]
    assert lists.entity == "capability" and lists.payload["targets"] == {
        "customer-cust-000021-usd": 1, "group-wholesale-usd": 2}
    assert lists.reason.startswith("unsupported_by_connector: Vendure 3.7 (DeclaredVendure) lacks price_lists "
                                   "(Vendure has no customer-group or customer-specific price lists")
    assert "3 price row(s) in 2 target(s) not published" in lists.reason
    assert letters["storefront:quantity_breaks"].payload["targets"] == {"qty-10-usd": 1}
    with pricing_clock("2026-11-24T13:00:00Z"):
        pricing.run(make_ctx(store, "pricing_sync", erp, sf, "r2"))
    again = {d.external_id: d.attempts for d in store.list_dead_letters(flow="pricing_sync")}
    assert again == dict.fromkeys(letters, 2)  # the same open letters, their attempts counted
    store.close()


def test_one_way_to_say_a_system_has_no_such_thing() -> None:
    """Every optional method a connector leaves alone raises UnsupportedByConnector naming the
    capability (a ConfigError: the task stops with one line; a NotImplementedError too)."""
    from erpsync.errors import UnsupportedByConnector
    from tests.unit.flow_doubles import FakeErp, FakeStorefront

    erp, sf = FakeErp(), FakeStorefront()
    calls = {
        "rmas": [lambda: erp.create_return({}, idempotency_key="k"), lambda: erp.find_return("r"),
                 lambda: erp.list_returns(), lambda: sf.refund_return("r", {}, idempotency_key="k")],
        "erasure": [lambda: erp.anonymize_customer("c", idempotency_key="k"), lambda: sf.list_erasure_requests()],
        "resumable_paging": [lambda: erp.read_page("customers")],
        "sales_order_listing": [lambda: erp.list_sales_orders()],
    }
    for capability, fns in calls.items():
        for fn in fns:
            with pytest.raises(UnsupportedByConnector) as info:
                fn()
            assert info.value.capability == capability and isinstance(info.value, ConfigError | NotImplementedError)
            assert f"(capability {capability})" in str(info.value) and "Fake" in str(info.value)


@pytest.mark.parametrize("label", list(known_adapters()))
def test_every_connectors_mapping_provides_its_contract(label: str) -> None:
    """The mapping module each connector names has every member of its typed contract
    (erpsync.connectors.contracts; mypy checks their types in make test)."""
    import inspect

    from erpsync.connectors.contracts import ERP_MEMBERS, STOREFRONT_MEMBERS, ErpMapping, StorefrontMapping
    from erpsync.connectors.registry import erp_mapping, storefront_mapping

    cls = known_adapters()[label]
    erp_side = issubclass(cls, ErpAdapter)
    module = (erp_mapping if erp_side else storefront_mapping)(cls)
    protocol, members = (ErpMapping, ERP_MEMBERS) if erp_side else (StorefrontMapping, STOREFRONT_MEMBERS)
    assert members
    for name in members:
        fn = getattr(module, name, None)
        assert callable(fn), f"{module.__name__} lacks {name} ({protocol.__name__})"
        wanted = len(inspect.signature(getattr(protocol, name)).parameters) - 1  # without self
        assert len(inspect.signature(fn).parameters) == wanted, f"{module.__name__}.{name}"
