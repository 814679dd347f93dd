"""Fixtures of the conformance suite: each connector with its test server, started ONCE.

``erp_driver`` runs every ERP check over the sandbox ERP (over HTTP, the session sandbox of
tests/fixtures/sandbox.py) and Tryton; ``store_driver`` over the sandbox storefront and Vendure.
Tryton and Vendure are one real pair for the whole session (clones of the e2e template
databases, realsys.start_pair as tests/e2e does), so the suite pays their start-up once; the
checks make their own uniquely named records and never rely on a fresh database. The real
pair's parameters carry the ``e2e`` marker, like tests/e2e.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erpsync.connectors.registry import build_erp, build_storefront
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from tests.conformance.drivers import (
    SandboxErpDriver,
    SandboxStoreDriver,
    TrytonErpDriver,
    VendureStoreDriver,
)
from tests.e2e.conftest import real_templates, realsys  # noqa: F401 - the session fixture, shared
from tests.fixtures.sandbox import TEST_RETRY, TEST_SEED, TEST_TIMEOUT

PAGE = 3  # small pages: every listing crosses page boundaries


@pytest.fixture(scope="session")
def conformance_pair(real_templates: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # noqa: F811
    tag = f"{os.getpid()}"
    dbs = (f"erpsync_conf_tryton_{tag}", f"erpsync_conf_vendure_{tag}")
    for template, db in zip(real_templates, dbs, strict=True):
        realsys.clone_db(template, db)
    pair = None
    try:
        pair = realsys.start_pair(*dbs, log_dir=Path(tmp_path_factory.mktemp("conformance-logs")))
        yield pair
    finally:
        if pair is not None:
            pair.stop()
        for db in dbs:
            realsys.drop_db(db)


@pytest.fixture(scope="session")
def conformance_sandbox(sandbox: Any) -> Any:
    sandbox.reset(**TEST_SEED)
    sandbox.clear_faults()
    return sandbox


def _real(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    return request.getfixturevalue("conformance_pair").connections()[name]


@pytest.fixture(params=["sandbox", pytest.param("tryton", marks=pytest.mark.e2e)])
def erp_driver(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "sandbox":
        sb = request.getfixturevalue("conformance_sandbox")
        adapter = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=TEST_TIMEOUT, page_size=PAGE,
                                    retry=TEST_RETRY)
        driver: Any = SandboxErpDriver(adapter, sb)
    else:
        c = _real(request, "erp_default")
        adapter = build_erp(c["extra"]["adapter"], c["host"], c["login"], c["password"],
                            {**c["extra"], "page_size": PAGE})
        driver = TrytonErpDriver(adapter)
    try:
        yield driver
    finally:
        if request.param == "sandbox":
            request.getfixturevalue("conformance_sandbox").clear_faults()
        adapter.http.close()


@pytest.fixture(params=["sandbox", pytest.param("vendure", marks=pytest.mark.e2e)])
def store_driver(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "sandbox":
        sb = request.getfixturevalue("conformance_sandbox")
        adapter = SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=TEST_TIMEOUT, page_size=PAGE,
                                           retry=TEST_RETRY)
        driver: Any = SandboxStoreDriver(adapter, sb)
    else:
        c = _real(request, "storefront_default")
        adapter = build_storefront(c["extra"]["adapter"], c["host"], c["password"], {**c["extra"], "page_size": PAGE})
        driver = VendureStoreDriver(adapter)
    try:
        yield driver
    finally:
        if request.param == "sandbox":
            request.getfixturevalue("conformance_sandbox").clear_faults()
        adapter.http.close()
