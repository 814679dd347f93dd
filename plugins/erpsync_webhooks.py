"""Airflow plugin: the erpsync webhook receiver on Airflow's API server (issue 21).

``fastapi_apps`` mounts ``erpsync_airflow.webhooks`` at ``/erpsync-webhooks``: signed deliveries
from the storefront and the ERP are stored in the state store's inbox, which the triggerer's
``InboxTrigger`` watches (``erpsync_airflow.events``). Not behind Airflow's login: senders
authenticate by HMAC signature. Why here and not a service of its own: docs/event-driven.md.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from erpsync_airflow.webhooks import PREFIX, app


class ErpsyncWebhooksPlugin(AirflowPlugin):
    name = "erpsync_webhooks"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "erpsync webhooks"}]
