"""Two orders_sync partitions at the same time on a fresh install, both needing the shared guest
account (``WEB-GUEST``), against the sandbox: one guest customer in the ERP.

Before the ledger's claims both partitions looked the account up, found nothing, and created it:
two guest accounts, and the docs said to run the first sync with one partition. Now the key
``customer:guest-account:WEB-GUEST`` is claimed by one writer; the other waits for its result
(``flows.base.idempotent_write``). The ERP here ignores idempotency keys (as many do) and takes a
second per customer create, so nothing but the claim keeps the two partitions apart.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.flows.orders import Partition, partition_of, run_partition
from erpsync.rules.guests import shared_guest_account
from erpsync.state import StateStore
from tests.fixtures.sandbox import TEST_RETRY, TEST_TIMEOUT
from tests.integration.test_flows_sandbox import assert_every_paid_order_once, ctx_for

pytestmark = pytest.mark.integration


def _adapters(erp_url: str, user: str, password: str, sf_url: str, token: str) -> tuple[Any, Any]:
    return (SandboxErpAdapter(erp_url, user, password, timeout=TEST_TIMEOUT, retry=TEST_RETRY),
            SandboxStorefrontAdapter(sf_url, token, timeout=TEST_TIMEOUT, retry=TEST_RETRY))


def _partition(url: str, erp_url: str, user: str, password: str, sf_url: str, token: str, index: int,
               start: Any, out: Any) -> None:
    """One mapped ``sync_orders`` task: partition ``index`` of 2, in a process of its own."""
    erp, sf = _adapters(erp_url, user, password, sf_url, token)
    with StateStore.from_url(url) as store:
        ctx = ctx_for("orders_sync", store, erp, sf, f"run-1#p{index}")
        start.wait(60)
        try:
            out.put((index, run_partition(ctx, Partition(index, 2))[0].done))
        except Exception as exc:  # the parent reports it
            out.put((index, f"{type(exc).__name__}: {exc}"))


def test_two_partitions_on_a_fresh_install_create_one_guest_account(fresh: Any, tmp_path: Path) -> None:
    fresh.reset(seed=7, skus=40, customers=20, orders=1)
    fresh.admin("storefront", "POST", "orders/generate", {"count": 16, "guest_share": 1.0, "seed": 5})

    erp, sf = _adapters(fresh.erp_url, fresh.erp_user, fresh.erp_password, fresh.storefront_url, fresh.token)
    guests = [raw for raw in sf.list_orders() if not (raw.get("customer") or {}).get("id")]
    assert {partition_of(raw, 2) for raw in guests} == {0, 1}  # both partitions need the account
    account = shared_guest_account("WEB-GUEST")
    assert erp.find_customers(email=account.email) == []  # a fresh install: no guest account yet
    # an ERP without idempotency keys, slow to create a customer: both partitions are in the window
    fresh.set_faults("erp", ignore_idempotency_keys=True, latency_ms=1000, paths=["/api/customers"],
                     methods=["POST"])

    url = f"sqlite:///{tmp_path / 'state.db'}"  # a fresh state store: no ledger, no xref
    with StateStore.from_url(url) as store:
        store.migrate()
    # two processes, as Airflow runs two mapped tasks (each its own adapters and store)
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(2), spawn.Queue()
    where = (url, fresh.erp_url, fresh.erp_user, fresh.erp_password, fresh.storefront_url, fresh.token)
    procs = [spawn.Process(target=_partition, args=(*where, i, start, out)) for i in range(2)]
    for p in procs:
        p.start()
    answers = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    fresh.clear_faults("erp")

    assert sorted(answers) == [0, 1] and all(isinstance(done, int) for done in answers.values()), answers
    assert all(done > 0 for done in answers.values()), answers  # both partitions wrote guest orders
    accounts = erp.find_customers(email=account.email)
    assert len(accounts) == 1, f"{len(accounts)} guest accounts in the ERP: {accounts}"
    with StateStore.from_url(url) as store:
        row = store.ledger_get(f"customer:{account.external_id}")
        assert row is not None and (row.status, row.claimed_by) == ("done", None)
        assert store.get_xref("erp", "customer", account.external_id).internal_id == row.result_ref  # type: ignore[union-attr]
        assert_every_paid_order_once(store, erp, sf)
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
