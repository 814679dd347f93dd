"""The two pagination styles of the sandbox: ERP pages and storefront cursors.

Both walk a :class:`LazyTable` in index order, so a record modified while a client pages through
stays where it was: nothing is lost or repeated.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from erpsync.sandbox.data import LazyTable, Raw, parse_time
from erpsync.sandbox.server import HttpError, Request

Render = Callable[[int, Raw], Raw]


def time_filter(request: Request, name: str) -> float | None:
    raw = request.arg(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise HttpError(400, "invalid_parameter", f"{name} must be an ISO 8601 time, got {raw!r}") from None


def erp_page(
    request: Request, table: LazyTable, render: Render, *, indices: Sequence[int] | None = None,
    max_page_size: int = 1000,
) -> tuple[int, Any]:
    """``?page=&page_size=`` -> ``{"data", "page", "page_size", "total", "has_more"}``.

    ``indices`` restricts the walk to precomputed candidates (filters by key); they are still
    filtered by ``updated_since``/``updated_before``.
    """
    page = request.int_arg("page", 1, minimum=1)
    size = request.int_arg("page_size", 100, minimum=1, maximum=max_page_size)
    since, before = time_filter(request, "updated_since"), time_filter(request, "updated_before")
    offset = (page - 1) * size
    data: list[Raw] = []
    if indices is not None:
        matching = [i for i in indices if _in_window(table.time_of(i), since, before) and table.get(i) is not None]
        total = len(matching)
        chosen = matching[offset: offset + size]
    else:
        total = table.count_matching(since, before)
        chosen = []
        first = table.index_at_offset(offset, since, before) if offset < total else None
        if first is not None:
            for idx in table.iter_indices(since, before, start=first):
                chosen.append(idx)
                if len(chosen) >= size:
                    break
    for idx in chosen:
        record = table.get(idx)
        if record is not None:
            data.append(render(idx, record))
    return 200, {"data": data, "page": page, "page_size": size, "total": total,
                 "has_more": offset + len(chosen) < total}


def cursor_page(request: Request, table: LazyTable, render: Render, *, max_limit: int = 250) -> tuple[int, Any]:
    """``?limit=&cursor=`` -> ``{"items", "next_cursor"}``; the cursor carries the filters."""
    limit = request.int_arg("limit", 50, minimum=1, maximum=max_limit)
    cursor = request.arg("cursor")
    if cursor:
        state = decode_cursor(cursor)
        since, before, start = state.get("s"), state.get("b"), int(state["a"]) + 1
    else:
        since, before, start = time_filter(request, "updated_since"), time_filter(request, "updated_before"), 0
    items: list[Raw] = []
    last = None
    more = False
    for idx in table.iter_indices(since, before, start=start):
        if len(items) >= limit:
            more = True
            break
        record = table.get(idx)
        if record is None:
            continue
        items.append(render(idx, record))
        last = idx
    next_cursor = encode_cursor({"a": last, "s": since, "b": before}) if more and last is not None else None
    return 200, {"items": items, "next_cursor": next_cursor}


def count_page(request: Request, table: LazyTable) -> tuple[int, Any]:
    """``GET <list>/count?updated_since=&updated_before=`` -> ``{"count": n}`` (Shopify's
    ``/orders/count``): the size of a window, for progress and ETA of long reads."""
    since, before = time_filter(request, "updated_since"), time_filter(request, "updated_before")
    return 200, {"count": table.count_matching(since, before)}


def encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
        int(state["a"])
        return state
    except (ValueError, KeyError, TypeError):
        raise HttpError(400, "invalid_cursor", "the cursor is not one this API returned") from None


def _in_window(at: float, since: float | None, before: float | None) -> bool:
    return (since is None or at >= since) and (before is None or at < before)
