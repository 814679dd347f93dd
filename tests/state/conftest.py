"""Store fixtures: `store` and `store_url` are parametrised over SQLite and PostgreSQL.

PostgreSQL tests share one migrated database per session and truncate it before each test
(creating a database per test would cost more than the tests themselves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from erpsync.state import StateStore
from tests.state._support import FakeClock, truncate_pg

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def _pg_store_url(pg_database: Callable[[], str]) -> str:
    url = pg_database()
    with StateStore.from_url(url) as store:
        store.migrate()
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a migrated, empty state database on the current backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        with StateStore.from_url(url) as store:
            store.migrate()
        return url
    url = request.getfixturevalue("_pg_store_url")
    truncate_pg(url)
    return url


@pytest.fixture
def blank_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty, unmigrated database on the current backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'blank.db'}"
    return request.getfixturevalue("pg_database")()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    with StateStore.from_url(store_url, redact_keys=()) as s:
        yield s
