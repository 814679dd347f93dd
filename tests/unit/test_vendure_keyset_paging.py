"""The Vendure adapter's keyset paging of change windows (``_list_by_time``) against a small
model of Vendure's list queries, as checked on Vendure 3.7.3: times kept in microseconds and
shown in milliseconds, ``after``/``before`` strict, ``isNull``, ``skip``/``take``, one sort field,
ties in the order PostgreSQL leaves them (here: by id). The real server is exercised by the
conformance suite (tests/conformance); these cover what it cannot arrange cheaply: more than a
page in one millisecond, sub-millisecond neighbours, records without the time."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

from erpsync.connectors.vendure import VendureStorefrontAdapter

T0 = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)


def _show(at: dt.datetime | None) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class FakeVendure(VendureStorefrontAdapter):
    """Answers ``customers`` list queries from ``rows`` ({id: true time}); ``between_pages`` runs
    after each answer (a change made while the adapter pages)."""

    def __init__(self, rows: dict[int, dt.datetime | None], page_size: int = 3) -> None:
        self.rows = rows
        self.page_size = page_size
        self.requests: list[dict[str, Any]] = []
        self.between_pages: Callable[[int], None] = lambda n: None

    def gql(self, query: str, *, write: bool = False, retry: Any = None, **variables: Any) -> Any:
        o = variables["o"]
        self.requests.append(o)
        assert o["take"] <= 1000 and list(o["sort"]) == ["updatedAt"], o
        ops = (o.get("filter") or {}).get("updatedAt") or {}
        picked = []
        for rid, at in self.rows.items():
            if ops.get("isNull") is True and at is not None:
                continue
            if "after" in ops and (at is None or not at > _time(ops["after"])):
                continue
            if "before" in ops and (at is None or not at < _time(ops["before"])):
                continue
            picked.append((rid, at))
        picked.sort(key=lambda r: (r[1] is None, r[1] or T0, r[0]))  # NULLs last, ties by id
        page = picked[o["skip"]: o["skip"] + o["take"]]
        self.between_pages(len(self.requests))
        return {"customers": {"items": [{"id": str(rid), "updatedAt": _show(at)} for rid, at in page]}}


def _read(sf: FakeVendure, since: dt.datetime | None = None) -> list[str]:
    return [r["id"] for r in sf.list_customers(updated_since=since)]


def test_more_than_a_page_in_one_millisecond_is_read_once_each() -> None:
    rows: dict[int, dt.datetime | None] = {i: T0 + dt.timedelta(microseconds=10 * i) for i in range(1, 8)}
    rows.update({i: T0 + dt.timedelta(milliseconds=5, microseconds=i) for i in range(8, 12)})
    sf = FakeVendure(rows)
    seen = _read(sf)
    assert sorted(seen, key=int) == [str(i) for i in range(1, 12)] and len(seen) == 11, seen


def test_sub_millisecond_neighbours_across_page_boundaries_are_read_once_each() -> None:
    # .1225 shows as .122, .123000 and .1234 both as .123: each page ends on a different one
    times = [122_500, 123_000, 123_000, 123_400, 123_900, 124_000, 124_001, 125_000, 200_000]
    sf = FakeVendure({i + 1: T0 + dt.timedelta(microseconds=us) for i, us in enumerate(times)}, page_size=2)
    seen = _read(sf, since=T0 + dt.timedelta(milliseconds=122))
    assert Counter(seen) == Counter(str(i) for i in range(1, 10)), seen


def test_a_record_changed_mid_read_loses_nothing_and_may_come_again() -> None:
    rows: dict[int, dt.datetime | None] = {i: T0 + dt.timedelta(seconds=i) for i in range(1, 11)}
    sf = FakeVendure(rows)

    def pay_the_first(n: int) -> None:
        if n == 1:  # after the first page: record 1 is paid, its updatedAt jumps to now
            rows[1] = T0 + dt.timedelta(hours=1)

    sf.between_pages = pay_the_first
    seen = _read(sf)
    counts = Counter(seen)
    assert set(counts) == {str(i) for i in range(1, 11)}, seen
    assert counts["1"] == 2 and all(c == 1 for k, c in counts.items() if k != "1"), seen


def test_records_without_the_time_are_read_last_once_each() -> None:
    rows: dict[int, dt.datetime | None] = {i: T0 + dt.timedelta(seconds=i) for i in range(1, 5)}
    rows.update({i: None for i in range(5, 12)})
    sf = FakeVendure(rows)
    seen = _read(sf)
    assert Counter(seen) == Counter(str(i) for i in range(1, 12)), seen


def test_the_window_is_kept_on_every_page() -> None:
    rows: dict[int, dt.datetime | None] = {i: T0 + dt.timedelta(seconds=i) for i in range(1, 11)}
    sf = FakeVendure(rows)
    assert _read(sf, since=T0 + dt.timedelta(seconds=4)) == [str(i) for i in range(4, 11)]
    assert all(_time(o["filter"]["updatedAt"]["after"]) >= T0 + dt.timedelta(seconds=4, milliseconds=-1)
               for o in sf.requests)
