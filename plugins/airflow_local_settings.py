"""Airflow local settings (imported by every Airflow process; the plugins folder is on sys.path).

Only one thing: the scheduler (and Celery workers) pre-import the modules every erpsync task
imports, so forked task processes start with them loaded (``erpsync_airflow.preload``, issue 21).
"""

from __future__ import annotations

from erpsync_airflow.preload import preload_for_tasks

preload_for_tasks()
