"""Helpers shared by the command modules."""

from __future__ import annotations

import json
from typing import Any


def store(migrate: bool = True):
    """The state store the tasks use (Connection ``erpsync_state``, else ``ERPSYNC_STATE_URL``)."""
    from erpsync_airflow.hooks import StateStoreHook

    return StateStoreHook(migrate=migrate).get_conn()


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain text table: what a person reads in a terminal or a task log."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str) if value is not None else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def flow_context(flow: str, params: dict[str, Any] | None = None):
    """A FlowContext for a command run from a terminal: adapters from the same Connections."""
    import datetime as dt
    import logging

    from erpsync.flows.base import FlowContext
    from erpsync_airflow.hooks import ErpHook, StorefrontHook

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return FlowContext(
        flow=flow,
        run_id=f"cli__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}",
        store=store(),
        erp=ErpHook().get_conn(),
        storefront=StorefrontHook().get_conn(),
        params=params or {},
        log=logging.getLogger(f"erpsync.cli.{flow}"),
    )
