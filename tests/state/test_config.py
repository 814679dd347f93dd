"""Settings come from the environment at call time."""

from __future__ import annotations

from pathlib import Path

import pytest

from erpsync import config
from erpsync.errors import ConfigError


def test_home_defaults_to_var_under_cwd(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ERPSYNC_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config.erpsync_home() == tmp_path / "var"


def test_state_url_defaults_to_sqlite_under_home_and_creates_it(monkeypatch, tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    monkeypatch.setenv("ERPSYNC_HOME", str(home))
    assert config.state_url() == f"sqlite:///{home / 'state.db'}"
    assert home.is_dir()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("postgres://u:p@db:5432/erp", "postgresql+psycopg://u:p@db:5432/erp"),
        ("postgresql://u@db/erp", "postgresql+psycopg://u@db/erp"),
        ("postgresql+psycopg://u@db/erp", "postgresql+psycopg://u@db/erp"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_state_url_from_env_is_normalised(monkeypatch, raw: str, expected: str) -> None:
    monkeypatch.setenv("ERPSYNC_STATE_URL", raw)
    assert config.state_url() == expected


def test_audit_retention(monkeypatch) -> None:
    monkeypatch.delenv("ERPSYNC_AUDIT_RETENTION_DAYS", raising=False)
    assert config.audit_retention_days() == 90
    monkeypatch.setenv("ERPSYNC_AUDIT_RETENTION_DAYS", "30")
    assert config.audit_retention_days() == 30
    monkeypatch.setenv("ERPSYNC_AUDIT_RETENTION_DAYS", "thirty")
    with pytest.raises(ConfigError, match="ERPSYNC_AUDIT_RETENTION_DAYS"):
        config.audit_retention_days()


def test_audit_redact_keys(monkeypatch) -> None:
    monkeypatch.setenv("ERPSYNC_AUDIT_REDACT_KEYS", "tax_id, vat_number,")
    assert config.audit_redact_keys() == {"tax_id", "vat_number"}
