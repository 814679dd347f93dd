"""The health dashboard's figures, read from the state store (the console's landing page renders them).

Per flow (``erpsync.flows.specs``, the watched ones and any with open dead letters): the last
successful run, records synced per hour over 24 h, the error rate over 24 h, open dead letters,
outbox depth, latency p50/p95 where the state store records it, and a red/amber/green verdict with
its reasons. Per external system: the circuit breaker and the shared rate budget in use now.

Where each figure comes from (so it stays cheap at any audit-log size; ``benchmarks/bench_dashboard``
times it against 1M audit rows):

* runs, records synced, error rate, last success: ``run_metrics`` (one row per run; the 24 h
  window through its ``(flow, started_at)`` index); records synced = ``done``, errors = ``failed``
  + ``quarantined`` (dead-lettered), as a share of the records the runs decided on;
* open dead letters: ``dead_letters`` (``status, flow`` index); outbox depth: ``outbox`` rows not
  yet drained;
* latency, stock (change -> store): ``inventory_pushed`` keeps, per SKU-location, the ERP change
  it pushed (``source_modified``) and when (``pushed_at``); the newest pushes of the last 24 h;
* latency, orders (placed -> ERP): the flow keeps a histogram of ``placed_at -> written`` per run
  in ``run_metrics.extra.latency`` (:func:`latency_histogram`); percentiles are bucket bounds
  ("p95 <= 2 min"), merged over the runs of 24 h. A flow recording neither says "not measured";
* breakers: ``circuit_breakers``; rate budget: ``rate_budgets`` (GCRA: how far ``tat`` runs
  ahead of now, as a share of the burst the budget allows).

The audit log is not read: it grows with every transfer.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from erpsync.flows.specs import SPECS
from erpsync.state import schema as t

if TYPE_CHECKING:
    from erpsync.state import StateStore

UTC = dt.UTC
HOURS = 24
#: upper bounds (seconds) of the latency histogram's buckets; beyond the last: "over 1 day"
LATENCY_BOUNDS_S: tuple[int, ...] = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
#: the newest stock pushes the change -> store latency is measured on
LATENCY_SAMPLE = 5000
#: a share of the records decided on that failed or was dead-lettered above this is red (the flow's
#: ``max_bad_share`` when it declares one)
DEFAULT_RED_ERROR_RATE = 0.10
#: no successful run for this many cadences: amber, then red
AMBER_CADENCES, RED_CADENCES = 2, 3
#: a rate budget not drawn from for this long is idle
BUDGET_IDLE_S = 5.0
#: what each flow's latency measures (flows not named here: "not measured")
LATENCY_WHAT = {"orders_sync": "placed -> ERP", "inventory_sync": "ERP change -> store",
                "inventory_fast_lane": "ERP change -> store"}


def latency_histogram(seconds: Iterable[float]) -> dict[str, int]:
    """Counts per bucket (key: the bucket's upper bound in seconds, ``"inf"`` beyond the last), the
    compact form a run keeps in ``run_metrics.extra.latency`` and the dashboard merges over runs."""
    counts: Counter[str] = Counter()
    for value in seconds:
        v = max(0.0, float(value))
        counts[next((str(b) for b in LATENCY_BOUNDS_S if v <= b), "inf")] += 1
    return dict(counts)


@dataclass(frozen=True, slots=True)
class Latency:
    """p50/p95 in seconds over ``samples`` records; ``bucketed``: the values are histogram bucket
    bounds (at most that long); None: beyond the last bucket (over a day)."""

    what: str
    p50_s: float | None
    p95_s: float | None
    samples: int
    bucketed: bool


@dataclass(frozen=True, slots=True)
class FlowHealth:
    flow: str
    cadence: dt.timedelta | None
    systems: tuple[str, ...]
    last_run_at: dt.datetime | None
    last_status: str | None  # success | failed | None (no run recorded)
    last_error: str | None
    last_success_at: dt.datetime | None
    hourly: tuple[int, ...]  # records synced per hour, oldest first, the last is the current hour
    runs_24h: int
    failed_runs_24h: int
    synced_24h: int
    errors_24h: int
    error_rate: float | None  # errors / (synced + errors) over 24 h; None: nothing decided
    open_dead_letters: int
    outbox_depth: int
    latency: Latency | None
    latency_note: str  # why there is no latency figure, when there is none
    verdict: str  # red | amber | green | grey
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SystemHealth:
    system: str
    breaker: str  # closed | open | half_open | unknown (never used)
    failures: int
    opened_at: dt.datetime | None
    last_error: str | None
    rps: float | None
    budget_use: float | None  # share of the burst in use now (> 1: callers wait); None: no budget
    budget_note: str


@dataclass(frozen=True, slots=True)
class Dashboard:
    now: dt.datetime
    hours: tuple[dt.datetime, ...]  # start of each hourly bucket, oldest first
    flows: tuple[FlowHealth, ...]
    systems: tuple[SystemHealth, ...]
    took_ms: float = field(default=0.0, compare=False)


# --------------------------------------------------------------------------- reading


def load(store: StateStore, *, now: dt.datetime | None = None, flows: Sequence[str] | None = None) -> Dashboard:
    """Everything the dashboard shows, in a few indexed queries (read-only)."""
    started = time.perf_counter()
    now = (now or store.clock()).astimezone(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = tuple(this_hour - dt.timedelta(hours=HOURS - 1 - i) for i in range(HOURS))
    since = hours[0]
    with store.db.begin(write=False) as conn:  # one read transaction: the figures agree
        open_letters = _open_dead_letters(conn)
        names = list(flows) if flows is not None else _flows(open_letters)
        runs = _runs_since(conn, names, since)
        outbox = _outbox_depth(conn)
        breakers = {r["system"]: dict(r) for r in conn.execute(sa.select(t.circuit_breakers)).mappings()}
        budgets = {r["system"]: dict(r) for r in conn.execute(sa.select(t.rate_budgets)).mappings()}
        stock_latency = _stock_latency(conn, since) if set(names) & {"inventory_sync", "inventory_fast_lane"} else None
        earlier = {f: _last_runs(conn, f) for f in names if not any(r["ok"] for r in runs.get(f, []))}
    systems = tuple(_system(s, breakers.get(s), budgets.get(s), now)
                    for s in sorted({"erp", "storefront"} | set(breakers) | set(budgets)))
    by_system = {s.system: s for s in systems}
    out = []
    for name in names:
        flow_runs = runs.get(name, [])
        latency: Latency | None
        if name in ("inventory_sync", "inventory_fast_lane"):
            latency, note = stock_latency, "no stock pushed in 24 h" if stock_latency is None else ""
        elif name in LATENCY_WHAT:
            latency = _merged_latency(LATENCY_WHAT[name], (r["latency"] for r in flow_runs))
            note = "" if latency else "no record written in 24 h"
        else:
            latency, note = None, "not measured"
        out.append(_flow(name, flow_runs, earlier.get(name, []), hours, open_letters.get(name, 0),
                         outbox.get(name, 0), latency, note, by_system, now))
    return Dashboard(now, hours, tuple(out), systems, took_ms=(time.perf_counter() - started) * 1000)


def _flows(open_letters: Mapping[str, int]) -> list[str]:
    watched = [name for name, spec in SPECS.items() if spec.watched]
    return watched + sorted(f for f in open_letters if f not in watched)


def _open_dead_letters(conn: sa.Connection) -> dict[str, int]:
    d = t.dead_letters
    q = sa.select(d.c.flow, sa.func.count()).where(d.c.status == "open").group_by(d.c.flow)
    return {f: int(n) for f, n in conn.execute(q)}


def _outbox_depth(conn: sa.Connection) -> dict[str, int]:
    o = t.outbox
    q = sa.select(o.c.flow, sa.func.count()).where(o.c.status.in_(("queued", "claimed"))).group_by(o.c.flow)
    return {f: int(n) for f, n in conn.execute(q)}


def _run_columns() -> list[Any]:
    rm = t.run_metrics
    extra = rm.c.extra
    return [rm.c.flow, rm.c.started_at, rm.c.finished_at, rm.c.done, rm.c.failed, rm.c.quarantined,
            extra["status"].as_string().label("status"), extra["error"].as_string().label("error"),
            extra["latency"].label("latency")]


def _run(row: Mapping[str, Any]) -> dict[str, Any]:
    status = row["status"] or ("success" if not row["failed"] else "failed")  # rows written before extra.status
    latency = row["latency"]
    if isinstance(latency, str):  # SQLite hands a JSON sub-document back as text
        import json

        try:
            latency = json.loads(latency)
        except ValueError:
            latency = None
    return {**row, "status": status, "ok": status == "success", "latency": latency}


def _runs_since(conn: sa.Connection, flows: Sequence[str], since: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    """Runs started since ``since`` per flow, newest first (the ``(flow, started_at)`` index)."""
    rm = t.run_metrics
    out: dict[str, list[dict[str, Any]]] = {}
    if not flows:
        return out
    q = (sa.select(*_run_columns()).where(rm.c.flow.in_(list(flows)), rm.c.started_at >= since)
         .order_by(rm.c.started_at.desc(), rm.c.id.desc()))
    for row in conn.execute(q).mappings():
        out.setdefault(row["flow"], []).append(_run(dict(row)))
    return out


def _last_runs(conn: sa.Connection, flow: str, limit: int = 200) -> list[dict[str, Any]]:
    """A flow's newest runs (for its last success when none is within 24 h)."""
    rm = t.run_metrics
    q = sa.select(*_run_columns()).where(rm.c.flow == flow).order_by(rm.c.started_at.desc(), rm.c.id.desc())
    return [_run(dict(r)) for r in conn.execute(q.limit(limit)).mappings()]


def _stock_latency(conn: sa.Connection, since: dt.datetime) -> Latency | None:
    """ERP change -> store: ``pushed_at - source_modified`` of the newest stock pushes in 24 h."""
    p = t.inventory_pushed
    q = (sa.select(p.c.source_modified, p.c.pushed_at)
         .where(p.c.pushed_at >= since, p.c.source_modified.is_not(None))
         .order_by(p.c.pushed_at.desc()).limit(LATENCY_SAMPLE))
    values = []
    for source, pushed in conn.execute(q):
        changed = parse_time(source)
        if changed is not None:
            values.append(max(0.0, (pushed - changed).total_seconds()))
    if not values:
        return None
    values.sort()
    return Latency(LATENCY_WHAT["inventory_sync"], _pct(values, 0.50), _pct(values, 0.95), len(values), False)


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO time as typed or stored (``Z`` or an offset; none is UTC), or None when unreadable."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pct(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile."""
    rank = max(1, -(-len(sorted_values) * q // 1))
    return float(sorted_values[int(rank) - 1])


def _merged_latency(what: str, histograms: Iterable[Any]) -> Latency | None:
    total: Counter[str] = Counter()
    for h in histograms:
        if isinstance(h, Mapping):
            for k, n in h.items():
                if isinstance(n, int) and n > 0 and (k == "inf" or k.isdigit()):
                    total[k] += n
    n = sum(total.values())
    if not n:
        return None

    def bound(q: float) -> float | None:
        rank, seen = max(1, -(-n * q // 1)), 0
        for b in (*(str(b) for b in LATENCY_BOUNDS_S), "inf"):
            seen += total.get(b, 0)
            if seen >= rank:
                return None if b == "inf" else float(b)
        return None  # pragma: no cover - the buckets hold all n

    return Latency(what, bound(0.50), bound(0.95), n, True)


def _system(system: str, breaker: Mapping[str, Any] | None, budget: Mapping[str, Any] | None,
            now: dt.datetime) -> SystemHealth:
    if budget is None:
        rps, use, note = None, None, "no shared budget (no rps in its Connection) or not used yet"
    else:
        from erpsync.reliability.budget import BURST_SECONDS

        rps = float(budget["rps"])
        ahead = float(budget["tat"]) - now.timestamp()
        idle_for = (now - budget["updated_at"]).total_seconds()
        tau = max(BURST_SECONDS - 1.0 / rps, 1.0 / rps)
        if ahead <= 0 or idle_for > BUDGET_IDLE_S:
            use, note = 0.0, f"idle (last request {_ago(idle_for)} ago)"
        else:
            use = ahead / tau
            note = f"callers wait {ahead - tau:.1f} s" if use > 1 else "in use"
    if breaker is None:
        return SystemHealth(system, "unknown", 0, None, None, rps, use, note)
    return SystemHealth(system, breaker["state"], int(breaker["failures"]), breaker["opened_at"],
                        breaker["last_error"], rps, use, note)


# --------------------------------------------------------------------------- the verdict


def _flow(name: str, runs: list[dict[str, Any]], earlier: list[dict[str, Any]], hours: Sequence[dt.datetime],
          open_letters: int, outbox: int, latency: Latency | None, latency_note: str,
          systems: Mapping[str, SystemHealth], now: dt.datetime) -> FlowHealth:
    spec = SPECS.get(name)
    hourly = [0] * len(hours)
    for r in runs:
        at = r["finished_at"] or r["started_at"]
        i = int((at - hours[0]).total_seconds() // 3600)
        if 0 <= i < len(hourly):
            hourly[i] += int(r["done"] or 0)
    synced = sum(int(r["done"] or 0) for r in runs)
    errors = sum(int(r["failed"] or 0) + int(r["quarantined"] or 0) for r in runs)
    newest = runs or earlier
    last = newest[0] if newest else None
    success = next((r for r in (*runs, *earlier) if r["ok"]), None)
    health = FlowHealth(
        flow=name, cadence=spec.cadence if spec else None, systems=spec.systems if spec else (),
        last_run_at=(last["finished_at"] or last["started_at"]) if last else None,
        last_status=last["status"] if last else None, last_error=last["error"] if last else None,
        last_success_at=(success["finished_at"] or success["started_at"]) if success else None,
        hourly=tuple(hourly), runs_24h=len(runs), failed_runs_24h=sum(1 for r in runs if not r["ok"]),
        synced_24h=synced, errors_24h=errors, error_rate=errors / (synced + errors) if synced + errors else None,
        open_dead_letters=open_letters, outbox_depth=outbox, latency=latency, latency_note=latency_note,
        verdict="grey", reasons=())
    verdict, reasons = judge(health, systems, now, red_error_rate=(spec.max_bad_share if spec and spec.max_bad_share
                                                                   else DEFAULT_RED_ERROR_RATE))
    return _replace(health, verdict=verdict, reasons=tuple(reasons))


def _replace(health: FlowHealth, **values: Any) -> FlowHealth:
    import dataclasses

    return dataclasses.replace(health, **values)


def judge(h: FlowHealth, systems: Mapping[str, SystemHealth], now: dt.datetime, *,
          red_error_rate: float = DEFAULT_RED_ERROR_RATE) -> tuple[str, list[str]]:
    """red / amber / green / grey and why (every reason that applies, the worst first)."""
    red: list[str] = []
    amber: list[str] = []
    if h.last_status == "failed":
        red.append(f"last run failed: {h.last_error}" if h.last_error else "last run failed")
    if h.cadence and h.last_run_at is not None:
        if h.last_success_at is None:
            red.append("no successful run recorded")
        else:
            quiet = now - h.last_success_at
            text = f"no successful run for {_ago(quiet.total_seconds())} (runs every {_ago(h.cadence.total_seconds())})"
            if quiet > RED_CADENCES * h.cadence:
                red.append(text)
            elif quiet > AMBER_CADENCES * h.cadence:
                amber.append(text)
    for s in h.systems:
        sys_health = systems.get(s)
        if sys_health is None:
            continue
        if sys_health.breaker == "open":
            red.append(f"{s} circuit open" + (f": {sys_health.last_error}" if sys_health.last_error else ""))
        elif sys_health.breaker == "half_open":
            amber.append(f"{s} circuit half open (probing)")
        if sys_health.budget_use is not None and sys_health.budget_use > 1:
            amber.append(f"{s} rate budget saturated ({sys_health.budget_note})")
    if h.error_rate is not None and h.error_rate > 0:
        text = f"error rate {h.error_rate:.1%} over 24 h ({h.errors_24h} of {h.errors_24h + h.synced_24h} records)"
        (red if h.error_rate >= red_error_rate else amber).append(text)
    if h.open_dead_letters:
        amber.append(f"{h.open_dead_letters} open dead letter(s)")
    if h.outbox_depth:
        amber.append(f"{h.outbox_depth} record(s) waiting in the outbox")
    if red:
        return "red", red + amber
    if amber:
        return "amber", amber + (["no run recorded yet"] if h.last_run_at is None else [])
    if h.last_run_at is None:
        return "grey", ["no run recorded yet"]
    return "green", [f"last run succeeded {_ago((now - h.last_run_at).total_seconds())} ago, nothing open"]


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 2 * 3600:
        return f"{s // 60} min"
    if s < 2 * 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def fmt_seconds(value: float | None) -> str:
    """A latency for people: ``45 s``, ``3 min``, ``2 h``; None: over a day."""
    return "> 1 d" if value is None else _ago(value)
