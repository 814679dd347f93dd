"""A drift report's items read a page at a time (``DriftReportRepository.page_items``): the console's
report page shows a report of hundreds of thousands of items without loading them all; walking the
pages forward and back reads each item exactly once per page shown, in order, with its position."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from erpsync.state import StateStore, records


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[StateStore]:
    url = f"sqlite:///{tmp_path}/state.db" if request.param == "sqlite" else request.getfixturevalue("pg_database")()
    s = StateStore.from_url(url)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every drift item built from a row, by id: what a read materialised."""
    seen: list[int] = []
    original = records.DriftItem.from_row.__func__  # type: ignore[attr-defined]

    def from_row(cls: Any, row: Any, **kw: Any) -> Any:
        seen.append(int(row["id"]))
        return original(cls, row, **kw)

    monkeypatch.setattr(records.DriftItem, "from_row", classmethod(from_row))
    return seen


def test_pages_read_each_item_once_forward_and_back(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    report_id = store.add_drift_report("inventory_drift_check", "r1", {"compared": 23},
                                       [{"kind": "quantity_mismatch", "entity": "stock", "external_id": f"SKU-{i:03d}",
                                         "erp": i, "store": i + 1} for i in range(23)])
    other = store.add_drift_report("inventory_drift_check", "r2", {}, [{"kind": "x", "external_id": "OTHER"}])
    seen = _counting(monkeypatch)
    repo = store.drift_reports

    head = repo.get(report_id, items=False)
    assert head is not None and head.item_count == 23 and head.items == () and seen == []

    pages, after = [], None
    while True:
        page = repo.page_items(report_id, after=after, limit=10)
        pages.append(page)
        if not page.has_next:
            break
        after = page.items[-1].id
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert [p.offset for p in pages] == [0, 10, 20] and [p.total for p in pages] == [23, 23, 23]
    assert [p.has_previous for p in pages] == [False, True, True]
    shown = [i.external_id for p in pages for i in p.items]
    assert shown == [f"SKU-{i:03d}" for i in range(23)]  # in order, none twice, none of the other report
    assert len(seen) == 23 and len(set(seen)) == 23  # each item read once, no look-ahead row

    back = repo.page_items(report_id, before=pages[2].items[0].id, limit=10)
    assert [i.external_id for i in back.items] == shown[10:20] and back.offset == 10
    assert back.has_previous and back.has_next
    first = repo.page_items(report_id, before=back.items[0].id, limit=10)
    assert [i.external_id for i in first.items] == shown[:10] and first.offset == 0 and not first.has_previous
    assert len(seen) == 23 + 20

    assert repo.page_items(other, limit=10).items[0].external_id == "OTHER"
    empty = repo.page_items(report_id, after=pages[2].items[-1].id, limit=10)
    assert empty.items == () and not empty.has_next and empty.offset == 23
    with pytest.raises(ValueError, match="limit"):
        repo.page_items(report_id, limit=0)
    with pytest.raises(ValueError, match="after or before"):
        repo.page_items(report_id, after=1, before=5, limit=10)
