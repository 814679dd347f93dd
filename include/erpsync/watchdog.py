"""The sync watchdog: checks over the state store that catch a silent stop (the seed's story:
order sync stopped on a Friday afternoon and nobody knew until Monday).

``collect`` reads a :class:`Snapshot` from the store; ``check`` is pure (snapshot + config ->
findings), so every rule is tested without a clock or a database. The checks:

* ``orders_stopped``: no order synced for ``orders_silence`` during trading hours (the whole
  window inside trading hours, so the first hour of the day is not an alarm), once orders_sync has
  run at least once (before, ``flow_overdue`` says it never ran);
* ``orders_volume_low``: orders synced in the last hour far below the same hour last week;
* ``cursor_stalled``: a flow keeps running but its cursor has not advanced within its window;
* ``dead_letters_piling``: too many open dead letters for a flow, or too many new ones in an hour;
* ``flow_overdue``: a flow has not succeeded within twice its cadence; a flow that never ran is
  reported ("never ran") only three cadences after the watchdog's first round here (its first due
  time plus the overdue margin), so a first start is no false alarm;
* ``nothing_compared``: a flow's latest run read records but compared none (or too small a share:
  ``flows.base.check_useful``, the drift check's ``check_compared``), so it failed: the reason is
  mailed at once, not only when the flow is overdue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from erpsync.errors import ConfigError
from erpsync.flows.specs import SPECS

if TYPE_CHECKING:
    from erpsync.state import StateStore

UTC = dt.UTC
ORDERS_FLOW = "orders_sync"
WATCHDOG = "sync_watchdog"
#: cursor name under WATCHDOG holding the time of the watchdog's first round here
STARTED = "started"
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

#: cadence of each flow the watchdog knows: every scheduled flow's ``FlowSpec`` (``erpsync.flows.specs``)
#: that is ``watched``, its cadence derived from its cron; ERPSYNC_WATCHDOG_FLOWS="inventory_sync=5,..."
#: (minutes) adds or overrides (a flow that never recorded a run here is skipped, so listing one not
#: deployed is harmless)
DEFAULT_CADENCES: dict[str, dt.timedelta] = {
    name: spec.cadence for name, spec in SPECS.items() if spec.watched and spec.cadence is not None
}
#: how long a running flow's cursor may stand still (``FlowSpec.cursor_stall``);
#: ERPSYNC_WATCHDOG_CURSOR_STALL="flow=minutes,..." adds or overrides
DEFAULT_CURSOR_STALL: dict[str, dt.timedelta] = {
    name: spec.cursor_stall for name, spec in SPECS.items() if spec.cursor_stall is not None
}


@dataclass(frozen=True, slots=True)
class TradingHours:
    """``Mon-Fri 08:00-18:00`` (several specs comma-separated, ``24:00`` allowed) in ``tz``."""

    spans: tuple[tuple[int, dt.time, dt.time | None], ...]  # (weekday, start, end; None = midnight)
    tz: str = "UTC"

    @classmethod
    def parse(cls, spec: str, tz: str = "UTC") -> TradingHours:
        spans: list[tuple[int, dt.time, dt.time | None]] = []
        for part in filter(None, (p.strip() for p in spec.split(","))):
            m = re.fullmatch(r"(?i)([a-z]{3})(?:-([a-z]{3}))?\s+(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", part)
            if not m or m.group(1).lower() not in DAYS or (m.group(2) and m.group(2).lower() not in DAYS):
                raise ConfigError(f"trading hours {part!r}: write e.g. 'Mon-Fri 08:00-18:00'")
            first = DAYS.index(m.group(1).lower())
            last = DAYS.index(m.group(2).lower()) if m.group(2) else first
            start = dt.time(int(m.group(3)), int(m.group(4)))
            end = None if (int(m.group(5)), int(m.group(6))) == (24, 0) else dt.time(int(m.group(5)), int(m.group(6)))
            day = first
            while True:
                spans.append((day, start, end))
                if day == last:
                    break
                day = (day + 1) % 7
        try:
            ZoneInfo(tz)
        except Exception:
            raise ConfigError(f"trading time zone {tz!r} is unknown; use e.g. Europe/Berlin") from None
        return cls(tuple(spans), tz)

    def _span_start(self, local: dt.datetime) -> dt.datetime | None:
        best: dt.datetime | None = None
        for day, start, end in self.spans:
            if local.weekday() == day and local.time() >= start and (end is None or local.time() < end):
                began = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
                best = began if best is None or began < best else best
        return best

    def open_since(self, when: dt.datetime) -> dt.datetime | None:
        """When the trading span containing ``when`` began (None: closed at ``when``); a span from
        midnight continues one that ran to midnight the day before (at most a week back)."""
        began = self._span_start(when.astimezone(ZoneInfo(self.tz)))
        for _ in range(7):
            if began is None or began.time() != dt.time(0, 0):
                break
            earlier = self._span_start(began - dt.timedelta(microseconds=1))
            if earlier is None:
                break
            began = earlier
        return began.astimezone(UTC) if began else None


@dataclass(frozen=True, slots=True)
class WatchdogConfig:
    trading: TradingHours = field(default_factory=lambda: TradingHours.parse("Mon-Fri 08:00-18:00"))
    orders_silence: dt.timedelta = dt.timedelta(minutes=60)
    volume_ratio: float = 0.3  # alert below 30 % of the same hour last week ...
    volume_min_last_week: int = 20  # ... when last week had at least this many orders
    dead_letters_open_max: int = 100
    dead_letters_new_per_hour_max: int = 20
    cadences: Mapping[str, dt.timedelta] = field(default_factory=lambda: dict(DEFAULT_CADENCES))
    cursor_stall: Mapping[str, dt.timedelta] = field(default_factory=lambda: dict(DEFAULT_CURSOR_STALL))
    repeat_after: dt.timedelta = dt.timedelta(minutes=60)  # the same findings are mailed again after this

    @classmethod
    def from_settings(cls, params: Mapping[str, Any] | None = None) -> WatchdogConfig:
        """Environment (ERPSYNC_TRADING_HOURS, ERPSYNC_TRADING_TZ, ERPSYNC_WATCHDOG_*), then DAG params."""
        p = {k: v for k, v in (params or {}).items() if v not in (None, "")}

        def get(name: str, env: str, default: Any) -> Any:
            return p.get(name, os.environ.get(env, "").strip() or default)

        def minutes(value: Any, what: str) -> dt.timedelta:
            try:
                return dt.timedelta(minutes=float(value))
            except (TypeError, ValueError):
                raise ConfigError(f"{what}={value!r} is not a number of minutes") from None

        def table(env: str, base: Mapping[str, dt.timedelta]) -> dict[str, dt.timedelta]:
            out = dict(base)
            for item in os.environ.get(env, "").split(","):
                name, _, value = item.partition("=")
                if name.strip() and value.strip():
                    out[name.strip()] = minutes(value.strip(), f"{env}[{name.strip()}]")
            return out

        try:
            return cls(
                trading=TradingHours.parse(get("trading_hours", "ERPSYNC_TRADING_HOURS", "Mon-Fri 08:00-18:00"),
                                           get("trading_tz", "ERPSYNC_TRADING_TZ", "UTC")),
                orders_silence=minutes(get("orders_silence_minutes", "ERPSYNC_WATCHDOG_ORDERS_SILENCE_MINUTES", 60),
                                       "orders_silence_minutes"),
                volume_ratio=float(get("volume_ratio", "ERPSYNC_WATCHDOG_VOLUME_RATIO", 0.3)),
                volume_min_last_week=int(get("volume_min_last_week", "ERPSYNC_WATCHDOG_VOLUME_MIN", 20)),
                dead_letters_open_max=int(get("dead_letters_open_max", "ERPSYNC_WATCHDOG_DEAD_LETTERS_OPEN_MAX", 100)),
                dead_letters_new_per_hour_max=int(
                    get("dead_letters_new_per_hour_max", "ERPSYNC_WATCHDOG_DEAD_LETTERS_NEW_MAX", 20)),
                cadences=table("ERPSYNC_WATCHDOG_FLOWS", DEFAULT_CADENCES),
                cursor_stall=table("ERPSYNC_WATCHDOG_CURSOR_STALL", DEFAULT_CURSOR_STALL),
                repeat_after=minutes(get("repeat_minutes", "ERPSYNC_WATCHDOG_REPEAT_MINUTES", 60), "repeat_minutes"),
            )
        except ValueError as exc:
            raise ConfigError(f"watchdog settings: {exc}") from None


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    flow: str
    message: str
    hint: str = ""


@dataclass(slots=True)
class Snapshot:
    now: dt.datetime
    last_success: dict[str, dt.datetime | None] = field(default_factory=dict)  # finished_at
    last_run: dict[str, dt.datetime | None] = field(default_factory=dict)  # any status
    orders_done_in_silence_window: int = 0
    orders_last_hour: int = 0
    orders_same_hour_last_week: int = 0
    cursor_moved_at: dict[str, dt.datetime] = field(default_factory=dict)
    dead_letters_open: dict[str, int] = field(default_factory=dict)
    dead_letters_new_last_hour: dict[str, int] = field(default_factory=dict)
    #: flow -> (why its latest run did nothing useful, when it ended), from the run's counts
    nothing_useful: dict[str, tuple[str, dt.datetime | None]] = field(default_factory=dict)
    #: the watchdog's first round here (cursor ``sync_watchdog/started``): a flow that never ran is
    #: reported only once it is past its first due time by the overdue margin from then
    watching_since: dt.datetime | None = None


def _succeeded(extra: Any, failed: int) -> bool:
    status = extra.get("status") if isinstance(extra, dict) else None
    return status == "success" if status else failed == 0


def collect(store: StateStore, config: WatchdogConfig, now: dt.datetime | None = None) -> Snapshot:
    """Read what the checks need from the state store."""
    from erpsync.state import schema as t

    now = now or dt.datetime.now(UTC)
    snap = Snapshot(now=now)
    rm, cur, dl = t.run_metrics, t.cursors, t.dead_letters
    hour = dt.timedelta(hours=1)
    week = dt.timedelta(days=7)
    flows = set(config.cadences) | set(config.cursor_stall) | {ORDERS_FLOW}
    with store.engine.connect() as conn:
        for flow in sorted(flows):
            rows = conn.execute(
                sa.select(rm.c.finished_at, rm.c.started_at, rm.c.failed, rm.c.extra)
                .where(rm.c.flow == flow)
                .order_by(rm.c.started_at.desc(), rm.c.id.desc())
                .limit(200)
            ).all()
            snap.last_run[flow] = rows[0].finished_at or rows[0].started_at if rows else None
            latest = rows[0].extra if rows and isinstance(rows[0].extra, dict) else {}
            if latest.get("nothing_useful"):
                snap.nothing_useful[flow] = (str(latest["nothing_useful"]), rows[0].finished_at)
            snap.last_success[flow] = next(
                (r.finished_at for r in rows if r.finished_at and _succeeded(r.extra, r.failed)), None
            )

        def done(start: dt.datetime, end: dt.datetime) -> int:
            return int(conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(rm.c.done), 0)).where(
                    rm.c.flow == ORDERS_FLOW, rm.c.finished_at >= start, rm.c.finished_at < end)
            ).scalar_one())

        later = now + dt.timedelta(seconds=1)
        snap.orders_done_in_silence_window = done(now - config.orders_silence, later)
        snap.orders_last_hour = done(now - hour, later)
        snap.orders_same_hour_last_week = done(now - week - hour, now - week)
        started = conn.execute(
            sa.select(cur.c.value).where(cur.c.flow == WATCHDOG, cur.c.name == STARTED)).scalar()
        if started:
            try:
                snap.watching_since = dt.datetime.fromisoformat(str(started))
            except ValueError:
                snap.watching_since = None
        for row in conn.execute(sa.select(cur.c.flow, cur.c.updated_at).where(cur.c.name == "default")):
            snap.cursor_moved_at[row.flow] = row.updated_at
        for row in conn.execute(
            sa.select(dl.c.flow, sa.func.count()).where(dl.c.status == "open").group_by(dl.c.flow)
        ):
            snap.dead_letters_open[row[0]] = int(row[1])
        for row in conn.execute(
            sa.select(dl.c.flow, sa.func.count())
            .where(dl.c.status == "open", dl.c.first_seen >= now - hour)
            .group_by(dl.c.flow)
        ):
            snap.dead_letters_new_last_hour[row[0]] = int(row[1])
    return snap


def _ago(now: dt.datetime, then: dt.datetime | None) -> str:
    if then is None:
        return "never"
    minutes = int((now - then).total_seconds() // 60)
    return f"{minutes} min ago ({then:%Y-%m-%d %H:%M} UTC)" if minutes < 180 else f"{minutes // 60} h ago ({then:%Y-%m-%d %H:%M} UTC)"


def _window_open(config: WatchdogConfig, now: dt.datetime, window: dt.timedelta) -> bool:
    """Trading hours have been open for the whole window ending now."""
    since = config.trading.open_since(now)
    return since is not None and since <= now - window


def check(snap: Snapshot, config: WatchdogConfig) -> list[Finding]:
    now = snap.now
    out: list[Finding] = []
    # orders_sync never ran yet (first start): no "orders stopped"; flow_overdue says "never ran" when due
    orders_ran = snap.last_run.get(ORDERS_FLOW) is not None
    if orders_ran and _window_open(config, now, config.orders_silence) and snap.orders_done_in_silence_window == 0:
        minutes = int(config.orders_silence.total_seconds() // 60) or config.orders_silence.total_seconds() / 60
        out.append(Finding(
            "orders_stopped", ORDERS_FLOW,
            f"no order synced in the last {minutes} min during trading hours "
            f"(last successful run {_ago(now, snap.last_success.get(ORDERS_FLOW))})",
            "is orders_sync paused, failing or reading nothing? Check the storefront for new paid orders; "
            "docs/runbooks/silent-stop.md",
        ))
    last_week = snap.orders_same_hour_last_week
    if last_week >= config.volume_min_last_week and snap.orders_last_hour < config.volume_ratio * last_week:
        out.append(Finding(
            "orders_volume_low", ORDERS_FLOW,
            f"{snap.orders_last_hour} orders synced in the last hour, {last_week} in the same hour last week "
            f"(alert below {config.volume_ratio:.0%})",
            "a checkout or payment problem on the storefront, or orders skipped (see the run summaries' reasons)",
        ))
    for flow, window in sorted(config.cursor_stall.items()):
        moved = snap.cursor_moved_at.get(flow)
        if moved is None:
            continue
        if flow == ORDERS_FLOW and not _window_open(config, now, window):
            continue
        ran = snap.last_success.get(flow)
        if moved < now - window and ran is not None and ran > moved:
            out.append(Finding(
                "cursor_stalled", flow,
                f"cursor has not advanced for {_ago(now, moved).split(' (')[0]} while the flow keeps running "
                f"(window {int(window.total_seconds() // 60)} min)",
                "the source returns nothing new: check the source system and the flow's connection",
            ))
    for flow in sorted(set(snap.dead_letters_open) | set(snap.dead_letters_new_last_hour)):
        open_n = snap.dead_letters_open.get(flow, 0)
        new_n = snap.dead_letters_new_last_hour.get(flow, 0)
        if open_n > config.dead_letters_open_max or new_n > config.dead_letters_new_per_hour_max:
            out.append(Finding(
                "dead_letters_piling", flow,
                f"{open_n} open dead letters ({new_n} new in the last hour; limits {config.dead_letters_open_max} "
                f"open, {config.dead_letters_new_per_hour_max} new per hour)",
                f"erpsync dead-letters list --flow {flow}: group by reason, fix the cause, then replay",
            ))
    for flow, (reason, ended) in sorted(snap.nothing_useful.items()):
        out.append(Finding(
            "nothing_compared", flow,
            f"its latest run ({_ago(now, ended)}) did nothing useful where work existed: {reason}",
            f"a mapping that no longer fits the system's records, a changed API or a wrong location map: "
            f"erpsync dead-letters list --flow {flow}, fix the cause, run it again",
        ))
    for flow, cadence in sorted(config.cadences.items()):
        last = snap.last_success.get(flow)
        if last is None and snap.last_run.get(flow) is None:
            # never ran here: no alarm before its first due time (the watchdog's first round plus
            # its cadence) is past by the overdue margin (twice its cadence)
            since = snap.watching_since
            if since is not None and now >= since + 3 * cadence:
                out.append(Finding(
                    "flow_overdue", flow,
                    f"never ran since the watchdog started watching {_ago(now, since)} "
                    f"(due within {_human(cadence)}, overdue margin {_human(2 * cadence)})",
                    f"Airflow UI, DAG {flow}: paused (new DAGs start paused), failing, or not deployed? "
                    "docs/runbooks/silent-stop.md",
                ))
            continue
        if last is None or last < now - 2 * cadence:
            out.append(Finding(
                "flow_overdue", flow,
                f"no successful run within twice its cadence ({_human(2 * cadence)}); last success {_ago(now, last)}",
                f"Airflow UI, DAG {flow}: paused, failing, or stuck in queued?",
            ))
    return out


def _human(d: dt.timedelta) -> str:
    s = int(d.total_seconds())
    return f"{s // 3600} h" if s >= 3600 and s % 3600 == 0 else f"{s // 60} min" if s >= 60 else f"{s} s"


def fingerprint(findings: list[Finding]) -> str:
    return hashlib.sha256(json.dumps(sorted((f.check, f.flow) for f in findings)).encode()).hexdigest()[:16]


def should_alert(store: StateStore, findings: list[Finding], config: WatchdogConfig, now: dt.datetime) -> bool:
    """Mail when the set of problems changed, or the same ones again after ``repeat_after``;
    remembers what was mailed (cursor ``sync_watchdog/last_alert``)."""
    if not findings:
        store.set_cursor(WATCHDOG, json.dumps({"fingerprint": "", "at": now.isoformat()}), name="last_alert")
        return False
    fp = fingerprint(findings)
    raw = store.get_cursor(WATCHDOG, name="last_alert")
    if raw:
        try:
            last = json.loads(raw)
            at = dt.datetime.fromisoformat(last["at"])
            if last.get("fingerprint") == fp and now - at < config.repeat_after:
                return False
        except (ValueError, KeyError, TypeError):
            pass
    store.set_cursor(WATCHDOG, json.dumps({"fingerprint": fp, "at": now.isoformat()}), name="last_alert")
    return True


def run(
    store: StateStore,
    config: WatchdogConfig,
    send: Callable[[str, str], Any],
    *,
    now: dt.datetime | None = None,
    log: logging.Logger | None = None,
    links: Any = None,
) -> dict[str, Any]:
    """One watchdog round: collect, check, log every finding, and ``send(subject, body)`` the mail
    when ``should_alert`` says so. Returns the findings and whether they were mailed. ``links``
    (``erpsync.alerts.Links``) are the pages the mail links per finding: the Airflow side passes
    them from Airflow's own ``[api] base_url`` (set in airflow.cfg or the environment); None reads
    the environment only (``Links.from_env``)."""
    from erpsync.alerts import watchdog_mail

    now = now or dt.datetime.now(dt.UTC)
    log = log or logging.getLogger("erpsync.watchdog")
    if not store.get_cursor(WATCHDOG, name=STARTED):
        store.set_cursor(WATCHDOG, now.isoformat(), name=STARTED)  # first start: nothing is due yet
    findings = check(collect(store, config, now), config)
    for f in findings:
        log.warning("[%s] %s: %s", f.check, f.flow, f.message)
    mailed = False
    if should_alert(store, findings, config, now):
        send(*watchdog_mail(findings, now=now, links=links))
        mailed = True
    log.info("sync_watchdog: %d finding(s)%s", len(findings), ", mailed" if mailed else "")
    return {"findings": [asdict(f) for f in findings], "mailed": mailed}
