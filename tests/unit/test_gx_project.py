"""The GX project in gx/: its suites are what erpsync.quality.suites declares, each gated flow has
a validation definition and a checkpoint that updates the Data Docs site, and the gate uses the
project as it is (loaded once, nothing added per batch, results and site outside the repository)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from erpsync.flows.base import FlowContext, RunSummary
from erpsync.flows.specs import SPECS
from erpsync.quality import gx, project, suites
from erpsync.state import StateStore

ROOT = project.project_root()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in (root / "gx").rglob("*") if p.is_file()}


def test_the_json_suites_are_what_the_code_declares() -> None:
    for name in suites.SUITES:
        assert project.stored(ROOT, name) == suites.declared(name), f"gx/expectations/{name}.json"
    assert project.main(["--check"]) == 0
    # the configured sets are expectation parameters, not values frozen into the JSON
    currency = next(e for e in suites.declared("order") if e["kwargs"]["column"] == "currency")
    assert currency["kwargs"]["value_set"] == {"$PARAMETER": "allowed_currencies"}


def test_every_gated_flow_has_a_validation_definition_and_a_checkpoint_updating_data_docs() -> None:
    gated = {name: spec.quality_suite for name, spec in SPECS.items() if spec.quality_suite}
    assert gated and set(gated) <= set(project.definitions())
    for name, suite in gated.items():
        vd = json.loads((ROOT / "gx" / "validation_definitions" / f"{name}.json").read_text())
        cp = json.loads((ROOT / "gx" / "checkpoints" / f"{name}.json").read_text())
        assert vd["suite"]["name"] == suite and vd["data"]["asset"]["name"] == suite
        assert cp["validation_definitions"][0]["name"] == name
        assert cp["actions"] == [{"name": "update_data_docs", "site_names": ["erpsync"], "type": "update_data_docs"}]
    assert project.definition_for("inventory_sync", "stock") == "inventory_sync"
    assert project.definition_for("test_flow", "order") == "adhoc.order"
    assert project.definition_for("orders_sync", "inventory_level") == "adhoc.record_key"


def test_a_changed_suite_is_found_and_regenerated(tmp_path) -> None:
    shutil.copytree(ROOT / "gx", tmp_path / "gx")
    path = tmp_path / "gx" / "expectations" / "stock.json"
    data = json.loads(path.read_text())
    data["expectations"][2]["kwargs"]["max_value"] = 5
    path.write_text(json.dumps(data))
    assert project._changed(tmp_path) == ["expectations/stock.json"]
    assert project.build(tmp_path) == ["expectations/stock.json"]
    assert project._changed(tmp_path) == [] and project.stored(tmp_path, "stock") == suites.declared("stock")


def test_the_gate_uses_the_project_once_and_writes_outside_it(tmp_path, monkeypatch) -> None:
    docs, results = tmp_path / "docs", tmp_path / "results"
    monkeypatch.setenv("ERPSYNC_GX_DATA_DOCS_DIR", str(docs))
    monkeypatch.setenv("ERPSYNC_GX_RESULTS_DIR", str(results))
    monkeypatch.setenv("ERPSYNC_ALLOWED_CURRENCIES", "USD,CHF")
    before = _files(ROOT)
    store = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    store.migrate()
    ctx = FlowContext(flow="pricing_sync", run_id="run-gx", store=store, erp=None, storefront=None,  # type: ignore[arg-type]
                      params={}, log=logging.getLogger("test.gx"))
    price = {"sku": "S1", "key": "S1|a", "currency": "CHF", "price": 1.0, "min_quantity": 1, "cost": 0.5}
    summary = RunSummary(flow="pricing_sync")
    passed = list(ctx.gate("price", [price, {**price, "key": "S1|b", "currency": "EUR"}], summary))
    assert passed == [price]  # CHF allowed by the setting (an expectation parameter), EUR not
    (_, ext, reason) = summary.dead_letters[0]
    assert reason.startswith("bad_currency: currency='EUR' (expect_column_values_to_be_in_set(currency)")
    loaded = gx.context()
    assert {s.name for s in loaded.suites.all()} == set(suites.SUITES)  # nothing added per batch
    list(ctx.gate("price", [price], summary))
    assert gx.context() is loaded  # loaded once
    (page, _) = ctx.quality_reports
    assert page.endswith("price-1.html") and "<base href=\"file://" in Path(page).read_text()
    site_pages = list((docs / "validations" / "price" / "run-gx").rglob("*.html"))
    assert len(site_pages) == 1 and (docs / "index.html").exists()
    assert list(results.rglob("*.json"))  # the checkpoint stored the failed batch's result
    assert _files(ROOT) == before  # the repository's gx/ is read, never written
    store.close()


@pytest.mark.parametrize("rows", [[{"id": "a"}], [{"key": None}, {"key": "k"}]])
def test_an_entity_without_a_suite_checks_its_key_and_skips_missing_columns(rows) -> None:
    checks = suites.suite("erasure_request")
    v = gx.validate("x.erasure_request", checks, rows, entity="erasure_request")
    assert v.success is ("key" not in rows[0])
    if "key" in rows[0]:
        assert [f.check.reason for f in v.failures[0]] == ["missing_field"]
