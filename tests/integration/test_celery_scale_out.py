"""Scale-out on Airflow's CeleryExecutor, for real (issue 22): the stack `make up-celery` runs
(scheduler, DAG processor, API server and two `airflow celery worker` processes; the metadata DB
and the state store on PostgreSQL, Redis as the broker) against the test sandbox.

One stack for the module (starting it is most of the cost). The test runs ``orders_sync``,
``inventory_sync`` and ``customers_sync`` at once across the two workers (one task slot each, so
both take work) against an ERP that answers 429 beyond the rate its Connection publishes, and
SIGKILLs the worker (with its task processes: the machine is lost) that is writing orders, once
some of them are in the ERP and some are not. The scheduler notices the silent task (its heartbeat
stops), retries it, and the other worker finishes the batch. Counted from the sandbox's own
records over HTTP: every paid order in the ERP exactly once (0 duplicated, 0 lost), no 429, and
the ERP's requests within rps x time + burst: the rate budget lives in the shared state store, not
in a worker. Then, on the same stack: a real ``airflow backfill create`` over three past
intervals of orders_sync (each read once, the cursor untouched), and the ERP's breaker opened
from outside the workers holding back tasks on both of them.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from benchmarks._celery_stack import Stack, celery_env
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.reliability.budget import BURST_SECONDS, LATE_SECONDS
from erpsync.state import StateStore
from tests.dags import airflow_home
from tests.fixtures.sandbox import TEST_RETRY, TEST_SEED
from tests.integration.test_flows_sandbox import assert_every_paid_order_once, paid_orders

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.slow]

REPO = airflow_home.REPO
FLOWS = ("customers_sync", "inventory_sync", "orders_sync")
#: the ERP's published rate (Connection extra ``rps``) and the limit the sandbox enforces (429 beyond)
RPS = 8
#: small batches: enough orders that writing them takes seconds at RPS, so a worker dies mid-batch
SEED = {"seed": 22, "skus": 20, "locations": 3, "customers": 30, "orders": 36}
WORKERS = ("erpsync-worker-1", "erpsync-worker-2")
#: Redis DB 13 of the local server (`make up-celery` uses 12); the queue is the run's own too
BROKER_URL = "redis://127.0.0.1:6379/13"
#: a task whose heartbeat stops for this long is failed by the scheduler (then retried)
HEARTBEAT_TIMEOUT = 20


def _psycopg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _connections(sb: Any, state_url: str) -> dict[str, str]:
    import json

    erp = {"conn_type": "erpsync_erp", "host": "127.0.0.1", "port": int(sb.erp_url.rsplit(":", 1)[1]),
           "login": sb.erp_user, "password": sb.erp_password,
           "extra": {"adapter": "sandbox", "rps": RPS, "concurrency": 4, "sale_warehouse": "MAIN",
                     # an opened breaker stays open for the module (the last test opens it)
                     "breaker_cooldown_seconds": 900}}
    store = {"conn_type": "erpsync_storefront", "host": "127.0.0.1", "port": int(sb.storefront_url.rsplit(":", 1)[1]),
             "password": sb.token, "extra": {"adapter": "sandbox", "rps": 100, "concurrency": 4}}
    return {"AIRFLOW_CONN_ERP_DEFAULT": json.dumps(erp), "AIRFLOW_CONN_STOREFRONT_DEFAULT": json.dumps(store),
            "AIRFLOW_CONN_ERPSYNC_STATE": json.dumps({"conn_type": "erpsync_state", "host": state_url})}


@pytest.fixture(scope="module")
def stack(sandbox: Any, pg_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import redis

    try:  # the broker: the machine's Redis (apt-get install redis-server)
        redis.Redis.from_url(BROKER_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"the Celery broker {BROKER_URL} does not answer ({exc}): start Redis", pytrace=False)
    sandbox.reset(**SEED)
    sandbox.clear_faults()
    root = tmp_path_factory.mktemp("celery")
    logs = root / "logs"
    for d in ("airflow", "dags", "logs"):
        (root / d).mkdir()
    for flow in FLOWS:  # the three DAGs only: less for the DAG processor to parse
        (root / "dags" / f"{flow}.py").symlink_to(REPO / "dags" / f"{flow}.py")
    meta_url, state_url = pg_database(), pg_database()
    with StateStore.from_url(state_url) as s:
        s.migrate()
    env = celery_env(root, meta_url, state_url, _connections(sandbox, state_url), broker_url=BROKER_URL,
                     queue_prefix="erpsync-test-", drop=("AIRFLOW", "ERPSYNC_TEST_AIRFLOW"), extra={
                         "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                         "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"})
    stack = Stack(env=env, meta_dsn=_psycopg_dsn(meta_url), logs=logs, state_url=state_url, fail=pytest.fail)
    try:
        stack.boot(WORKERS, FLOWS)
        yield stack
    finally:
        stack.stop()
        sandbox.clear_faults()
        sandbox.reset(**TEST_SEED)


def _erp_requests(stats: dict[str, Any]) -> int:
    """Requests a sandbox system served to erpsync (the test's own /_admin calls left out)."""
    return sum(sum(v.values()) for k, v in stats["requests"].items() if "/_admin" not in k)


def _manual_runs_done(stack: Stack) -> bool:
    """The triggered run of each flow has finished (scheduled runs keep coming every minute)."""
    rows = stack.sql("SELECT state FROM dag_run WHERE dag_id = ANY(%s) AND run_type = 'manual'", list(FLOWS))
    return len(rows) == len(FLOWS) and all(state in ("success", "failed") for (state,) in rows)


def test_three_flows_on_two_celery_workers_one_killed_mid_batch(stack: Stack, sandbox: Any) -> None:
    sb = sandbox
    sb.set_faults("erp", rate_limit={"rps": RPS, "retry_after": 1})
    erp = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=5, retry=TEST_RETRY)
    sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=5, retry=TEST_RETRY)
    paid = paid_orders(sf)
    assert len(paid) >= 10, "the seed must have enough paid orders for a batch to be cut in the middle"
    t0 = time.monotonic()
    before = sb.stats("erp")
    base_orders = before["sales_orders"]
    triggers = [subprocess.Popen(["airflow", "dags", "trigger", flow], env=stack.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, cwd=stack.logs) for flow in FLOWS]
    for p in triggers:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    stack.sql("UPDATE dag SET is_paused = false WHERE dag_id = ANY(%s)", list(FLOWS))

    # --- the worker writing orders dies once some are in the ERP and some are not: the try seen
    # running has written at least one order since it was first seen, and orders remain
    first_seen: dict[tuple, int] = {}

    def mid_batch() -> tuple[str, str, int] | None:
        rows = stack.sql("SELECT hostname, run_id, try_number FROM task_instance WHERE dag_id = 'orders_sync' "
                         "AND task_id = 'sync_orders' AND state = 'running' AND hostname <> ''")
        written = sb.stats("erp")["sales_orders"] - base_orders
        if not rows:
            return None
        seen = first_seen.setdefault(rows[0], written)
        return rows[0] if seen < written < len(paid) else None

    killed_host, killed_run, killed_try = stack.wait("orders_sync writing its batch", mid_batch, 300, step=0.3)
    assert killed_host in WORKERS, killed_host
    written_at_kill = sb.stats("erp")["sales_orders"] - base_orders
    stack.kill_tree(killed_host)
    survivor = next(w for w in WORKERS if w != killed_host)

    # --- the scheduler fails the silent try, retries it, and the other worker finishes the batch
    def retried() -> bool:
        rows = stack.sql("SELECT state, try_number, hostname FROM task_instance WHERE dag_id = 'orders_sync' "
                         "AND task_id = 'sync_orders' AND run_id = %s", killed_run)
        return bool(rows) and rows[0][0] == "success"

    stack.wait("the killed orders_sync try retried to success", retried, 360, step=2)
    stack.wait("the triggered run of each flow finished", lambda: _manual_runs_done(stack), 360, step=2)
    window = time.monotonic() - t0
    after = sb.stats("erp")
    sb.clear_faults("erp")

    state, try_number, host = stack.sql(
        "SELECT state, try_number, hostname FROM task_instance WHERE dag_id = 'orders_sync' "
        "AND task_id = 'sync_orders' AND run_id = %s", killed_run)[0]
    assert (state, host) == ("success", survivor) and try_number > killed_try, (state, try_number, host)
    assert 0 < written_at_kill < len(paid)

    # both workers ran the flows' tasks (one slot each: the three flows were spread over them)
    # (the killed try is in task_instance_history, on the killed worker)
    tries = stack.sql("SELECT hostname, try_number FROM task_instance_history WHERE dag_id = 'orders_sync' "
                      "AND task_id = 'sync_orders' AND run_id = %s", killed_run)
    assert (killed_host, killed_try) in tries, tries
    hosts = {h for (h,) in stack.sql(
        "SELECT hostname FROM task_instance WHERE dag_id = ANY(%s) AND task_id LIKE 'sync_%%' AND hostname <> '' "
        "UNION SELECT hostname FROM task_instance_history WHERE dag_id = ANY(%s) AND task_id LIKE 'sync_%%'",
        list(FLOWS), list(FLOWS))}
    assert hosts == set(WORKERS), hosts
    failed = stack.sql("SELECT dag_id, run_id, state FROM dag_run WHERE dag_id = ANY(%s) AND state = 'failed' "
                       "OR (run_type = 'manual' AND state <> 'success')", list(FLOWS))
    assert failed == [], f"{failed}\n{stack.tail()}"

    # 0 duplicated, 0 lost: counted from the sandbox's own records
    assert after["duplicate_external_refs"] - before["duplicate_external_refs"] == 0
    with StateStore.from_url(stack.state_url) as store:
        assert store.list_dead_letters(flow="orders_sync") == []
        assert_every_paid_order_once(store, erp, sf)
    assert after["sales_orders"] - base_orders == len(paid)
    for oid in paid:
        assert erp.find_sales_order(oid) is not None, oid

    # one rate budget for both workers: the ERP never had to refuse, and got at most rps x time + burst
    rate_limited = after["faults_injected"].get("rate_limit", 0) - before["faults_injected"].get("rate_limit", 0)
    requests = _erp_requests(after) - _erp_requests(before)
    assert requests > 3 * RPS, requests  # enough traffic for the limit to matter
    assert rate_limited == 0, f"the ERP answered 429 {rate_limited} time(s): the workers overran the budget"
    assert requests <= RPS * window + RPS * (BURST_SECONDS + LATE_SECONDS) + 4, (requests, window)


def test_a_real_backfill_reads_each_interval_once_and_leaves_the_cursor(stack: Stack, sandbox: Any) -> None:
    """`airflow backfill create` over three past intervals of orders_sync, on the running stack:
    one backfill run per interval, each reading exactly its slice ``[start - lookback, end)`` of
    the store's orders once (a single try), none written twice, the live cursor not moved."""
    import datetime as dt
    import json

    sb = sandbox
    erp = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=5, retry=TEST_RETRY)
    sf = SandboxStorefrontAdapter(sb.storefront_url, sb.token, timeout=5, retry=TEST_RETRY)
    orders = list(sf.list_orders())
    latest = max(dt.datetime.fromisoformat(o["updated_at"].replace("Z", "+00:00")) for o in orders)
    # three minutes, the last one holding the store's latest change
    end = latest.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=3)
    # past intervals only (the last change may be the live runs' own write-back a moment ago)
    time.sleep(max(0.0, (end - dt.datetime.now(dt.UTC)).total_seconds() + 1))
    with StateStore.from_url(stack.state_url) as store:
        cursor = store.get_cursor("orders_sync")
    assert cursor is not None, "the live runs of the first test set the cursor"
    before = sb.stats("erp")
    stack.sql("UPDATE dag SET is_paused = false WHERE dag_id = 'orders_sync'")  # backfills run on unpaused DAGs
    stack.run("backfill", "create", "--dag-id", "orders_sync", "--from-date", start.isoformat(),
              "--to-date", (end - dt.timedelta(seconds=1)).isoformat(), "--reprocess-behavior", "completed")

    def backfill_runs() -> list[tuple] | None:
        rows = stack.sql("SELECT run_id, data_interval_start, data_interval_end, state FROM dag_run "
                         "WHERE dag_id = 'orders_sync' AND run_type = 'backfill' ORDER BY data_interval_start")
        return rows if len(rows) == 3 and all(r[3] in ("success", "failed") for r in rows) else None

    runs = stack.wait("the three backfill runs finished", backfill_runs, 300, step=2)
    assert [(r[1], r[2]) for r in runs] == [(start + i * dt.timedelta(minutes=1), start + (i + 1) * dt.timedelta(minutes=1))
                                            for i in range(3)], runs
    assert [r[3] for r in runs] == ["success"] * 3, f"{runs}\n{stack.tail()}"
    tries = stack.sql("SELECT run_id, try_number FROM task_instance WHERE dag_id = 'orders_sync' "
                      "AND task_id = 'sync_orders' AND run_id = ANY(%s)", [r[0] for r in runs])
    assert sorted(t for _r, t in tries) == [1, 1, 1], tries  # each interval read by one try
    after = sb.stats("erp")

    with StateStore.from_url(stack.state_url) as store:
        assert store.get_cursor("orders_sync") == cursor, "a backfill moved the live cursor"
        metrics = {m.run_id: m for m in store.last_runs("orders_sync", limit=50)}
    lookback = dt.timedelta(minutes=5)
    read_total = 0
    for run_id, interval_start, interval_end, _state in runs:
        metric = metrics[run_id]
        extra = metric.extra if isinstance(metric.extra, dict) else json.loads(metric.extra)
        in_slice = list(sf.list_orders(updated_since=interval_start - lookback, updated_before=interval_end))
        assert extra["read"] == len(in_slice), (run_id, extra, len(in_slice))
        assert metric.done == 0, (run_id, metric)  # all synced by the live runs: the ledger skips them
        read_total += extra["read"]
    assert read_total > 0, "the intervals hold orders: the backfill had something to read"
    assert after["sales_orders"] == before["sales_orders"]
    assert after["duplicate_external_refs"] == before["duplicate_external_refs"] == 0
    assert erp.find_sales_order(next(iter(paid_orders(sf)))) is not None


def test_a_breaker_opened_anywhere_holds_back_both_workers(stack: Stack, sandbox: Any) -> None:
    """The ERP's circuit breaker is one row in the shared state store. Opened from outside the
    workers (this test meets the failures, as a task on a third host would), the flows' tasks on
    both workers send the ERP nothing while it is open (the sandbox's own request count)."""
    import datetime as dt

    from erpsync.reliability.breaker import BreakerConfig, CircuitBreaker

    sb = sandbox
    t0 = time.monotonic()
    for name in WORKERS:  # the first test killed one: both must be up, and consuming the queue
        if stack.procs[name].poll() is not None:  # before the runs are triggered (else the one
            stack.start_worker(name)  # already up takes every task, the other waits for a later run)
            print(f"breaker test: {name} restarted, ready in {time.monotonic() - t0:.1f} s")
    with StateStore.from_url(stack.state_url) as store:
        breaker = CircuitBreaker(store, "erp", BreakerConfig(threshold=3, cooldown_seconds=900))
        for _ in range(3):
            breaker.record_failure("test: the ERP is down")
        assert breaker.state().state == "open"
    opened = dt.datetime.now(dt.UTC)
    before, store_before = sb.stats("erp"), _erp_requests(sb.stats("storefront"))
    stack.sql("UPDATE dag SET is_paused = false WHERE dag_id = ANY(%s)", list(FLOWS))
    triggers = [subprocess.Popen(["airflow", "dags", "trigger", flow], env=stack.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, cwd=stack.logs)
                for flow in ("customers_sync", "orders_sync")]
    for p in triggers:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]

    def ended_on_both() -> set[str] | None:
        rows = stack.sql(
            "SELECT hostname FROM task_instance WHERE dag_id = ANY(%s) AND task_id LIKE 'sync_%%' "
            "AND start_date > %s AND end_date IS NOT NULL "
            "UNION SELECT hostname FROM task_instance_history WHERE dag_id = ANY(%s) AND task_id LIKE 'sync_%%' "
            "AND start_date > %s AND end_date IS NOT NULL", list(FLOWS), opened, list(FLOWS), opened)
        hosts = {h for (h,) in rows}
        return hosts if hosts >= set(WORKERS) else None

    print(f"breaker test: runs triggered at {time.monotonic() - t0:.1f} s")
    stack.wait("tries of the flows ended on both workers while the breaker was open", ended_on_both, 300, step=1)
    print(f"breaker test: tries ended on both workers at {time.monotonic() - t0:.1f} s")
    after = sb.stats("erp")
    with StateStore.from_url(stack.state_url) as store:
        assert CircuitBreaker(store, "erp").state().state == "open"
    assert _erp_requests(after) - _erp_requests(before) == 0, "a worker called the ERP through an open breaker"
    # they did run: they read the storefront meanwhile
    assert _erp_requests(sb.stats("storefront")) > store_before
