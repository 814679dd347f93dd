"""Great Expectations behind one function: validate rows against a suite, say which rows failed
which check with which value, and keep the result as JSON and a rendered HTML page.

GX is imported inside the functions (the import takes seconds) and its ephemeral context is made
once per process; GX is called from the core because the GX Airflow provider cannot be installed
beside Airflow 3.3.2.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erpsync.quality.suites import Check

log = logging.getLogger("erpsync.quality")
_lock = threading.Lock()
_context: Any = None


@dataclass(slots=True)
class Failure:
    check: Check
    value: Any


@dataclass(slots=True)
class Validation:
    success: bool
    failures: dict[int, list[Failure]] = field(default_factory=dict)  # row index -> what failed
    result: Any = None  # the GX ExpectationSuiteValidationResult
    statistics: dict[str, Any] = field(default_factory=dict)


def _gx_context() -> Any:
    global _context
    with _lock:
        if _context is None:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx

            ctx = gx.get_context(mode="ephemeral")
            try:  # no progress bars in task logs
                from great_expectations.data_context.types.base import ProgressBarsConfig

                ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            except Exception:  # pragma: no cover - older/newer GX
                pass
            _context = ctx
        return _context


def validate(suite_name: str, checks: list[Check], rows: list[dict[str, Any]]) -> Validation:
    """Run ``checks`` over ``rows`` (one dict per record) with GX; row indexes are list positions."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd

    ctx = _gx_context()
    frame = pd.DataFrame(rows)
    present = [c for c in checks if c.column in frame.columns]
    for c in checks:
        if c.column not in frame.columns:
            log.warning("quality suite %s: column %s missing, check %s skipped", suite_name, c.column, c.reason)
    expectations = []
    for i, c in enumerate(present):
        cls = getattr(gxe, c.expectation)
        expectations.append(cls(column=c.column, meta={"erpsync_check": i, "reason": c.reason, "notes": c.describe}, **c.kwargs))
    with _lock:
        name = f"{suite_name}-{id(rows)}"
        suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
        try:
            source = ctx.data_sources.add_or_update_pandas(f"src-{name}")
            batch = source.add_dataframe_asset(name=suite_name).add_batch_definition_whole_dataframe("batch")
            vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
            result = vd.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
        finally:
            for remove in (
                lambda: ctx.validation_definitions.delete(name),
                lambda: ctx.suites.delete(name),
                lambda: ctx.data_sources.delete(f"src-{name}"),
            ):
                try:
                    remove()
                except Exception:  # pragma: no cover - cleanup only
                    pass
    out = Validation(success=bool(result.success), result=result, statistics=dict(result.statistics or {}))
    for res in result.results:
        meta = res.expectation_config.meta or {}
        check = present[int(meta["erpsync_check"])]
        if res.success:
            continue
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX check {check.gx_type}({check.column}) raised: {res.exception_info.get('exception_message')}")
        for idx in res.result.get("unexpected_index_list") or []:
            i = int(idx if not isinstance(idx, dict) else idx.get("index", -1))
            if 0 <= i < len(rows):
                out.failures.setdefault(i, []).append(Failure(check, rows[i].get(check.column)))
    return out


def write_report(validation: Validation, directory: Path, stem: str, *, html: bool = True) -> tuple[Path, Path | None]:
    """Keep the GX result: ``<stem>.json`` always, ``<stem>.html`` (GX's own page) when asked and
    it renders."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{stem}.json"
    json_path.write_text(json.dumps(validation.result.to_json_dict(), indent=1, default=str))
    if not html:
        return json_path, None
    html_path: Path | None = directory / f"{stem}.html"
    try:
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        html = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(validation.result))
        html_path.write_text(html)
    except Exception as exc:  # the JSON is the record; the page is a convenience
        log.warning("quality report %s: HTML not rendered (%s); the JSON is kept", stem, exc)
        html_path = None
    return json_path, html_path
