"""sync_watchdog: catches the silent stop (orders not arriving, cursors stuck, dead letters piling
up, flows overdue), every 15 minutes."""

from __future__ import annotations

from typing import Any

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from erpsync_airflow.defaults import DEFAULT_ARGS, START_DATE, dag_tags, deadline_for, flow_spec

SPEC = flow_spec("sync_watchdog")  # schedule, pool, deadline, tags: erpsync.flows.specs


@dag(
    dag_id=SPEC.name,
    schedule=CronDataIntervalTimetable(SPEC.schedule, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    deadline=deadline_for(SPEC.name, SPEC.schedule),
    tags=dag_tags(SPEC),
    params={
        "orders_silence_minutes": Param(None, type=["null", "number"],
                                        description="no order synced this long in trading hours -> alert (60)"),
        "trading_hours": Param(None, type=["null", "string"], description="e.g. 'Mon-Fri 08:00-18:00' (env default)"),
        "trading_tz": Param(None, type=["null", "string"], description="time zone of the trading hours (UTC)"),
        "repeat_minutes": Param(None, type=["null", "number"], description="mail the same findings again after (60)"),
    },
    doc_md="""
### sync_watchdog
Every 15 minutes, checks the state store (run metrics, cursors, dead letters) and e-mails what it
finds through the SMTP connection (once per change, again every `repeat_minutes`):

- **orders_stopped**: no order synced for `orders_silence_minutes` (60) during trading hours
  (`ERPSYNC_TRADING_HOURS`, default `Mon-Fri 08:00-18:00`, in `ERPSYNC_TRADING_TZ`);
- **orders_volume_low**: the last hour below 30 % of the same hour last week (when that had >= 20);
- **cursor_stalled**: a flow keeps running but its cursor has not moved (orders: 1 h);
- **dead_letters_piling**: > 100 open dead letters of a flow, or > 20 new in an hour;
- **flow_overdue**: a flow without a successful run within twice its cadence.

Every threshold is in `docs/configuration.md`; what to do: `docs/runbooks/silent-stop.md`.
A second task applies the retention (`ERPSYNC_AUDIT_RETENTION_DAYS`, 90): audit rows, closed dead
letters and drained outbox rows older than that are deleted (`include/erpsync/housekeeping.py`).
Logic: `include/erpsync/watchdog.py` (pure checks), mail text: `include/erpsync/alerts.py`.
""",
)
def sync_watchdog() -> None:
    @task
    def check_sync_health(**context: Any) -> dict:
        """Collect, check, mail; returns the findings."""
        from erpsync_airflow.runtime import run_watchdog

        return run_watchdog(context)

    @task
    def purge_old_history(**context: Any) -> dict:
        """Retention: audit rows, closed dead letters and drained outbox rows past ERPSYNC_AUDIT_RETENTION_DAYS."""
        from erpsync_airflow.runtime import run_housekeeping

        return run_housekeeping(context)

    check_sync_health()
    purge_old_history()


sync_watchdog()
