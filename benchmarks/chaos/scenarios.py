"""The chaos scenarios (see the package docstring). Each returns one :class:`ChaosResult` row."""

from __future__ import annotations

import copy
import datetime as dt
import logging
import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from erpsync.connectors.http import RetryPolicy
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.errors import MappingError, TransientError
from erpsync.flows import orders
from erpsync.flows.base import FlowContext
from erpsync.mappings.storefront_sandbox import order_from_storefront
from erpsync.model import OrderStatus
from erpsync.reliability import Outbox, RecordingNotifier
from erpsync.sandbox.launcher import Sandbox
from erpsync.state import StateStore

LOG = logging.getLogger("chaos.orders_sync")
FLOW = "orders_sync"
#: quick retries: the scenarios wait hundredths of a second where production waits seconds
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.005, multiplier=2.0, max_delay=0.05, max_retry_after=2.0)
PARAMS = {"breaker_threshold": 5, "breaker_cooldown_seconds": 60, "breaker_cache_seconds": 0.5}


#: why a scenario expects no dead letter at all (every scenario but the returns' credit memos)
NO_DEAD_LETTERS = ("0: the seeded records are all valid and every injected fault is transient (it ends), "
                   "so each record must be delivered; a dead letter here is a transient fault treated as "
                   "permanent (or a regression that dead-letters good records)")


@dataclass
class ChaosResult:
    scenario: str
    #: records that must reach the target: paid orders, customers, shipped packages, store returns
    expected: int = 0
    delivered: int = 0
    duplicated: int = 0
    lost: int = 0
    dead_letters: int = 0
    runs: int = 0
    seconds: float = 0.0
    notes: str = ""
    dl_reasons: dict[str, int] = field(default_factory=dict)
    #: dead letters the scenario's data must produce (exactly), and why; the rest is delivered:
    #: ``delivered == expected - expected_dead_letters``. A dead-lettered record is not lost, but
    #: it is not delivered either: a run that dead-letters good records fails here.
    expected_dead_letters: int = 0
    expected_dead_why: str = NO_DEAD_LETTERS
    #: dead letters that are not among the expected ones (record ids, a few)
    unexpected_dead: list[str] = field(default_factory=list)

    @property
    def orders(self) -> int:  # the column's name while the suite ran orders_sync only
        return self.expected

    @property
    def expected_delivered(self) -> int:
        return self.expected - self.expected_dead_letters

    def problems(self) -> list[str]:
        """What makes the scenario fail: duplicates, losses, dead letters other than the expected
        ones, deliveries other than the expected ones, a scenario's own check (notes FAILED)."""
        out = []
        if not self.expected:
            out.append("nothing expected: the scenario set up no records to deliver")
        if self.duplicated:
            out.append(f"{self.duplicated} duplicated")
        if self.lost:
            out.append(f"{self.lost} lost")
        if self.dead_letters != self.expected_dead_letters or self.unexpected_dead:
            out.append(f"{self.dead_letters} dead letters, expected {self.expected_dead_letters} "
                       f"({self.expected_dead_why}); unexpected e.g. {self.unexpected_dead[:5]}; "
                       f"reasons {self.dl_reasons}")
        if self.delivered != self.expected_delivered:
            out.append(f"{self.delivered} delivered, expected {self.expected_delivered}")
        if self.notes.startswith("FAILED"):
            out.append(self.notes)
        return out

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("dl_reasons")
        d.pop("expected_dead_why")
        d.pop("unexpected_dead")
        return d


class SimClock:
    """The store's clock: real time plus whatever the scenario has skipped ahead."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


class KeylessErp(SandboxErpAdapter):
    """The sandbox ERP as if it ignored ``Idempotency-Key``: no key is sent, so a write whose
    answer is lost is an unknown outcome and only the ledger + look-up by key prevent a duplicate."""

    def create_customer(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call("POST", "/api/customers", json=payload).body

    def update_customer(self, erp_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call("PATCH", f"/api/customers/{erp_id}", json=payload).body

    def create_sales_order(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call("POST", "/api/sales-orders", json=payload).body


def make_adapters(erp_url: str, sf_url: str, token: str, *, keyless: bool = False, user: str = "erpsync",
                  password: str = "erpsync-sandbox") -> tuple[SandboxErpAdapter, SandboxStorefrontAdapter]:
    cls = KeylessErp if keyless else SandboxErpAdapter
    erp = cls(erp_url, user, password, timeout=2.0, page_size=500, retry=FAST_RETRY)
    sf = SandboxStorefrontAdapter(sf_url, token, timeout=2.0, page_size=250, retry=FAST_RETRY)
    return erp, sf


def make_ctx(store: StateStore, erp: Any, sf: Any, run_id: str, notifier: Any = None, *,
             flow: str = FLOW) -> FlowContext:
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf,
                               params=dict(PARAMS), log=logging.getLogger(f"chaos.{flow}"), notifier=notifier,
                               run_type="manual")


def settle(store: StateStore, erp: Any, sf: Any, *, run_id: str, notifier: Any = None, max_runs: int = 40,
           tick: Callable[[], None] | None = None, flow: str = FLOW,
           run: Callable[[FlowContext], Any] = orders.run) -> int:
    """Run the flow (``run``, orders_sync unless told) like Airflow would (a transient failure -> a
    retry with the same run id) until a run ends with an empty outbox; ``tick`` runs between tries
    (e.g. one simulated minute)."""
    for n in range(1, max_runs + 1):
        try:
            run(make_ctx(store, erp, sf, run_id, notifier, flow=flow))
        except TransientError as exc:
            logging.getLogger(f"chaos.{flow}").info("run %s try %d failed transiently: %s", run_id, n, exc)
        else:
            if Outbox(store, flow).pending() == 0:
                return n
        if tick is not None:
            tick()
    return max_runs


# -- measuring --------------------------------------------------------------------------------

def expected_orders(sf: Any) -> set[str]:
    out = set()
    for raw in sf.list_orders():
        try:
            order = order_from_storefront(raw)
        except MappingError:
            continue
        if order.status is OrderStatus.PAID:
            out.add(order.external_id)
    return out


def erp_orders(erp: Any) -> Counter[str]:
    refs: Counter[str] = Counter()
    page = 1
    while True:
        body = erp._call("GET", "/api/sales-orders", params={"page": page, "page_size": 1000}).body
        refs.update(str(r.get("external_ref")) for r in body["data"])
        if not body.get("has_more"):
            return refs
        page += 1


def measure(name: str, sb: Sandbox, store: StateStore, erp: Any, sf: Any, *, runs: int, started: float,
            notes: list[str]) -> ChaosResult:
    sb.clear_faults()
    expected = expected_orders(sf)
    refs = erp_orders(erp)
    dead = {d.external_id: d.reason for d in store.list_dead_letters(flow=FLOW, limit=1_000_000)}
    queued = {i.external_id for i in Outbox(store, FLOW).items(status="queued", limit=1_000_000)}
    delivered = expected & set(refs)
    duplicated = sum(n - 1 for n in refs.values() if n > 1)
    erp_dups = sb.stats("erp").get("duplicate_external_refs", 0)
    if erp_dups != duplicated:
        notes.append(f"ERP counts {erp_dups} duplicate refs")
    lost = expected - delivered - set(dead)
    if queued:
        notes.append(f"{len(queued)} still queued")
    if lost:
        notes.append("lost e.g. " + ", ".join(sorted(lost)[:5]))
    reasons = Counter(r.split(":", 1)[0] for r in dead.values())
    if reasons:
        notes.append("dead letters: " + ", ".join(f"{r} x{n}" for r, n in reasons.most_common(3)))
    return ChaosResult(name, len(expected), len(delivered), max(duplicated, erp_dups), len(lost), len(dead), runs,
                       round(time.monotonic() - started, 1), "; ".join(notes), dict(reasons),
                       unexpected_dead=sorted(dead)[:5])  # orders_sync scenarios expect none


# -- scenarios ------------------------------------------------------------------------------------

def _seed(sb: Sandbox, n: int, seed: int) -> None:
    sb.clear_faults()
    sb.reset(seed=seed, skus=60, locations=2, customers=max(100, n // 4), orders=n)


def _store(workdir: Path, name: str, clock: SimClock | None = None) -> StateStore:
    path = workdir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = StateStore.from_url(f"sqlite:///{path}", clock=clock)
    store.migrate()
    return store


def commit_then_timeout(sb: Sandbox, workdir: Path, n: int, *, keyless: bool) -> ChaosResult:
    """30 % of ERP writes commit and never answer (the connection is dropped after the commit)."""
    name = "commit_then_timeout_30pct" + ("_keys_ignored" if keyless else "")
    started = time.monotonic()
    _seed(sb, n, seed=101)
    clock = SimClock()
    store = _store(workdir, name, clock)
    erp, sf = make_adapters(sb.erp_url, sb.storefront_url, sb.token, keyless=keyless)
    sb.set_faults("erp", seed=7, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.01},
                  methods=["POST", "PUT", "PATCH"])
    runs = settle(store, erp, sf, run_id="chaos-ctt", tick=lambda: clock.advance(60))
    injected = sb.stats("erp")["faults_injected"].get("commit_then_timeout", 0)
    notes = [f"{injected} writes committed without an answer"
             + (" (no Idempotency-Key sent: look-up by key)" if keyless else " (keys honoured)")]
    return measure(name, sb, store, erp, sf, runs=runs, started=started, notes=notes)


def erp_outage(sb: Sandbox, workdir: Path, n: int) -> ChaosResult:
    """A 10-minute ERP outage (simulated minutes) in the middle of order traffic."""
    name = "erp_outage_10min"
    started = time.monotonic()
    seeded = max(1, n // 3)
    _seed(sb, seeded, seed=202)
    clock = SimClock()
    store = _store(workdir, name, clock)
    mail = RecordingNotifier()
    erp, sf = make_adapters(sb.erp_url, sb.storefront_url, sb.token)
    runs = settle(store, erp, sf, run_id="minute-00", notifier=mail)
    per_minute = max(1, (n - seeded) // 12)
    sb.set_faults("erp", outage_seconds=3600)
    for minute in range(1, 13):
        if minute == 11:
            sb.clear_faults("erp")  # the ERP is back after ten minutes
        sb.admin("storefront", "POST", "orders/generate", {"count": per_minute, "seed": minute})
        runs += settle(store, erp, sf, run_id=f"minute-{minute:02d}", notifier=mail, max_runs=1)
        clock.advance(60)
    runs += settle(store, erp, sf, run_id="minute-13", notifier=mail, tick=lambda: clock.advance(60))
    opened = sum(1 for s, _ in mail.sent if "unreachable" in s)
    recovered = sum(1 for s, _ in mail.sent if "recovered" in s)
    drained = [i.external_id for i in Outbox(store, FLOW).items(limit=1_000_000)]
    refs = _order_numbers(erp)
    seq = [refs[x] for x in dict.fromkeys(drained) if x in refs]
    in_order = seq == sorted(seq)
    notes = [f"e-mails: {opened} opened, {recovered} recovered", f"{len(set(drained))} orders via the outbox, "
             f"drained {'in order' if in_order else 'OUT OF ORDER'}"]
    result = measure(name, sb, store, erp, sf, runs=runs, started=started, notes=notes)
    if (opened, recovered) != (1, 1) or not in_order:
        result.notes = "FAILED: " + result.notes
    return result


def _order_numbers(erp: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    page = 1
    while True:
        body = erp._call("GET", "/api/sales-orders", params={"page": page, "page_size": 1000}).body
        for r in body["data"]:
            out.setdefault(str(r.get("external_ref")), r["order_no"])
        if not body.get("has_more"):
            return out
        page += 1


def sigkill_mid_batch(sb: Sandbox, workdir: Path, n: int, kills: int = 3) -> ChaosResult:
    """The task process is killed with SIGKILL mid-batch (three times), then the task is rerun."""
    name = "sigkill_mid_batch"
    started = time.monotonic()
    _seed(sb, n, seed=303)
    store = _store(workdir, name)
    erp, sf = make_adapters(sb.erp_url, sb.storefront_url, sb.token)
    target = len(expected_orders(sf))
    # a share of writes commit and then hold their answer: a kill during the hold leaves a write
    # done in the ERP and pending in the ledger, the case the rerun must not duplicate
    sb.set_faults("erp", seed=5, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.2}, methods=["POST"])
    url = store.engine.url.render_as_string(hide_password=False)
    # a forked child is a task process of its own (killed for real), without paying the imports again
    mp = multiprocessing.get_context("fork")
    args = (url, sb.erp_url, sb.storefront_url, sb.token, "chaos-kill")
    done_kills, pending_at_kill = 0, []
    runs = 0
    for k in range(1, kills + 2):
        proc = mp.Process(target=_worker, args=args, daemon=True)
        proc.start()
        runs += 1
        if k <= kills:
            goal = target * k // (kills + 1)
            while proc.is_alive() and sb.stats("erp")["sales_orders"] < goal:
                time.sleep(0.02)
            held = _held(sb)
            deadline = time.monotonic() + 10
            while proc.is_alive() and _held(sb) == held and time.monotonic() < deadline:
                time.sleep(0.01)  # kill while a committed write waits for its answer
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL)
                proc.join()
                done_kills += 1
                pending_at_kill.append(_pending_ledger(store))
                continue
        proc.join(timeout=1800)
        break
    notes = [f"{done_kills} SIGKILLs; ledger rows left pending by the kills: {pending_at_kill}"]
    return measure(name, sb, store, erp, sf, runs=runs, started=started, notes=notes)


def _worker(state_url: str, erp_url: str, sf_url: str, token: str, run_id: str) -> None:
    store = StateStore.from_url(state_url)
    erp, sf = make_adapters(erp_url, sf_url, token)
    settle(store, erp, sf, run_id=run_id)


def _held(sb: Sandbox) -> int:
    return int(sb.stats("erp")["faults_injected"].get("commit_then_timeout", 0))


def _pending_ledger(store: StateStore) -> int:
    import sqlalchemy as sa

    from erpsync.state import schema as t

    with store.engine.connect() as conn:
        lg = t.idempotency_ledger
        return int(conn.execute(sa.select(sa.func.count()).where(lg.c.status == "pending")).scalar_one())


def rate_limit_storm(sb: Sandbox, workdir: Path, n: int) -> ChaosResult:
    """Half of the ERP's answers and a third of the storefront's are 429 with Retry-After."""
    name = "429_storm"
    started = time.monotonic()
    _seed(sb, n, seed=404)
    clock = SimClock()
    store = _store(workdir, name, clock)
    erp, sf = make_adapters(sb.erp_url, sb.storefront_url, sb.token)
    sb.set_faults("erp", seed=3, rate_limit={"rate": 0.5, "retry_after": 0.005})
    sb.set_faults("storefront", seed=4, rate_limit={"rate": 0.3, "retry_after": 0.005})
    runs = settle(store, erp, sf, run_id="chaos-429", tick=lambda: clock.advance(60))
    limited = (sb.stats("erp")["faults_injected"].get("rate_limit", 0)
               + sb.stats("storefront")["faults_injected"].get("rate_limit", 0))
    st = store
    opened = [e for e in _breaker_events(st) if e == "opened"]
    notes = [f"{limited} answers were 429 (Retry-After honoured)", f"breaker openings: {len(opened)}"]
    return measure(name, sb, store, erp, sf, runs=runs, started=started, notes=notes)


def _breaker_events(store: StateStore) -> list[str]:
    import sqlalchemy as sa

    from erpsync.state import schema as t

    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(t.breaker_events.c.event))]


class ReorderingStorefront:
    """The storefront as an event-driven feed delivers it: each delivery in a shuffled order, and
    across deliveries versions out of order: an older 'pending' snapshot of a paid order, an older
    'paid' snapshot of a cancelled one, arriving after the newer version was already handled."""

    def __init__(self, inner: Any, seed: int) -> None:
        self.inner = inner
        self.seed = seed
        self.stale = 0
        self.deliveries = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_orders(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        first = self.deliveries == 0  # the first delivery: mostly current versions; then stale ones
        last = self.deliveries >= 2  # in the end the feed delivers every current version once more
        self.deliveries += 1
        self.seed += 1
        stream: list[dict[str, Any]] = []
        for raw in self.inner.list_orders(**kwargs):
            old = None
            if last:
                pass
            elif raw.get("cancelled_at") and not first:
                old = copy.deepcopy(raw)
                old.update(cancelled_at=None, updated_at=_earlier(raw.get("updated_at")))
            elif raw.get("financial_status") == "paid" and not raw.get("cancelled_at") and rng.random() < 0.3:
                old = copy.deepcopy(raw)
                old.update(financial_status="pending", transactions=[], updated_at=_earlier(raw.get("updated_at")))
            if old is not None and (rng.random() < 0.2 if first else True):
                stream.append(old)
                self.stale += 1
            else:
                stream.append(raw)
        rng.shuffle(stream)
        return iter(stream)


def _earlier(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) - dt.timedelta(hours=1)
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def out_of_order_events(sb: Sandbox, workdir: Path, n: int) -> ChaosResult:
    name = "out_of_order_events"
    started = time.monotonic()
    _seed(sb, n, seed=505)
    clock = SimClock()
    store = _store(workdir, name, clock)
    erp, real_sf = make_adapters(sb.erp_url, sb.storefront_url, sb.token)
    sf = ReorderingStorefront(real_sf, seed=9)
    runs = 0
    for delivery in range(1, 4):  # the feed redelivers everything, shuffled, with other versions
        store.set_cursor(FLOW, "2000-01-01T00:00:00Z")
        runs += settle(store, erp, sf, run_id=f"chaos-ooo-{delivery}", tick=lambda: clock.advance(60))
    result = measure(name, sb, store, erp, real_sf, runs=runs, started=started, notes=[])
    wrong = _cancelled_in_erp(real_sf, erp)
    result.notes = f"{sf.stale} stale versions delivered late; cancelled orders written to the ERP: {wrong}; " + result.notes
    if wrong:
        result.notes = "FAILED: " + result.notes
    return result


def _cancelled_in_erp(sf: Any, erp: Any) -> int:
    refs = erp_orders(erp)
    return sum(1 for raw in sf.list_orders() if raw.get("cancelled_at") and refs.get(str(raw["id"])))


SCENARIOS: dict[str, Callable[..., ChaosResult]] = {
    "commit_then_timeout": lambda sb, wd, n: commit_then_timeout(sb, wd, n, keyless=False),
    "commit_then_timeout_keys_ignored": lambda sb, wd, n: commit_then_timeout(sb, wd, n, keyless=True),
    "erp_outage": erp_outage,
    "sigkill": sigkill_mid_batch,
    "429_storm": rate_limit_storm,
    "out_of_order": out_of_order_events,
}


def run_scenario(name: str, sb: Sandbox, workdir: Path, n: int) -> ChaosResult:
    return SCENARIOS[name](sb, workdir, n)
