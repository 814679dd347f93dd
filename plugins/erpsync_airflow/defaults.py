"""Defaults every erpsync DAG shares, set once here so the DAG files stay wiring only."""

from __future__ import annotations

import datetime as dt

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
}
