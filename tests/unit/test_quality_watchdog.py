"""The watchdog's checks are pure: a snapshot and a config in, findings out."""

from __future__ import annotations

import datetime as dt

import pytest

from erpsync.errors import ConfigError
from erpsync.watchdog import Snapshot, TradingHours, WatchdogConfig, check

FRI_1600 = dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)  # a Friday afternoon
SAT_1600 = dt.datetime(2026, 11, 21, 16, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def healthy(now: dt.datetime = FRI_1600, **change: object) -> Snapshot:
    snap = Snapshot(
        now=now,
        last_success={"orders_sync": now - MIN, "customers_sync": now - 10 * MIN},
        last_run={"orders_sync": now - MIN, "customers_sync": now - 10 * MIN},
        orders_done_in_silence_window=40, orders_last_hour=40, orders_same_hour_last_week=45,
        cursor_moved_at={"orders_sync": now - 2 * MIN},
        dead_letters_open={"orders_sync": 3}, dead_letters_new_last_hour={"orders_sync": 1},
    )
    for k, v in change.items():
        setattr(snap, k, v)
    return snap


CONFIG = WatchdogConfig()


def kinds(snap: Snapshot, config: WatchdogConfig = CONFIG) -> list[str]:
    return [f.check for f in check(snap, config)]


def test_a_healthy_shop_has_no_findings() -> None:
    assert kinds(healthy()) == []


def test_orders_stopped_on_a_friday_afternoon() -> None:
    (f,) = check(healthy(orders_done_in_silence_window=0, orders_last_hour=0, orders_same_hour_last_week=0), CONFIG)
    assert f.check == "orders_stopped" and "no order synced in the last 60 min" in f.message


def test_no_alarm_outside_trading_hours_or_in_the_first_hour_of_the_day() -> None:
    quiet = dict(orders_done_in_silence_window=0, orders_last_hour=0, orders_same_hour_last_week=0)
    assert kinds(healthy(SAT_1600, **quiet)) == []
    assert kinds(healthy(dt.datetime(2026, 11, 20, 8, 30, tzinfo=dt.UTC), **quiet)) == []
    assert kinds(healthy(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC), **quiet)) == ["orders_stopped"]


def test_volume_far_below_the_same_hour_last_week() -> None:
    assert kinds(healthy(orders_last_hour=5, orders_same_hour_last_week=60)) == ["orders_volume_low"]
    assert kinds(healthy(orders_last_hour=0, orders_same_hour_last_week=10)) == []  # too few to compare


def test_cursor_not_advancing_while_the_flow_runs() -> None:
    (f,) = check(healthy(cursor_moved_at={"orders_sync": FRI_1600 - 90 * MIN}), CONFIG)
    assert f.check == "cursor_stalled" and f.flow == "orders_sync"


def test_dead_letters_piling_up() -> None:
    assert kinds(healthy(dead_letters_open={"orders_sync": 101})) == ["dead_letters_piling"]
    assert kinds(healthy(dead_letters_new_last_hour={"customers_sync": 21})) == ["dead_letters_piling"]


def test_flow_not_succeeded_within_twice_its_cadence() -> None:
    snap = healthy(last_success={"orders_sync": FRI_1600 - MIN, "customers_sync": FRI_1600 - 31 * MIN})
    (f,) = check(snap, CONFIG)
    assert f.check == "flow_overdue" and f.flow == "customers_sync" and "30 min" in f.message
    # a flow that never ran here is not deployed: no finding
    assert kinds(healthy(last_success={"orders_sync": FRI_1600}, last_run={"orders_sync": FRI_1600})) == []


def test_trading_hours_spec_and_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    hours = TradingHours.parse("Mon-Fri 08:00-18:00, Sat 09:00-13:00", "Europe/Berlin")
    assert hours.open_since(SAT_1600) is None  # 17:00 in Berlin
    assert hours.open_since(dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)) == dt.datetime(2026, 11, 21, 8, tzinfo=dt.UTC)
    always = TradingHours.parse("Mon-Sun 00:00-24:00")
    assert always.open_since(FRI_1600) < FRI_1600 - dt.timedelta(days=1)
    with pytest.raises(ConfigError, match="Mon-Fri 08:00-18:00"):
        TradingHours.parse("weekdays 9-5")
    monkeypatch.setenv("ERPSYNC_TRADING_HOURS", "Sat-Sun 10:00-16:00")
    monkeypatch.setenv("ERPSYNC_WATCHDOG_FLOWS", "inventory_sync=5")
    config = WatchdogConfig.from_settings({"orders_silence_minutes": 30})
    assert config.orders_silence == 30 * MIN and config.cadences["inventory_sync"] == 5 * MIN
    assert config.trading.open_since(SAT_1600 - MIN) is not None
