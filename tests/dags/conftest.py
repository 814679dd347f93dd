"""DAG tests run against an Airflow home of their own (see airflow_home.py)."""

from __future__ import annotations

import pytest

from tests.dags import airflow_home

airflow_home.isolate()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    airflow_home.migrate()
