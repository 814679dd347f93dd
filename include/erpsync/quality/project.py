"""The GX project of the quality gates (``gx/`` in the repository), written from the suites.

``gx/`` is a file-based Great Expectations project, versioned with the code:

* ``expectations/<suite>.json``: one expectation suite per canonical entity, generated from
  ``erpsync.quality.suites`` (the one source of truth; ``tests/unit/test_gx_project.py`` checks
  that the JSON says what the suites declare);
* ``great_expectations.yml``: the pandas data source ``erpsync`` (a dataframe asset per suite,
  each with a whole-dataframe batch definition), the stores and the Data Docs site ``erpsync``,
  whose directory and the validation results' are filled in at run time
  (``erpsync.quality.gx``: ``ERPSYNC_GX_DATA_DOCS_DIR``, ``ERPSYNC_GX_RESULTS_DIR``);
* ``validation_definitions/`` and ``checkpoints/``: one of each per gated flow (named after the
  flow, on its suite), plus ``adhoc.<suite>`` for a batch of another flow or a preview; each
  checkpoint updates the Data Docs site (``UpdateDataDocsAction``).

Regenerate after changing a suite or adding a gated flow::

    python -m erpsync.quality.project          # writes gx/, prints what changed
    python -m erpsync.quality.project --check  # exit 1 when gx/ is not what the code declares
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from erpsync.flows.specs import SPECS
from erpsync.quality import suites

DATA_SOURCE = "erpsync"
BATCH = "whole_dataframe"
SITE = "erpsync"
ACTION = "update_data_docs"


def project_root() -> Path:
    """The directory holding ``gx/``: ``ERPSYNC_GX_PROJECT_DIR``, else the repository's root."""
    raw = os.environ.get("ERPSYNC_GX_PROJECT_DIR", "").strip()
    return Path(raw) if raw else Path(__file__).resolve().parents[3]


def definitions() -> dict[str, str]:
    """Validation definition (and checkpoint) name -> the suite it validates."""
    out = {name: spec.quality_suite for name, spec in sorted(SPECS.items()) if spec.quality_suite}
    out.update({f"adhoc.{s}": s for s in suites.SUITES})
    return out


def definition_for(flow: str, entity: str) -> str:
    """The validation definition a batch of ``entity`` read by ``flow`` runs through."""
    name = suites.suite_name(entity)
    spec = SPECS.get(flow)
    return flow if spec is not None and spec.quality_suite == name else f"adhoc.{name}"


def stored(root: Path, name: str) -> list[dict[str, Any]]:
    """The expectations of suite ``name`` in ``root/gx`` as :func:`suites.declared` writes them."""
    data = json.loads((root / "gx" / "expectations" / f"{name}.json").read_text())
    return [{"type": e["type"], "kwargs": e["kwargs"], "meta": e.get("meta") or {}} for e in data["expectations"]]


def _changed(root: Path) -> list[str]:
    """What of ``root/gx`` differs from the code's declarations (read without GX)."""
    gx_dir = root / "gx"
    out = []
    for name in suites.SUITES:
        try:
            same = stored(root, name) == suites.declared(name)
        except (OSError, ValueError, KeyError):
            same = False
        if not same:
            out.append(f"expectations/{name}.json")
    for name, suite in definitions().items():
        try:
            vd = json.loads((gx_dir / "validation_definitions" / f"{name}.json").read_text())
            cp = json.loads((gx_dir / "checkpoints" / f"{name}.json").read_text())
        except (OSError, ValueError):
            out.append(f"validation_definitions/{name}.json")
            continue
        if (vd["suite"]["name"] != suite or vd["data"]["asset"]["name"] != suite
                or [a.get("type") for a in cp.get("actions", [])] != [ACTION]
                or [v["name"] for v in cp["validation_definitions"]] != [name]):
            out.append(f"validation_definitions/{name}.json")
    return out


def build(root: Path) -> list[str]:
    """Write ``root/gx`` from the code (suites, data assets, validation definitions, checkpoints);
    return what changed. Keeps the ids of what is already there."""
    changed = _changed(root)
    if not changed:
        return []
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    with tempfile.TemporaryDirectory() as tmp:
        ctx = gx.get_context(mode="file", project_root_dir=str(root), runtime_environment={
            "erpsync_gx_results_dir": str(Path(tmp) / "results"), "erpsync_gx_data_docs_dir": str(Path(tmp) / "docs")})
        try:
            source = ctx.data_sources.get(DATA_SOURCE)
        except (KeyError, ValueError, LookupError):
            source = ctx.data_sources.add_pandas(DATA_SOURCE)
        for name in suites.SUITES:
            try:
                asset = source.get_asset(name)
            except LookupError:
                asset = source.add_dataframe_asset(name)  # type: ignore[attr-defined]  # a PandasDatasource
            try:
                asset.get_batch_definition(BATCH)
            except (KeyError, LookupError, ValueError):
                asset.add_batch_definition_whole_dataframe(BATCH)
            configs = [ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e["meta"])
                       for e in suites.declared(name)]
            try:
                suite = ctx.suites.get(name)
            except Exception:  # noqa: BLE001  GX raises its own DataContextError for a missing suite
                suite = ctx.suites.add(ExpectationSuite(name=name))
            if f"expectations/{name}.json" in changed:
                for old in list(suite.expectations):
                    suite.delete_expectation(old)
                for config in configs:
                    suite.add_expectation_configuration(config)
                suite.save()
        for name, suite_name in definitions().items():
            batch = source.get_asset(suite_name).get_batch_definition(BATCH)
            vd = ctx.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=name, data=batch, suite=ctx.suites.get(suite_name)))
            ctx.checkpoints.add_or_update(gx.Checkpoint(
                name=name, validation_definitions=[vd], actions=[UpdateDataDocsAction(name=ACTION, site_names=[SITE])],
                result_format={"result_format": "COMPLETE"}))
    return changed


def main(argv: list[str]) -> int:
    root = project_root()
    if "--check" in argv:
        changed = _changed(root)
        for item in changed:
            print(f"gx/{item} differs from erpsync.quality.suites / flows.specs", file=sys.stderr)
        if changed:
            print("regenerate with: python -m erpsync.quality.project", file=sys.stderr)
        return 1 if changed else 0
    changed = build(root)
    print("\n".join(f"wrote gx/{c}" for c in changed) or f"{root / 'gx'} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
