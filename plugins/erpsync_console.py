"""Airflow plugin: the erpsync operator console in the Airflow 3 UI.

``fastapi_apps`` mounts the console (``erpsync_airflow.console``, server-rendered HTML) at
``/erpsync`` inside Airflow's API server, behind Airflow's own login; ``external_views`` puts
"Sync health" (the dashboard, ``/plugin/erpsync-dashboard``) and "Dead letters"
(``/plugin/erpsync-dead-letters``) in the UI's navigation, shown inside the UI.
The rest of ``erpsync_airflow`` is an installed package (plugins/.airflowignore).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from erpsync_airflow import console_approvals, console_reports  # noqa: F401  (their pages register on the console's app)
from erpsync_airflow.console import PREFIX, app


class ErpsyncConsolePlugin(AirflowPlugin):
    name = "erpsync_console"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "erpsync console"}]
    external_views = [
        {
            "name": "Sync health",
            "href": f"{PREFIX}/dashboard",
            "destination": "nav",
            "category": "browse",
            "url_route": "erpsync-dashboard",
        },
        {
            "name": "Dead letters",
            "href": f"{PREFIX}/dead-letters",
            "destination": "nav",
            "category": "browse",
            "url_route": "erpsync-dead-letters",
        }
    ]
