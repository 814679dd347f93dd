"""The quality gate's cheap paths say what the full ones say (issue 19 item 5: the gate at a cost
per-minute flows can pay): a flat row's size without the walk, a canonical row's duplicate
fingerprint without JSON, and GX asked for the failed rows only of the expectations that failed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from erpsync import limits
from erpsync.quality import gx
from erpsync.quality.gate import _fingerprint
from erpsync.quality.suites import suite

FLAT_ROWS = [
    {},
    {"item_code": "ITEM-1", "warehouse": "WH1", "on_hand": 5, "allocated": 0, "reserved": None},
    {"sku": "Ｓ－１", "price": 1.5, "active": True, "cost": Decimal("2.10"), "at": dt.datetime(2026, 1, 1),
     "day": dt.date(2026, 1, 2), 7: "a key that is no text"},
]


@pytest.mark.parametrize("record", FLAT_ROWS)
def test_a_flat_rows_size_is_what_the_walk_measures(record: dict) -> None:
    assert limits._flat_size(record) == limits.measure(record)[1]


@pytest.mark.parametrize("record", [{"a": {"b": 1}}, {"a": [1]}, {"a": b"x"}, [1, 2], "text",
                                    {"a": type("Text", (str,), {})("x")}])
def test_anything_but_a_flat_row_is_walked(record: object) -> None:
    assert limits._flat_size(record) is None


def test_a_flat_row_over_a_limit_gets_the_walks_reason_and_excerpt() -> None:
    row = {"item_code": "x" * 300, "warehouse": "WH1"}
    size = limits.measure(row)[1]
    over = limits.raw_problem(row, limits=(64, size - 1))
    assert over is not None and over[0].startswith(f"record_too_large: {size:,} bytes")
    assert over[1]["bytes"] == size and over[1]["depth"] == 1
    assert limits.raw_problem(row, limits=(64, size)) is None
    assert limits.raw_problem(row, limits=(0, 10**9)) is not None  # depth 1 > 0: the walk's verdict
    assert limits.raw_problem(row, {"max_record_bytes": size - 1}) == over  # the limits read from params


def test_two_reads_of_one_row_share_a_fingerprint_whatever_their_key_order() -> None:
    a = {"sku": "A", "location": "W", "on_hand": 1}
    assert _fingerprint(a) == _fingerprint({"on_hand": 1, "sku": "A", "location": "W"})
    assert _fingerprint(a) != _fingerprint({"sku": "A", "location": "W", "on_hand": 2})
    assert _fingerprint(a) != _fingerprint({"sku": "A", "location": "W", "on_hand": 1.0})  # another type
    assert _fingerprint(a) != _fingerprint({"sku": "A", "location": "W", "on_hand": True})
    assert _fingerprint(a) != _fingerprint({"sku": "A", "location": "W", "on_hand": 1, "x": None})
    nested = {"sku": "A", "lines": [{"q": 1}]}
    assert _fingerprint(nested) == _fingerprint({"lines": [{"q": 1}], "sku": "A"})
    assert isinstance(_fingerprint(nested), str)  # not flat: its JSON


def _stock(**change: object) -> dict:
    return {"sku": "A", "location": "W", "key": "A@W", "on_hand": 5, "allocated": 0, "reserved": 0, "damaged": 0,
            "quarantined": 0, "safety_stock": 0, **change}


def test_gx_names_the_failed_rows_of_only_the_expectations_that_failed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_HOME", str(tmp_path))
    rows = [_stock(), _stock(sku=None, on_hand=10**12), _stock(allocated=-1), _stock(reserved=-2, allocated=-3)]
    checks = suite("stock")
    v = gx.validate("inventory_sync.stock", checks, rows, flow="inventory_sync", entity="stock")
    assert v.success is False and v.statistics["unsuccessful_expectations"] == 4
    got = {i: [(f.check.reason, f.check.column, f.value) for f in fs] for i, fs in v.failures.items()}
    assert got == {1: [("missing_field", "sku", None), ("implausible_quantity", "on_hand", 10**12)],
                   2: [("negative_stock", "allocated", -1)],
                   3: [("negative_stock", "allocated", -3), ("negative_stock", "reserved", -2)]}
    # the result kept for the report: the failed expectations in full, the passed ones as booleans
    by_column = {r.expectation_config.kwargs["column"]: r for r in v.result.results}
    assert by_column["allocated"].result["unexpected_index_list"] == [2, 3]
    assert by_column["location"].success and not by_column["location"].result.get("unexpected_index_list")
    assert [r.expectation_config.kwargs["column"] for r in v.result.results] == [c.column for c in checks]


def test_a_batch_without_a_suite_column_runs_the_checks_it_can(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_HOME", str(tmp_path))
    rows = [{"sku": "A", "location": "W", "on_hand": 1}, {"sku": None, "location": "W", "on_hand": -10**12}]
    v = gx.validate("inventory_sync.stock", suite("stock"), rows, flow="inventory_sync", entity="stock")
    assert v.statistics["evaluated_expectations"] == 3 and v.batch is None
    assert {i: [f.check.reason for f in fs] for i, fs in v.failures.items()} == {
        1: ["missing_field", "implausible_quantity"]}


def test_a_runs_first_report_prunes_the_flows_old_run_directories(tmp_path, monkeypatch) -> None:
    import logging
    import os
    import time

    from erpsync.flows.base import FlowContext, RunSummary
    from erpsync.quality import run_gate
    from erpsync.state import StateStore

    monkeypatch.setenv("ERPSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("ERPSYNC_QUALITY_REPORT_RETENTION_DAYS", "7")
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    old = tmp_path / "quality" / "inventory_sync" / "run-old"
    old.mkdir(parents=True)
    aged = time.time() - 8 * 86400
    os.utime(old, (aged, aged))
    ctx = FlowContext(flow="inventory_sync", run_id="run-new", store=store, erp=None, storefront=None,  # type: ignore[arg-type]
                      params={}, log=logging.getLogger("test.gate"))
    rows = [_stock(sku=f"S{i}", key=f"S{i}@W") for i in range(3)]
    assert len(run_gate(ctx, "stock", rows, RunSummary(flow=ctx.flow))) == 3
    assert not old.exists() and (tmp_path / "quality" / "inventory_sync" / "run-new" / "stock-1.json").exists()
    old.mkdir()
    os.utime(old, (aged, aged))
    run_gate(ctx, "stock", rows, RunSummary(flow=ctx.flow))  # the run's second report: no scan of the flow's runs
    assert old.exists() and (tmp_path / "quality" / "inventory_sync" / "run-new" / "stock-2.json").exists()
    store.close()
