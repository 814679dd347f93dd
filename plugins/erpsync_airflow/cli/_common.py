"""Helpers shared by the command modules."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

from erpsync import display


def store(migrate: bool = True):
    """The state store the tasks use (Connection ``erpsync_state``, else ``ERPSYNC_STATE_URL``)."""
    from erpsync_airflow.hooks import StateStoreHook

    return StateStoreHook(migrate=migrate).get_conn()


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain text table: what a person reads in a terminal or a task log. Every cell goes
    through ``erpsync.display`` (control characters and bidi overrides shown as escapes, cut to
    60 characters): a name from the ERP cannot repaint the terminal or hide a column."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(display.safe_data(value, depth=4, limit=width), default=str, ensure_ascii=False)
    text = display.line(value[: width * 2], limit=10 * width)
    return text if len(text) <= width else text[: width - 1] + "…"


def csv_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """The same rows as CSV for a spreadsheet: each cell through ``display.csv_cell`` (a value
    that starts with = + - @ tab or CR gets a leading ' so no spreadsheet runs it as a formula)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([display.csv_cell(_plain(r.get(c))) for c in columns])
    return out.getvalue()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return json.dumps(display.safe_data(value, depth=4), default=str, ensure_ascii=False)


def show(value: Any) -> str:
    """A record (dead letter, approval) as JSON for a person: ``display.json_text`` (strings
    bounded, depth bounded, controls escaped). Dataclasses are read one level deep, never
    ``dataclasses.asdict`` (it recurses into a payload nested 1,000 levels deep)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return display.json_text(value)


class SafeStream:
    """Wraps stdout/stderr while a command runs: whatever it prints (reports, errors, logs)
    reaches the terminal with control characters neutralised (``display.neutralise``)."""

    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name  # "stdout" / "stderr": after the command, write to whatever it is then
        self.active = True

    def _target(self) -> Any:
        if self.active:
            return self._inner
        current = getattr(sys, self._name)
        return self._inner if current is self else current

    def write(self, text: str) -> int:
        self._target().write(display.neutralise(text, keep_newlines=True))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


@contextlib.contextmanager
def quiet_stdout(active: bool = True) -> Iterator[None]:
    """While active, what would go to stdout (log lines) goes to stderr: stdout stays clean data."""
    if not active:
        yield
        return
    out = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = out


@contextlib.contextmanager
def safe_output() -> Iterator[None]:
    out, err = sys.stdout, sys.stderr
    safe_out, safe_err = SafeStream(out, "stdout"), SafeStream(err, "stderr")
    sys.stdout, sys.stderr = safe_out, safe_err
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
        # a log handler made during the command keeps the wrapper: it follows sys.stdout from now on
        safe_out.active = safe_err.active = False


def flow_context(flow: str, params: dict[str, Any] | None = None):
    """A FlowContext for a command run from a terminal: adapters from the same Connections, with
    their breakers and throttles and a masked log (``FlowContext.for_run``), like a task's."""
    import datetime as dt
    import logging

    from erpsync.flows.base import FlowContext
    from erpsync_airflow.hooks import ErpHook, StorefrontHook

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return FlowContext.for_run(
        flow=flow,
        run_id=f"cli__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}",
        store=store(),
        erp=ErpHook().get_conn(),
        storefront=StorefrontHook().get_conn(),
        params=params or {},
        log=logging.getLogger(f"erpsync.cli.{flow}"),
    )
