"""Great Expectations behind one function: validate rows against a suite of the GX project
(``gx/``, see ``erpsync.quality.project``), say which rows failed which check with which value,
and keep the result as JSON and, when a record failed, as the page of the Data Docs site.

* The file-based context is loaded once per process (:func:`context`; the preload of
  ``erpsync_airflow.preload`` loads it in the scheduler, so forked task processes start with it);
  nothing is added to it or deleted from it per batch.
* Every batch is validated through the project's batch definition of its suite, with the
  configured sets as expectation parameters, built as a DataFrame of only the suite's columns.
  It is validated first with the ``BOOLEAN_ONLY`` result format (whether each expectation
  passed: about half the metrics GX computes for ``COMPLETE``); only the expectations that
  failed are validated again with ``COMPLETE``, which names the failed rows (their
  ``unexpected_index_list``), and their results replace the boolean ones in the batch's result.
* A batch with a failed record is run through its flow's checkpoint, whose
  ``UpdateDataDocsAction`` stores the result and adds its page to the Data Docs site
  (``ERPSYNC_GX_DATA_DOCS_DIR``, default ``$ERPSYNC_HOME/quality/data_docs``); a clean batch
  stores nothing in GX (its JSON is kept by the gate).

GX and pandas are imported inside the functions (the import takes seconds); GX is called from the
core because the GX Airflow provider cannot be installed beside Airflow 3.3.2.
"""

from __future__ import annotations

import html
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from erpsync.config import erpsync_home
from erpsync.errors import ConfigError
from erpsync.quality import project
from erpsync.quality.suites import Check, parameters

log = logging.getLogger("erpsync.quality")
_lock = threading.Lock()  # loading the context, publishing a failed batch (store and site writes)
#: one GX validation at a time per process: GX does not say its validation is thread-safe, and its
#: suite-parameter parser (pyparsing, shared state) was seen failing under two threads
#: (``SuiteParameterParser.push_first() missing 1 required positional argument``). A task gates on
#: one thread, so this costs nothing there; it matters where threads share the process (the
#: console's API server validating edited payloads, partitions run as threads in a test)
_validating = threading.Lock()
_loaded: dict[tuple[str, str, str], Any] = {}
_objects: dict[tuple[int, str], tuple[Any, Any]] = {}  # (context, definition) -> (suite, batch definition)
#: (context, definition, positions of the checks) -> a suite of copies of those expectations
_parts: dict[tuple[int, str, tuple[int, ...]], Any] = {}
#: every batch: whether each expectation passed (GX computes no unexpected values or rows)
FIRST_FORMAT = {"result_format": "BOOLEAN_ONLY"}
#: the expectations that failed, again: which rows failed, with their values
RESULT_FORMAT = {"result_format": "COMPLETE"}


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
    page: Path | None = None  # the result's page in the Data Docs site (a published failed batch)
    #: what :func:`publish` runs the checkpoint with: (validation definition, DataFrame, parameters)
    batch: tuple[str, Any, dict[str, Any]] | None = None


def data_docs_dir() -> Path:
    raw = os.environ.get("ERPSYNC_GX_DATA_DOCS_DIR", "").strip()
    return Path(raw) if raw else erpsync_home() / "quality" / "data_docs"


def results_dir() -> Path:
    raw = os.environ.get("ERPSYNC_GX_RESULTS_DIR", "").strip()
    return Path(raw) if raw else erpsync_home() / "quality" / "gx_results"


def context() -> Any:
    """The GX project's file context, loaded once per process (again only when its directories
    change, e.g. another ``ERPSYNC_HOME``)."""
    root = project.project_root()
    key = (str(root), str(results_dir()), str(data_docs_dir()))
    ctx = _loaded.get(key)
    if ctx is not None:
        return ctx
    with _lock:
        if key not in _loaded:
            if not (root / "gx" / "great_expectations.yml").is_file():
                raise ConfigError(f"no GX project at {root / 'gx'}: set ERPSYNC_GX_PROJECT_DIR to the directory "
                                  "holding gx/ (the repository's root)")
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            import great_expectations as gx

            _loaded.clear()
            _objects.clear()
            _parts.clear()
            _loaded[key] = gx.get_context(mode="file", project_root_dir=key[0], runtime_environment={
                "erpsync_gx_results_dir": key[1], "erpsync_gx_data_docs_dir": key[2]})
        return _loaded[key]


def preload() -> None:
    """Import GX and pandas and load the context (``erpsync_airflow.preload``: in the process that
    forks the task processes). A project that does not load is logged; tasks load it themselves."""
    import pandas  # type: ignore[import-untyped,unused-ignore]  # noqa: F401

    try:
        _suite_and_batch(context(), "adhoc.record_key")
    except Exception as exc:  # noqa: BLE001  the task meets the same problem with its own message
        log.warning("GX project not preloaded: %s: %s", type(exc).__name__, exc)


def _suite_and_batch(ctx: Any, definition: str) -> tuple[Any, Any]:
    """The suite and batch definition of validation definition ``definition`` (read once)."""
    key = (id(ctx), definition)
    got = _objects.get(key)
    if got is None:
        vd = ctx.validation_definitions.get(definition)
        got = _objects[key] = (vd.suite, vd.data)
    return got


def _frame(checks: list[Check], rows: list[dict[str, Any]]) -> Any:
    """A DataFrame of the columns ``checks`` read (a column no row has is left out)."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    columns = dict.fromkeys(c.column for c in checks)
    first = rows[0]
    data = {}
    for col in columns:
        if col in first or any(col in r for r in rows):
            data[col] = [r.get(col) for r in rows]
    return pd.DataFrame(data)


def validate(suite_label: str, checks: list[Check], rows: list[dict[str, Any]], *, flow: str | None = None,
             entity: str | None = None) -> Validation:
    """Run ``checks`` (the suite of ``entity``) over ``rows`` (one dict per record) with GX, through
    the batch definition of the flow's validation definition; row indexes are list positions.
    Stores nothing: :func:`publish` runs a failed batch through the flow's checkpoint."""
    ctx = context()
    name = entity if entity is not None else suite_label.rpartition(".")[2]
    definition = project.definition_for(flow or "", name)
    frame = _frame(checks, rows)
    missing = [c for c in checks if c.column not in frame.columns]
    for c in missing:
        log.warning("quality suite %s: column %s missing, check %s skipped", suite_label, c.column, c.reason)
    params = parameters(checks)
    with _validating:
        gx_suite, batch_definition = _suite_and_batch(ctx, definition)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        if missing:  # only records without a suite of their own: the present checks, off the project
            skip = {id(c) for c in missing}
            run = _part(ctx, definition, gx_suite, [i for i, c in enumerate(checks) if id(c) not in skip])
        else:
            run = gx_suite
        result = batch.validate(run, result_format=FIRST_FORMAT, expectation_parameters=params)
        failed = [i for i, res in enumerate(result.results) if not res.success]
        if failed:
            # which rows failed which expectation: asked of the failed expectations only
            detail = batch.validate(_part(ctx, definition, gx_suite, [_check_of(result.results[i]) for i in failed]),
                                    result_format=RESULT_FORMAT, expectation_parameters=params)
            by_check = {_check_of(res): res for res in detail.results}
            for i in failed:
                result.results[i] = by_check.get(_check_of(result.results[i]), result.results[i])
    out = Validation(success=bool(result.success), result=result, statistics=dict(result.statistics or {}))
    for res in result.results:
        if res.success:
            continue
        check = checks[_check_of(res)]
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise RuntimeError(f"GX check {check.gx_type}({check.column}) raised: {res.exception_info.get('exception_message')}")
        for idx in res.result.get("unexpected_index_list") or []:
            i = int(idx if not isinstance(idx, dict) else idx.get("index", -1))
            if 0 <= i < len(rows):
                out.failures.setdefault(i, []).append(Failure(check, rows[i].get(check.column)))
    if not missing:
        out.batch = (definition, frame, params)
    return out


def publish(validation: Validation, run_name: str | None) -> Path | None:
    """Run the batch of ``validation`` through its flow's checkpoint: GX validates it again,
    stores the result and adds its page to the Data Docs site (``UpdateDataDocsAction``) under
    ``run_name``; sets and returns the page's path (None: the site has no page for it)."""
    if validation.batch is not None:
        definition, frame, params = validation.batch
        validation.page = _publish(context(), definition, frame, params, run_name)
    return validation.page


def _check_of(res: Any) -> int:
    """The position in the suite's checks of the expectation ``res`` is the result of."""
    return int((res.expectation_config.meta or {})["erpsync_check"])


def _part(ctx: Any, definition: str, gx_suite: Any, positions: list[int]) -> Any:
    """A suite of the expectations of ``gx_suite`` at check ``positions`` (copies: GX binds an
    expectation to one suite), made once per process and set of positions."""
    key = (id(ctx), definition, tuple(sorted(positions)))
    part = _parts.get(key)
    if part is None:
        import copy

        from great_expectations.core.expectation_suite import ExpectationSuite

        wanted = set(key[2])
        part = _parts[key] = ExpectationSuite(
            name=f"{gx_suite.name}.part", expectations=[
                copy.copy(e) for e in gx_suite.expectations if int((e.meta or {})["erpsync_check"]) in wanted])
    return part


def _publish(ctx: Any, definition: str, frame: Any, params: dict[str, Any], run_name: str | None) -> Path | None:
    """Run the checkpoint of ``definition`` (stores the result, updates the Data Docs site); the
    path of the result's page, None when the site has none."""
    from great_expectations.core.run_identifier import RunIdentifier

    with _lock, _validating:  # the checkpoint validates the batch again
        checkpoint = ctx.checkpoints.get(definition)
        res = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=params,
                             run_id=RunIdentifier(run_name=run_name))
        for key in res.run_results:
            for site in ctx.get_docs_sites_urls(resource_identifier=key, site_name=project.SITE):
                url = site.get("site_url") or ""
                if url.startswith("file://"):
                    return Path(unquote(urlparse(url).path))
    return None


def write_report(validation: Validation, directory: Path, stem: str, *, html_page: bool = True) -> tuple[Path, Path | None]:
    """Keep the GX result: ``<stem>.json`` always; ``<stem>.html`` when asked and the batch has a
    Data Docs page: that page, its links resolved into the site (``<base href>``)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{stem}.json"
    json_path.write_text(json.dumps(validation.result.to_json_dict(), indent=1, default=str))
    if not html_page or validation.page is None:
        return json_path, None
    html_path = directory / f"{stem}.html"
    try:
        page = validation.page.read_text(encoding="utf-8")
        base = f'<base href="{html.escape(validation.page.parent.as_uri() + "/", quote=True)}">'
        head = page.find("<head>")
        page = page[: head + 6] + base + page[head + 6:] if head >= 0 else base + page
        html_path.write_text(page, encoding="utf-8")
    except OSError as exc:  # the JSON is the record; the page is a convenience
        log.warning("quality report %s: Data Docs page %s not copied (%s); the JSON is kept", stem, validation.page, exc)
        return json_path, None
    return json_path, html_path
