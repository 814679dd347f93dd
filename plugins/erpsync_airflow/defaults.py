"""Defaults every erpsync DAG shares, set once here so the DAG files stay wiring only: owner,
retries with exponential backoff and a cap, the failure e-mail, the pool of each DAG's tasks
(``task_defaults``: the rate budget of the system they load) and the deadline of each DAG
(``deadline_for``: Airflow 3's replacement for SLAs)."""

from __future__ import annotations

import datetime as dt
import os

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

from erpsync.flows.specs import SPECS, FlowSpec, spec
from erpsync_airflow.notifiers import DeadlineMissNotifier, FailureNotifier

#: A fixed past start date: with ``catchup=False`` only the latest interval runs.
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

#: Tags every erpsync DAG carries (each DAG adds its own).
TAGS = ["erpsync"]

DEFAULT_ARGS: dict = {
    "owner": "erpsync",
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=30),
    # Airflow 3.3 takes the backoff as a multiplier; True is the 2.x spelling of 2.0 (doubling).
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=10),
    # one mail per task that failed for good (after its last retry): see notifiers.FailureNotifier
    "on_failure_callback": [FailureNotifier()],
}

#: The external system whose Airflow pool each DAG's tasks run in: the one the DAG loads (writes
#: to), or the one it works on most. A task runs in one pool only; the requests per second of both
#: systems are shared through the state store whatever the pool (``erpsync.reliability.budget``).
#: None: the DAG calls no external system (default_pool). Derived from each flow's
#: ``FlowSpec.pool_system`` (``erpsync.flows.specs``): a new DAG is declared there.
POOL_SYSTEMS: dict[str, str | None] = {name: s.pool_system for name, s in SPECS.items()}


def flow_spec(dag_id: str) -> FlowSpec:
    """The declaration of ``dag_id`` (``erpsync.flows.specs.SPECS``): the DAG files read their
    schedule, pool, deadline and tags from it."""
    return spec(dag_id)


def dag_tags(flow: FlowSpec) -> list[str]:
    """``TAGS`` plus the flow's own tags."""
    return [*TAGS, *flow.tags]


def pool_of(dag_id: str) -> str | None:
    """The Airflow pool of ``dag_id``'s tasks (``erpsync_<system>``; None: default_pool)."""
    if dag_id not in POOL_SYSTEMS:
        raise KeyError(f"{dag_id}: declare it in erpsync.flows.specs.SPECS (POOL_SYSTEMS derives from it) with "
                       "the system whose pool its tasks use (pool_system=None if they call no external system)")
    system = POOL_SYSTEMS[dag_id]
    return f"erpsync_{system}" if system else None  # = erpsync.reliability.budget.pool_name


def task_defaults(dag_id: str, **overrides: object) -> dict:
    """``DEFAULT_ARGS`` plus the pool of ``dag_id``'s tasks (one slot each): every task that calls
    an external system takes a slot of that system's pool, so parallel DAGs, backfills and the
    migration share its concurrency. ``overrides`` replace single defaults (``retries=1``)."""
    pool = pool_of(dag_id)
    return {**DEFAULT_ARGS, **({"pool": pool, "pool_slots": 1} if pool else {}), **overrides}


#: Deadlines (from the moment a run is queued) that are not simply twice the cadence: each flow's
#: ``FlowSpec.deadline`` (orders 2 min, the inventory cycles 4 min).
DEADLINES: dict[str, dt.timedelta] = {name: s.deadline for name, s in SPECS.items() if s.deadline}
#: nightly DAGs must be done by this hour (UTC), ERPSYNC_NIGHTLY_DEADLINE_HOUR overrides it
NIGHTLY_DEADLINE_HOUR = 6
#: a deadline is never shorter than this (a queued run needs a free slot and a task start)
MIN_DEADLINE = dt.timedelta(minutes=2)


def _nightly_hour() -> int:
    raw = os.environ.get("ERPSYNC_NIGHTLY_DEADLINE_HOUR", "").strip()
    return int(raw) % 24 if raw.isdigit() else NIGHTLY_DEADLINE_HOUR


def _daily_start(expression: str) -> dt.timedelta | None:
    """``"30 2 * * *"`` -> 2:30 as a timedelta; None if the cron is not once a day."""
    fields = expression.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"] or not (fields[0].isdigit() and fields[1].isdigit()):
        return None
    return dt.timedelta(hours=int(fields[1]), minutes=int(fields[0]))


def _cadence(expression: str) -> dt.timedelta:
    """The gap between two runs of a cron expression (the smallest of the next few)."""
    from croniter import croniter

    it = croniter(expression, dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    fires = [it.get_next(dt.datetime) for _ in range(6)]
    return min(b - a for a, b in zip(fires, fires[1:], strict=False))


def deadline_interval(dag_id: str, cadence: dt.timedelta | str) -> dt.timedelta:
    """How long after being queued a run of ``dag_id`` must be done.

    ``cadence`` is the DAG's cron expression or a timedelta. A deadline its spec declares
    (``DEADLINES``) wins (orders 2 min, inventory 4 min); a daily cron (a nightly flow) must be done by
    ``ERPSYNC_NIGHTLY_DEADLINE_HOUR`` (6 UTC); anything else gets twice its cadence.
    """
    if dag_id in DEADLINES:
        return DEADLINES[dag_id]
    if isinstance(cadence, str):
        start = _daily_start(cadence)
        if start is not None:
            by = dt.timedelta(hours=_nightly_hour())
            window = (by - start) % dt.timedelta(days=1)
            return max(window, dt.timedelta(hours=1))
        cadence = _cadence(cadence)
    return max(2 * cadence, MIN_DEADLINE)


def _human(interval: dt.timedelta) -> str:
    seconds = int(interval.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def deadline_for(
    dag_id: str, cadence: dt.timedelta | str, *, interval: dt.timedelta | None = None
) -> DeadlineAlert | None:
    """The deadline alert of a scheduled DAG: measured from when its run is queued, sized to its
    cadence (``deadline_interval``); a miss sends one e-mail through the SMTP connection
    (``DeadlineMissNotifier``, run by the triggerer). ``interval`` overrides the size (tests).

    ``ERPSYNC_DEADLINES=off`` (read at parse time) leaves DAGs without deadlines.
    """
    if os.environ.get("ERPSYNC_DEADLINES", "").strip().lower() in ("off", "0", "false", "no"):
        return None
    size = interval or deadline_interval(dag_id, cadence)
    limit = _human(size)
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=size,
        callback=AsyncCallback(DeadlineMissNotifier, kwargs={"dag_id": dag_id, "limit": limit}),
        name=f"{dag_id}: done within {limit} of being queued",
    )


def review_dead_letters(flow: str):  # noqa: ANN201 - an Airflow task factory
    """The ``review_dead_letters`` task that follows a flow's task (``review_dead_letters(flow)(sync())``).

    It makes a run that dead-lettered records visibly different on the grid: it ends ``failed``
    (the run red, the flow's own task still green: the rest of the batch was written) when the run
    dead-lettered more records than ``ERPSYNC_REVIEW_MAX_DEAD_LETTERS`` (default 0), and its log
    and failure e-mail list them with their reasons and the way to replay them. It calls no
    external system, so it takes no slot of the systems' pools.
    """
    from airflow.sdk import task

    @task(task_id="review_dead_letters", pool="default_pool", retries=1)
    def review(result: dict | None = None, **context: object) -> dict:
        """Fail past the threshold when this run dead-lettered records; list them first."""
        from erpsync_airflow.runtime import run_review

        return run_review(flow, result, context)

    return review
