"""An unreachable PostgreSQL fails the postgres tests loudly unless skipping was asked for."""

from __future__ import annotations

import pytest

from tests.fixtures import postgres

DEAD_DSN = "postgresql://postgres@127.0.0.1:1/postgres"


def test_unreachable_server_fails_with_the_fix(monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_TEST_PG_DSN", DEAD_DSN)
    monkeypatch.delenv("ERPSYNC_SKIP_PG", raising=False)
    with pytest.raises(pytest.fail.Exception, match="unreachable at .*127.0.0.1:1.*ERPSYNC_SKIP_PG=1"):
        postgres._admin_connect()


def test_unreachable_server_skips_when_asked(monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_TEST_PG_DSN", DEAD_DSN)
    monkeypatch.setenv("ERPSYNC_SKIP_PG", "1")
    with pytest.raises(pytest.skip.Exception):
        postgres._admin_connect()
