"""Shared test setup: every test runs with its own ERPSYNC_HOME; fixtures live in tests/fixtures/."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.postgres"]


@pytest.fixture(autouse=True)
def _erpsync_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ERPSYNC_HOME", str(tmp_path / "erpsync-home"))
    monkeypatch.delenv("ERPSYNC_STATE_URL", raising=False)
    yield
