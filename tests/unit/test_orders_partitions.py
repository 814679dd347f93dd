"""orders_sync split into partitions (issue 22: one backlog written by several Celery workers).

The rule: an order belongs to the partition its lane (its customer, a guest's e-mail, else the
order) hashes to; every order is in exactly one partition, the same one in every process, all
orders of one customer together; one partition is the whole run, as before. Partitions run over
one state store write every order exactly once, take only their own rows of the outbox, and leave
the cursor to ``save_cursor`` (moved once all of them succeeded).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from flow_doubles import FakeErp, FakeStorefront, make_ctx
from test_flows_customers import sf_customer
from test_flows_orders import sf_order

from erpsync.errors import ConfigError, TransientError
from erpsync.flows import orders
from erpsync.flows.orders import Partition, configured_partitions, partition_of
from erpsync.flows.specs import SPECS
from erpsync.state import StateStore

FLOW = "orders_sync"
CUSTOMERS = [sf_customer(n) for n in range(1, 9)]


def backlog(count: int = 24) -> list[dict]:
    """Orders of eight customers and of guests, changed one minute apart."""
    out = []
    for n in range(1, count + 1):
        customer = CUSTOMERS[n % len(CUSTOMERS)] if n % 3 else None  # every third a guest
        out.append(sf_order(n, customer=customer, updated=f"2026-11-23T10:{n:02d}:00Z"))
    return out


@pytest.fixture
def store(tmp_path) -> StateStore:
    s = StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def erp() -> FakeErp:
    e = FakeErp()
    e.add_item("SKU-000001", "ITEM-000001")
    e.add_item("SKU-000002", "ITEM-000002")
    return e


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_order_is_in_exactly_one_partition(count: int) -> None:
    records = backlog(60)
    owners = {r["id"]: [i for i in range(count) if Partition(i, count).owns(r)] for r in records}
    assert all(len(found) == 1 for found in owners.values()), owners
    assert all(found == [partition_of(r, count)] for r, found in zip(records, owners.values(), strict=True))
    if count > 1:  # 60 orders of 8 customers and 20 guests: no partition is left empty
        assert {found[0] for found in owners.values()} == set(range(count))


def test_one_customer_s_orders_are_in_one_partition() -> None:
    records = backlog(60)
    by_customer: dict[str, set[int]] = {}
    for r in records:
        if r["customer"]:
            by_customer.setdefault(r["customer"]["id"], set()).add(partition_of(r, 4))
    assert len(by_customer) == len(CUSTOMERS) and all(len(p) == 1 for p in by_customer.values())
    # a change of the order (paid later, a new total) does not move it
    first = records[1]
    assert partition_of({**first, "financial_status": "refunded", "updated_at": "2026-12-01T00:00:00Z"}, 4) \
        == partition_of(first, 4)


def test_the_partition_is_the_same_in_every_process() -> None:
    """A digest, not Python's salted hash(): two workers (other hash seeds) agree."""
    records = backlog(30)
    here = [partition_of(r, 3) for r in records]
    code = ("import json, sys\nfrom erpsync.flows.orders import partition_of\n"
            "print(json.dumps([partition_of(r, 3) for r in json.load(sys.stdin)]))")
    import json

    for seed in ("1", "4242"):
        done = subprocess.run([sys.executable, "-c", code], input=json.dumps(records), capture_output=True,
                              text=True, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=60, check=True)
        assert json.loads(done.stdout) == here


def test_the_count_is_declared_or_configured_and_checked() -> None:
    assert SPECS[FLOW].partitions == 1  # the default: one task, as before
    assert configured_partitions(1, None) == 1 and configured_partitions(1, " ") == 1
    assert configured_partitions(1, "4") == 4
    for bad in ("0", "65", "two", "-1", "1.5"):
        with pytest.raises(ConfigError, match="ERPSYNC_PARTITIONS_ORDERS_SYNC"):
            configured_partitions(1, bad)
    for index, count in ((2, 2), (-1, 2), (0, 0), (0, 65)):
        with pytest.raises(ConfigError, match="partition"):
            Partition(index, count)


def test_one_partition_is_today_s_run(store: StateStore, erp: FakeErp) -> None:
    sf = FakeStorefront(CUSTOMERS, backlog(12))
    summary, high = orders.run_partition(make_ctx(store, FLOW, erp, sf), Partition(0, 1))
    assert high is None  # run() moved the cursor itself, as always
    assert summary.done == summary.read == 12 and len(erp.orders) == 12
    assert store.get_cursor(FLOW) == "2026-11-23T10:12:00Z"
    assert Partition(0, 1).run_id("r1") == "r1"


def test_partitions_write_each_order_once_and_the_cursor_waits_for_all(store: StateStore, erp: FakeErp) -> None:
    records = backlog(24)
    sf = FakeStorefront(CUSTOMERS, records)
    count = 3
    results = []
    for index in range(count):
        part = Partition(index, count)
        results.append(orders.run_partition(make_ctx(store, FLOW, erp, sf, run_id=part.run_id("r1")), part))
        assert store.get_cursor(FLOW) is None  # no partition moves it on its own
    assert sum(s.done for s, _ in results) == sum(s.read for s, _ in results) == len(records)
    assert sorted(o["external_ref"] for o in erp.orders.values()) == sorted(r["id"] for r in records)
    assert erp.calls["create_sales_order"] == len(records)
    for index, (summary, _) in enumerate(results):  # each wrote exactly its own share
        assert summary.done == sum(partition_of(r, count) == index for r in records)
    assert {high for _, high in results} == {"2026-11-23T10:24:00Z"}  # every partition read the same slice
    assert orders.save_cursor(make_ctx(store, FLOW, erp, sf), [h for _, h in results]) == "2026-11-23T10:24:00Z"
    # the next run reads from the cursor (minus the lookback): what it re-reads is not written twice
    again = [orders.run_partition(make_ctx(store, FLOW, erp, sf, run_id=f"r2#p{i}"), Partition(i, count))[0]
             for i in range(count)]
    assert sum(s.done for s in again) == 0 and sum(s.skipped for s in again) == sum(s.read for s in again) == 6
    assert erp.calls["create_sales_order"] == len(records)


def test_a_partition_drains_only_its_own_outbox_rows(store: StateStore, erp: FakeErp) -> None:
    records = backlog(12)
    sf = FakeStorefront(CUSTOMERS, records)
    first = records[0]
    mine = partition_of(first, 2)
    other = Partition(1 - mine, 2)
    erp.fail("create_sales_order", TransientError("503", system="erp", status=503))  # the first write
    with pytest.raises(TransientError):  # its order waits in the outbox; the try fails to be retried
        orders.run_partition(make_ctx(store, FLOW, erp, sf, run_id="r1#p"), Partition(mine, 2))
    assert first["id"] not in {o["external_ref"] for o in erp.orders.values()}
    # the other partition leaves that row alone and succeeds
    summary, _ = orders.run_partition(make_ctx(store, FLOW, erp, sf, run_id="r1#q"), other)
    assert summary.drained == 0 and summary.queued == 0
    assert first["id"] not in {o["external_ref"] for o in erp.orders.values()}
    # the retry of the owner drains it first
    summary, _ = orders.run_partition(make_ctx(store, FLOW, erp, sf, run_id="r1#p"), Partition(mine, 2))
    assert summary.drained == 1
    assert sorted(o["external_ref"] for o in erp.orders.values()) == sorted(r["id"] for r in records)
    assert erp.calls["create_sales_order"] == len(records) + 1  # the one failed try, then each once
