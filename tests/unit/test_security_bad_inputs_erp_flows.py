"""The corpus of bad inputs (``test_security_bad_inputs``) through catalog_sync, pricing_sync,
shipments_sync and returns_sync (both directions): each bad record is quarantined with its reason,
nothing crashes, nothing goes missing, the good records are written and the injection strings are
stored as plain data.

The doubles of the ERP and the storefront hand the corpus over as they hold it (no filtering, no
parsing: a malformed JSON body stays a string), and, like real APIs, refuse a write with a field
longer than ``FIELD_LIMIT`` characters (422). The quality gate quarantines only (``PARAMS``), so
every record reaches the flow's own checks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flow_doubles import FakeErp, FakeStorefront, make_ctx
from test_security_bad_inputs import HUGE, INJECTIONS, PARAMS, _without

from erpsync.errors import PermanentError
from erpsync.flows import catalog, pricing, returns, shipments
from erpsync.state import StateStore
from erpsync.state.price_book import PriceBook
from erpsync.state.schema import metadata
from tests.fixtures.clock import pricing_clock

FIELD_LIMIT = 10_000  # characters of one field an API accepts
NOW = "2026-11-24T12:00:00Z"
Corpus = list[tuple[str, Any, bool]]


def _refuse_oversized(payload: Any, system: str) -> None:
    """What a real API answers to a field longer than it stores."""
    if isinstance(payload, str) and len(payload) > FIELD_LIMIT:
        raise PermanentError(f"field too long ({len(payload)} characters, limit {FIELD_LIMIT})", system=system,
                             status=422)
    if isinstance(payload, dict):
        for v in payload.values():
            _refuse_oversized(v, system)
    elif isinstance(payload, list):
        for v in payload:
            _refuse_oversized(v, system)


class RawErp(FakeErp):
    """Serves items, prices, shipments and RMAs exactly as given; keeps the RMAs created."""

    def __init__(self, *, items: list[Any] | None = None, prices: list[Any] | None = None,
                 shipments: list[Any] | None = None, rmas: list[Any] | None = None) -> None:
        super().__init__()
        self.raw_items = items or []
        self.raw_prices = prices or []
        self.raw_shipments = shipments or []
        self.raw_rmas = rmas  # None: list the RMAs created through the API
        self.created_rmas: dict[str, dict[str, Any]] = {}

    def list_items(self, updated_since: Any = None) -> Iterator[Any]:
        return iter(copy.deepcopy(self.raw_items))

    def list_prices(self, updated_since: Any = None) -> Iterator[Any]:
        return iter(copy.deepcopy(self.raw_prices))

    def list_shipments(self, updated_since: Any = None, updated_before: Any = None) -> Iterator[Any]:
        return iter(copy.deepcopy(self.raw_shipments))

    def list_returns(self, updated_since: Any = None, updated_before: Any = None) -> Iterator[Any]:
        rmas = self.raw_rmas if self.raw_rmas is not None else list(self.created_rmas.values())
        return iter(copy.deepcopy(rmas))

    def create_return(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(payload, "erp")
        no = f"RMA-{len(self.created_rmas) + 1:06d}"
        self.created_rmas[no] = {"rma_no": no, "status": "open", "credit_memo": None,
                                 "modified_at": NOW, **copy.deepcopy(payload)}
        return copy.deepcopy(self.created_rmas[no])

    def find_return(self, external_ref: str) -> dict[str, Any] | None:
        found = [r for r in self.created_rmas.values() if r.get("external_ref") == external_ref]
        return copy.deepcopy(found[0]) if found else None


class RawStore(FakeStorefront):
    """Keeps products, prices, price lists, fulfillments and returns; serves returns as given."""

    def __init__(self, *, orders: list[dict[str, Any]] | None = None, returns: list[Any] | None = None,
                 held_returns: list[dict[str, Any]] | None = None) -> None:
        super().__init__([], orders or [])
        self.products: dict[str, dict[str, Any]] = {}
        self.variant_prices: dict[str, dict[str, Any]] = {}
        self.price_lists: dict[str, dict[str, Any]] = {}
        self.list_prices: dict[str, list[dict[str, Any]]] = {}
        self.fulfillments: dict[str, list[dict[str, Any]]] = {}
        self.raw_returns = returns or []  # what list_returns hands over
        self.returns = {r["id"]: copy.deepcopy(r) for r in held_returns or []}  # what get_return reads
        self.return_updates: dict[str, list[dict[str, Any]]] = {}

    def list_products(self, updated_since: Any = None) -> Iterator[dict[str, Any]]:
        return iter(copy.deepcopy(list(self.products.values())))

    def upsert_product(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(payload, "storefront")
        product = self.products.setdefault(payload["handle"], {"id": f"P{len(self.products) + 1}"})
        product.update(copy.deepcopy(payload))
        return {"product": copy.deepcopy(product)}

    def set_variant_prices(self, items: list[dict[str, Any]], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(items, "storefront")
        self.variant_prices.update({i["sku"]: copy.deepcopy(i) for i in items})
        return {"updated": len(items)}

    def list_price_lists(self) -> Iterator[dict[str, Any]]:
        return iter(copy.deepcopy(list(self.price_lists.values())))

    def list_price_list_prices(self, price_list_id: str) -> Iterator[dict[str, Any]]:
        return iter(copy.deepcopy(self.list_prices.get(price_list_id, [])))

    def upsert_price_list(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(payload, "storefront")
        pl = self.price_lists.setdefault(payload["handle"], {"id": f"PL{len(self.price_lists) + 1}"})
        pl.update(copy.deepcopy(payload))
        return {"price_list": copy.deepcopy(pl)}

    def change_price_list_prices(self, price_list_id: str, to_set: list[dict[str, Any]],
                                 to_delete: list[dict[str, Any]], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(to_set, "storefront")
        self.list_prices.setdefault(price_list_id, []).extend(copy.deepcopy(to_set))
        return {"updated": len(to_set), "deleted": len(to_delete)}

    def add_fulfillment(self, order_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(payload, "storefront")
        fid = f"F{sum(map(len, self.fulfillments.values())) + 1}"
        self.fulfillments.setdefault(order_id, []).append({"id": fid, **copy.deepcopy(payload)})
        return {"fulfillment": {"id": fid}}

    def list_returns(self, updated_since: Any = None, updated_before: Any = None) -> Iterator[Any]:
        return iter(copy.deepcopy(self.raw_returns))

    def get_return(self, return_id: str) -> dict[str, Any] | None:
        found = self.returns.get(return_id)
        return copy.deepcopy(found) if found else None

    def update_return(self, return_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(payload, "storefront")
        self.return_updates.setdefault(return_id, []).append(copy.deepcopy(payload))
        return {"id": return_id}

    def refund_return(self, return_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        _refuse_oversized(payload, "storefront")
        refunds = self.returns[return_id].setdefault("refunds", [])
        refund = {"id": f"RF{len(refunds) + 1}", "amount": payload.get("amount", "0.00"),
                  "currency": payload["currency"], "note": payload["note"]}
        refunds.append(refund)
        return {"refund": copy.deepcopy(refund)}


@pytest.fixture
def store(tmp_path: Any) -> Iterator[StateStore]:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


def check(store: StateStore, flow: str, summary: Any, corpus: Corpus,
          id_of: Callable[[Any], str | None]) -> dict[str, str]:
    """Nothing crashed or went missing, every bad record is a dead letter with a reason and no good
    one is, and every table is still there. Returns the dead letters' reasons by external id."""
    assert summary.failed == 0, summary.render()
    accounted = summary.done + summary.skipped + summary.quarantined + summary.queued
    assert accounted >= len(corpus), f"records went missing: {summary.to_dict()}"
    dead = store.list_dead_letters(flow=flow, limit=10_000)
    assert all(d.reason.strip() for d in dead)
    reasons: dict[str, str] = {}
    for d in dead:
        reasons.setdefault(d.external_id, d.reason)
    unnamed = 0
    for label, raw, bad in corpus:
        rid = id_of(raw)
        if rid is None:
            assert bad, f"{label}: a good record needs an id"
            unnamed += 1
        elif bad:
            assert rid in reasons, f"{label}: {rid[:60]} was not quarantined ({summary.to_dict()})"
        else:
            assert rid not in reasons, f"{label}: quarantined: {reasons.get(rid, '')[:300]}"
    assert sum(1 for d in dead if d.external_id.startswith("?")) >= unnamed, "records without an id went missing"
    assert summary.quarantined >= sum(1 for _, _, bad in corpus if bad)
    names = set(sa.inspect(store.engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= names
    return reasons


def _not_a_record(prefix: str) -> Corpus:
    return [
        ("malformed json", '{"' + prefix + '": "X-1", "lines": [', True),
        ("null record", None, True),
        ("a list", [1, 2], True),
        ("a number", 42, True),
    ]


# --------------------------------------------------------------------------- catalog_sync


def erp_item(n: int, **fields: Any) -> dict[str, Any]:
    """A sandbox ERP item (erpsync.sandbox.data.item)."""
    return {"item_code": f"ITEM-{n:06d}", "sku": f"SKU-{n:06d}", "description": f"Steel Lamp {n}", "uom": "EA",
            "active": True, "cost": "10.00", "list_price": "19.99", "currency": "USD", "kit_components": [],
            "modified_at": "2026-10-01T08:00:00Z", **fields}


def item_corpus() -> Corpus:
    i = erp_item
    return [
        *_not_a_record("item_code"),
        ("missing item code", _without(i(1), "item_code"), True),
        ("missing sku", _without(i(2), "sku"), True),
        ("sku of the wrong type", i(3, sku=["SKU-000003"]), True),
        ("active as a string", i(4, active="yes"), True),
        ("kit components as a string", i(5, kit_components="ITEM-000001"), True),
        ("attributes as a string", i(6, variant_of="TEMPLATE-6", attributes="red"), True),
        ("date that is no date (the sandbox's malformed item)", i(7, modified_at="yesterday"), True),
        ("unit of measure unknown", i(8, uom="BARREL"), True),
        ("huge description", i(9, description=HUGE), True),
        ("huge sku", i(10, sku=HUGE), True),
        ("negative kit quantity", i(11, kit_components=[{"item_code": "ITEM-000020", "qty": -2}]), True),
        ("injection as sku", i(12, sku=INJECTIONS[0]), True),
        ("duplicate item code, different content", i(13), True),
        ("duplicate item code, different content (again)", i(13, description="Brass Lamp 13"), True),
        ("injection in the description (valid data)", i(20, description=INJECTIONS[4]), False),
        ("script in the brand (valid data)", i(21, brand=INJECTIONS[2]), False),
        ("negative list price: a dead letter (the price checks of pricing_sync)", i(22, list_price="-5.00"), True),
        ("list price in an unknown currency: created as a draft", i(23, currency="XXX"), False),
        ("list price that is no money (the sandbox's malformed item)", i(24, list_price="N/A"), True),
        ("the same item read twice", i(25), False),
        ("the same item read twice (again)", i(25), False),
    ]


def _item_id(raw: Any) -> str | None:
    if not isinstance(raw, dict) or not raw.get("item_code"):
        return None
    return str(raw.get("variant_of") or raw["item_code"])


def test_catalog_corpus(store: StateStore) -> None:
    corpus = item_corpus()
    erp, sf = RawErp(items=[r for _, r, _ in corpus]), RawStore()
    summary = catalog.run(make_ctx(store, "catalog_sync", erp, sf, **PARAMS))
    reasons = check(store, "catalog_sync", summary, corpus, _item_id)

    assert reasons["ITEM-000003"].startswith("mapping_error:") and "'text'" in reasons["ITEM-000003"]
    assert "'bool'" in reasons["ITEM-000004"] and "'yes'" in reasons["ITEM-000004"]
    assert "iso8601" in reasons["ITEM-000007"] and "unit_of_measure" in reasons["ITEM-000008"]
    assert reasons["ITEM-000009"].startswith("name_too_long:")
    assert reasons["ITEM-000010"].startswith("storefront_rejected: 422")
    assert "'quantity'" in reasons["ITEM-000011"] and "sku_no_spaces" in reasons["ITEM-000012"]
    assert reasons["ITEM-000013"].startswith("duplicate_key:")
    unnamed = [d.reason for d in store.list_dead_letters(flow="catalog_sync", limit=100) if d.external_id.startswith("?")]
    assert sum("not readable as a record" in r for r in unnamed) == 4  # the four that are no object at all

    products = {p["handle"]: p for p in sf.products.values()}
    assert reasons["ITEM-000022"].startswith("bad_price:") and "negative" in reasons["ITEM-000022"]
    assert reasons["ITEM-000024"].startswith("bad_price:") and "not a number" in reasons["ITEM-000024"]
    assert set(products) == {f"sku-{n:06d}" for n in (20, 21, 23, 25)}  # the good ones, each once
    assert products["sku-000020"]["title"] == INJECTIONS[4]  # stored verbatim, as data
    assert products["sku-000021"]["vendor"] == INJECTIONS[2]
    for n in (23,):  # no valid first price: a draft without a price, never on sale
        assert products[f"sku-{n:06d}"]["status"] == "draft"
        assert "price" not in products[f"sku-{n:06d}"]["variants"][0]
    assert products["sku-000025"]["status"] == "active" and products["sku-000025"]["variants"][0]["price"] == "19.99"
    assert summary.reasons["unchanged"] == 1  # the second copy of item 25 wrote nothing
    assert store.get_xref("storefront", "variant", "SKU-000020") is not None


# --------------------------------------------------------------------------- pricing_sync


def erp_price(n: int, **fields: Any) -> dict[str, Any]:
    """A sandbox ERP price row (GET /api/prices)."""
    return {"item_code": f"ITEM-{n:06d}", "price_list": "LIST", "currency": "USD", "min_qty": 1, "price": "19.99",
            "modified_at": "2026-11-24T10:00:00Z", **fields}


def price_corpus() -> Corpus:
    p = erp_price
    return [
        *_not_a_record("item_code"),
        ("missing item code", _without(p(1), "item_code"), True),
        ("missing price", _without(p(2), "price"), True),
        ("price as a float", p(3, price=19.99), True),
        ("price with a comma", p(4, price="19,99"), True),
        ("price that is not a number", p(5, price="NaN"), True),
        ("negative price", p(6, price="-5.00"), True),
        ("unknown currency", p(7, currency="XXX"), True),
        ("currency in lower case", p(8, currency="usd"), True),
        ("negative quantity break", p(9, min_qty=-3), True),
        ("quantity break of the wrong type", p(10, min_qty="two"), True),
        ("date that is no date", p(11, valid_from="yesterday"), True),
        ("huge price", p(12, price="9" * 1_000_000), True),
        ("item the ERP never listed", p(99), True),
        ("injection as the item code", p(13, item_code=INJECTIONS[0]), True),
        ("duplicate price key, different price", p(14, price="10.00"), True),
        ("duplicate price key, different price (again)", p(14, price="11.00"), True),
        ("a good base price", p(20), False),
        ("a good base price read twice", p(21, price="27.50"), False),
        ("a good base price read twice (again)", p(21, price="27.50"), False),
        ("script as the customer group (valid data)",
         p(22, price_list="WHOLESALE", customer_group=INJECTIONS[2], price="17.00"), False),
        ("injection in the price list name (valid data)", p(23, price_list=INJECTIONS[1], price="28.00"), False),
    ]


def _price_id(raw: Any) -> str | None:
    """The row id the dead letter of a price row is filed under (``price_ref(raw).row_id``)."""
    if not isinstance(raw, dict):
        return None
    return f"{raw.get('item_code')}/{raw.get('price_list')}/{raw.get('currency')}/{raw.get('min_qty')}"


def test_pricing_corpus(store: StateStore) -> None:
    corpus = price_corpus()
    items = [erp_item(n) for n in (*range(1, 15), 20, 21, 22, 23)]
    erp, sf = RawErp(items=items, prices=[r for _, r, _ in corpus]), RawStore()
    with pricing_clock(NOW):
        summary = pricing.run(make_ctx(store, "pricing_sync", erp, sf, **PARAMS))
    reasons = check(store, "pricing_sync", summary, corpus, _price_id)

    assert "money_not_float" in reasons["ITEM-000003/LIST/USD/1"]
    assert "price_not_negative" in reasons["ITEM-000006/LIST/USD/1"]
    assert reasons["ITEM-000007/LIST/XXX/1"].startswith("bad_currency: currency='XXX'")
    assert "iso4217" in reasons["ITEM-000008/LIST/usd/1"] and "'quantity'" in reasons["ITEM-000009/LIST/USD/-3"]
    assert reasons["ITEM-000012/LIST/USD/1"].startswith("absurd_amount:")  # caught before rounding, bounded
    assert "item_xref" in reasons["ITEM-000099/LIST/USD/1"] and "item_xref" in reasons[f"{INJECTIONS[0]}/LIST/USD/1"]
    assert reasons["ITEM-000014/LIST/USD/1"].startswith("duplicate_key:")

    assert sf.variant_prices == {  # the good ones only, each once
        "SKU-000020": {"sku": "SKU-000020", "price": "19.99", "compare_at_price": None},
        "SKU-000021": {"sku": "SKU-000021", "price": "27.50", "compare_at_price": None},
        "SKU-000023": {"sku": "SKU-000023", "price": "28.00", "compare_at_price": None},
    }
    (group,) = sf.price_lists.values()
    assert group["customer_group"] == INJECTIONS[2]  # stored verbatim, as data
    assert sf.list_prices[group["id"]] == [{"sku": "SKU-000022", "min_qty": 1, "price": "17.00",
                                            "compare_at_price": None}]
    assert summary.reasons["unchanged"] == 1  # the second copy of ITEM-000021's row
    book = PriceBook(store).load(["variant|SKU-000023|1"])
    assert list(book["variant|SKU-000023|1"].rules) == [INJECTIONS[1]]  # the price list name, verbatim


# --------------------------------------------------------------------------- shipments_sync


def erp_shipment(n: int, *packages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A sandbox ERP shipment (POST /admin/ship_packages) of sales order SO-<n> for store order O<n>."""
    return {"shipment_no": f"SHP-{n:06d}", "order_no": f"SO-{n:06d}", "external_ref": f"O{n}", "status": "shipped",
            "shipped_at": "2026-11-23T10:00:00Z", "modified_at": "2026-11-23T10:00:00Z",
            "packages": list(packages) or [package(f"1Z{n:04d}")], **fields}


def package(tracking: str, **fields: Any) -> dict[str, Any]:
    return {"carrier": "UPS", "tracking_no": tracking, "status": "shipped",
            "lines": [{"item_code": "ITEM-000002", "qty": 1}], **fields}


def shipment_corpus() -> Corpus:
    s = erp_shipment
    return [
        *_not_a_record("shipment_no"),
        ("missing shipment number", _without(s(1), "shipment_no"), True),
        ("missing order reference", _without(s(2), "external_ref", "order_no"), True),
        ("packages as a string", s(3, packages="box"), True),
        ("a package that is a string", s(4, packages=["box"]), True),
        ("lines as a string", s(5, package("1Z5", lines="ITEM-000002")), True),
        ("negative quantity", s(6, package("1Z6", lines=[{"item_code": "ITEM-000002", "qty": -1}])), True),
        ("quantity of the wrong type", s(7, package("1Z7", lines=[{"item_code": "ITEM-000002", "qty": 1.5}])), True),
        ("item the order never had", s(8, package("1Z8", lines=[{"item_code": "ITEM-404", "qty": 1}])), True),
        ("missing tracking number", s(9, package(None)), True),
        ("date that is no date", s(10, shipped_at="yesterday"), True),
        ("change time of the wrong type", s(11, modified_at=5), True),
        ("an empty package", s(12, package("1Z12", lines=[])), True),
        ("one tracking number twice", s(13, package("1Z13"), package("1Z13")), True),
        ("huge tracking number", s(14, package(HUGE)), True),
        ("duplicate shipment number, different packages", s(15, package("1Z15A")), True),
        ("duplicate shipment number, different packages (again)", s(15, package("1Z15B")), True),
        ("injection as the tracking number (valid data)", s(20, package(INJECTIONS[0])), False),
        ("script as the carrier (valid data)", s(21, package("1Z21", carrier=INJECTIONS[2])), False),
        ("a good shipment", s(22), False),
        ("the same shipment read twice", s(23), False),
        ("the same shipment read twice (again)", s(23), False),
    ]


def _shipment_id(raw: Any) -> str | None:
    return str(raw["shipment_no"]) if isinstance(raw, dict) and raw.get("shipment_no") else None


def test_shipments_corpus(store: StateStore) -> None:
    corpus = shipment_corpus()
    store.upsert_xref("erp", "item", "SKU-000002", "ITEM-000002")  # bound when the orders went out
    erp, sf = RawErp(shipments=[r for _, r, _ in corpus]), RawStore()
    summary = shipments.run(make_ctx(store, "shipments_sync", erp, sf, **PARAMS))
    reasons = check(store, "shipments_sync", summary, corpus, _shipment_id)

    assert "'required'" in reasons["SHP-000002"]
    assert "packages[0]' failed rule 'object'" in reasons["SHP-000003"] and "'box'" in reasons["SHP-000004"]
    assert "'object'" in reasons["SHP-000005"] and "'quantity'" in reasons["SHP-000006"]
    assert "'quantity'" in reasons["SHP-000007"] and "item_xref" in reasons["SHP-000008"]
    assert "iso8601" in reasons["SHP-000010"] and "iso8601" in reasons["SHP-000011"]
    assert reasons["SHP-000012"].startswith("empty_package:")
    assert reasons["SHP-000013"].startswith("duplicate_key:") and reasons["SHP-000015"].startswith("duplicate_key:")
    # a megabyte tracking number stops at our gate, before the store is asked
    assert reasons["SHP-000014"].startswith("text_too_long: longest_tracking=1000000")

    assert set(sf.fulfillments) == {"O20", "O21", "O22", "O23"}
    assert all(len(f) == 1 for f in sf.fulfillments.values())  # the shipment read twice: one fulfillment
    assert sf.fulfillments["O20"][0]["tracking_number"] == INJECTIONS[0]  # stored verbatim, as data
    assert sf.fulfillments["O21"][0]["tracking_company"] == INJECTIONS[2]
    assert store.get_xref("storefront", "package", f"SHP-000020:{INJECTIONS[0]}") is not None


# --------------------------------------------------------------------------- returns_sync


ORDER = {"id": "O1", "updated_at": "2026-11-23T09:00:00Z",
         "line_items": [{"sku": "SKU-000002", "quantity": 3, "price": "10.00", "total_discount": "0.00",
                         "tax_lines": []}]}


def store_return(rid: str, *lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A sandbox storefront return (erpsync.sandbox.transactions) of order O1."""
    return {"id": rid, "order_id": "O1", "currency": "USD", "status": "requested",
            "line_items": list(lines) or [return_line()], "refunds": [], "updated_at": "2026-11-23T10:00:00Z",
            **fields}


def return_line(**fields: Any) -> dict[str, Any]:
    return {"line_item_id": "L1", "sku": "SKU-000002", "quantity": 1, "reason": "too small", **fields}


def store_return_corpus() -> Corpus:
    r, ln = store_return, return_line
    return [
        *_not_a_record("id"),
        ("missing id", _without(r("R1"), "id"), True),
        ("missing order", _without(r("R2"), "order_id"), True),
        ("no lines", r("R3", line_items=[]), True),
        ("lines as a string", r("R4", line_items="SKU-000002"), True),
        ("negative quantity", r("R5", ln(quantity=-1)), True),
        ("quantity of the wrong type", r("R6", ln(quantity="two")), True),
        ("unknown currency", r("R7", currency="XXX"), True),
        ("negative refund", r("R8", refunds=[{"amount": "-5.00"}]), True),
        ("refund that is no money", r("R9", refunds=[{"amount": 5.5}]), True),
        ("refunds as a string", r("R10", refunds="5.00"), True),
        ("date that is no date", r("R11", updated_at="yesterday"), True),
        ("huge return reason", r("R12", ln(reason=HUGE)), True),
        ("injection as the sku", r("R13", ln(sku=INJECTIONS[0])), True),
        ("order the ERP does not have", r("R14", order_id="O404"), True),
        ("duplicate return id, different lines", r("R15", ln(quantity=1)), True),
        ("duplicate return id, different lines (again)", r("R15", ln(quantity=2)), True),
        ("injection in the return reason (valid data)", r("R20", ln(reason=INJECTIONS[4])), False),
        ("injection as the return id (an odd but valid id)", r(INJECTIONS[1]), False),
        ("a good return", r("R22"), False),
        ("the same return read twice", r("R23"), False),
        ("the same return read twice (again)", r("R23"), False),
    ]


def _return_id(raw: Any) -> str | None:
    return str(raw["id"]) if isinstance(raw, dict) and raw.get("id") else None


def _orders_synced(store: StateStore) -> None:
    store.upsert_xref("erp", "item", "SKU-000002", "ITEM-000002")
    store.upsert_xref("erp", "sales_order", "O1", "SO-000001")


def test_returns_store_to_erp_corpus(store: StateStore) -> None:
    corpus = store_return_corpus()
    _orders_synced(store)
    erp, sf = RawErp(), RawStore(orders=[ORDER], returns=[r for _, r, _ in corpus])
    summary = returns.run(make_ctx(store, "returns_sync", erp, sf, **PARAMS))
    reasons = check(store, "returns_sync", summary, corpus, _return_id)

    assert "'list'" in reasons["R4"] and "'quantity'" in reasons["R5"] and "'quantity'" in reasons["R6"]
    assert reasons["R7"].startswith("bad_currency: currency='XXX'")
    assert reasons["R8"].startswith("negative_amount:") and "money_not_float" in reasons["R9"]
    assert "field 'refunds'" in reasons["R10"] and "iso8601" in reasons["R11"]
    assert reasons["R12"].startswith("text_too_long: longest_reason=1000000") and "item_xref" in reasons["R13"]
    assert reasons["R14"].startswith("order_not_synced: O404")
    assert reasons["R15"].startswith("duplicate_key:")

    opened = {r["external_ref"]: r for r in erp.created_rmas.values()}
    assert set(opened) == {"R20", INJECTIONS[1], "R22", "R23"}  # the good ones, each once
    assert opened["R20"]["lines"] == [{"item_code": "ITEM-000002", "qty": 1, "reason": INJECTIONS[4]}]  # verbatim
    assert store.get_xref("erp", "return", INJECTIONS[1]) is not None  # bound verbatim: SQL is parameterised
    assert sf.return_updates[INJECTIONS[1]] == [{"status": "open", "erp_reference": opened[INJECTIONS[1]]["rma_no"]}]


def erp_rma(n: int, **fields: Any) -> dict[str, Any]:
    """A credited sandbox ERP RMA of store return R<n> (erpsync.sandbox.transactions)."""
    return {"rma_no": f"RMA-{n:06d}", "external_ref": f"R{n}", "order_no": "SO-000001", "currency": "USD",
            "status": "credited", "modified_at": "2026-11-24T10:00:00Z",
            "lines": [{"item_code": "ITEM-000002", "qty": 1, "reason": "too small", "disposition": "restock"}],
            "credit_memo": memo(f"CM-{n}"), **fields}


def memo(memo_no: Any, amount: Any = "10.00", lines: Any = None) -> dict[str, Any]:
    return {"memo_no": memo_no, "amount": amount,
            "lines": lines if lines is not None else [{"item_code": "ITEM-000002", "qty": 1}]}


def rma_corpus() -> Corpus:
    m = erp_rma
    return [
        *_not_a_record("rma_no"),
        ("status the ERP does not have", m(1, status="lost"), True),
        ("unknown currency", m(2, currency="XXX"), True),
        ("negative credit memo", m(3, credit_memo=memo("CM-3", "-10.00")), True),
        ("credit memo amount that is no money", m(4, credit_memo=memo("CM-4", "ten")), True),
        ("credit memo as a string", m(5, credit_memo="CM-5 10.00"), True),
        ("credit memo lines as a string", m(6, credit_memo=memo("CM-6", lines="ITEM-000002")), True),
        ("negative credited quantity", m(7, credit_memo=memo("CM-7", lines=[{"item_code": "ITEM-000002", "qty": -1}])),
         True),
        ("item the store never sold", m(8, credit_memo=memo("CM-8", lines=[{"item_code": "ITEM-404", "qty": 1}])),
         True),
        ("date that is no date", m(9, modified_at="yesterday"), True),
        ("huge credit memo number", m(10, credit_memo=memo(HUGE)), True),
        ("duplicate RMA, different memo", m(11, credit_memo=memo("CM-11", "10.00")), True),
        ("duplicate RMA, different memo (again)", m(11, credit_memo=memo("CM-11", "9.00")), True),
        ("injection as the credit memo number (valid data)", m(20, credit_memo=memo(INJECTIONS[0])), False),
        ("a credited RMA", m(21), False),
        ("a rejected RMA", m(22, status="rejected", credit_memo=None), False),
        ("the same RMA read twice", m(23), False),
        ("the same RMA read twice (again)", m(23), False),
    ]


def _rma_store_id(raw: Any) -> str | None:
    """The dead letters of RMAs are filed under the store return they are bound to."""
    return str(raw["external_ref"]) if isinstance(raw, dict) and raw.get("rma_no") else None


def test_returns_erp_to_store_corpus(store: StateStore) -> None:
    corpus = rma_corpus()
    _orders_synced(store)
    numbers = sorted({n for _, raw, _ in corpus if isinstance(raw, dict) for n in [int(raw["rma_no"][4:])]})
    for n in numbers:  # opened by an earlier run: the store return is bound to its RMA
        store.upsert_xref("erp", "return", f"R{n}", f"RMA-{n:06d}")
    held = [store_return(f"R{n}", status="open") for n in numbers]
    erp, sf = RawErp(rmas=[r for _, r, _ in corpus]), RawStore(orders=[ORDER], held_returns=held)
    summary = returns.run(make_ctx(store, "returns_sync", erp, sf, **PARAMS))
    reasons = check(store, "returns_sync", summary, corpus, _rma_store_id)

    assert "rma_status" in reasons["R1"] and reasons["R2"].startswith("bad_currency: currency='XXX'")
    assert reasons["R3"].startswith("negative_amount:") and "'money'" in reasons["R4"]
    assert "field 'credit_memo' failed rule 'object'" in reasons["R5"] and "'object'" in reasons["R6"]
    assert "'quantity'" in reasons["R7"] and "item_xref" in reasons["R8"] and "iso8601" in reasons["R9"]
    assert reasons["R10"].startswith("text_too_long: credit_memo_id_length=1000000")  # stopped before the store
    assert reasons["R11"].startswith("duplicate_key:")

    refunded = {rid: r["refunds"] for rid, r in sf.returns.items() if r.get("refunds")}
    assert set(refunded) == {"R20", "R21", "R23"} and all(len(v) == 1 for v in refunded.values())  # each once
    assert refunded["R20"][0]["note"] == INJECTIONS[0]  # stored verbatim, as data
    assert sf.return_updates["R22"] == [{"status": "rejected"}]
    assert summary.reasons["credited_and_refunded"] == 3  # refund and credit memo agree to the cent
