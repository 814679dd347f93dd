"""Real Tryton and Vendure for the end-to-end tests (marker ``e2e``).

Session: install both (pinned, cached under var/real-systems: a second run skips it) and build
their template databases once (real-systems/realsys.py). Per test: a fresh clone of each database
(``createdb -T``) and both servers started on it, in parallel, on free ports. Anything that
cannot be installed or started fails the test loudly (RealSystemsError with the log), never skips.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from erpsync.connectors.registry import build_erp, build_storefront
from erpsync.connectors.tryton import TrytonErpAdapter
from erpsync.connectors.vendure import VendureStorefrontAdapter
from erpsync.state import StateStore

ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count(1)


def _load_realsys() -> ModuleType:
    path = ROOT / "real-systems" / "realsys.py"
    spec = importlib.util.spec_from_file_location("erpsync_realsys", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


realsys = _load_realsys()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def real_templates() -> tuple[str, str]:
    """Install (cached) and initialise (once) both systems; returns the template database names."""
    started = time.monotonic()
    templates = realsys.init()
    print(f"\n[e2e] real systems ready in {time.monotonic() - started:.1f}s: {templates}")
    return templates


@pytest.fixture
def real(real_templates: tuple[str, str], tmp_path: Path) -> Iterator[Any]:
    """Both servers on fresh clones of the template databases, stopped and dropped afterwards."""
    tag = f"{os.getpid()}_{next(_counter)}"
    dbs = (f"erpsync_e2e_tryton_{tag}", f"erpsync_e2e_vendure_{tag}")
    for template, db in zip(real_templates, dbs, strict=True):
        realsys.clone_db(template, db)
    pair = None
    try:
        pair = realsys.start_pair(*dbs, log_dir=tmp_path / "logs")
        yield pair
    finally:
        if pair is not None:
            pair.stop()
        for db in dbs:
            realsys.drop_db(db)


@pytest.fixture
def connections(real: Any) -> dict[str, dict[str, Any]]:
    """The Airflow Connections (JSON form) pointing at the real pair: the only difference from the sandbox."""
    return real.connections()


@pytest.fixture
def erp(connections: dict[str, dict[str, Any]]) -> TrytonErpAdapter:
    c = connections["erp_default"]
    adapter = build_erp(c["extra"]["adapter"], c["host"], c["login"], c["password"], c["extra"])
    assert isinstance(adapter, TrytonErpAdapter)
    adapter.ping()
    return adapter


@pytest.fixture
def storefront(connections: dict[str, dict[str, Any]]) -> VendureStorefrontAdapter:
    c = connections["storefront_default"]
    adapter = build_storefront(c["extra"]["adapter"], c["host"], c["password"], c["extra"])
    assert isinstance(adapter, VendureStorefrontAdapter)
    adapter.ping()
    return adapter


@pytest.fixture
def store() -> Iterator[StateStore]:
    s = StateStore.from_url()
    s.migrate()
    yield s
    s.close()
