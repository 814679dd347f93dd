"""The host name a task reports to Airflow (``[core] hostname_callable``).

Several ``airflow celery worker`` processes on one machine (``make up-celery`` starts two) all
have the machine's name; ``ERPSYNC_WORKER_NAME`` set in a worker's environment names that worker
instead, so the UI (a try's "Host") and ``airflow tasks states-for-dag-run`` tell which worker ran a
try. Without it: the fully qualified domain name, as Airflow's default.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """``ERPSYNC_WORKER_NAME`` when set, else ``socket.getfqdn()``."""
    return os.environ.get("ERPSYNC_WORKER_NAME", "").strip() or socket.getfqdn()
