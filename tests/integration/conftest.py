"""Fixtures of the integration tests that run flows against the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from erpsync.state import StateStore
from tests.fixtures.sandbox import TEST_SEED

SEED = {"seed": 7, "skus": 40, "customers": 60, "orders": 40}


@pytest.fixture
def store() -> StateStore:
    s = StateStore.from_url()
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def fresh(sandbox: Any) -> Any:
    """A small, fault-free sandbox for each test; left as the other tests expect it."""
    sandbox.reset(**SEED)
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()
    sandbox.reset(**TEST_SEED)




@pytest.fixture
def seeded(sandbox: Any) -> Iterator[Callable[..., Any]]:
    """``seeded(**seed)`` reseeds the session sandbox for one test (no faults); left as the other
    tests expect it."""

    def reseed(**seed: int) -> Any:
        sandbox.reset(**seed)
        sandbox.clear_faults()
        return sandbox

    yield reseed
    sandbox.clear_faults()
    sandbox.reset(**TEST_SEED)
