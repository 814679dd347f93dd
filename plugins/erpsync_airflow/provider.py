"""Provider metadata: registers the erpsync connection types so the UI offers them.

Airflow reads it through the ``apache_airflow_provider`` entry point
(``erpsync_airflow.provider:get_provider_info`` in ``pyproject.toml``). Without the entry point
the connections still work (tasks read them by id); only the UI's connection form lacks them.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "erpsync",
        "name": "erpsync",
        "description": "Hooks turning Airflow Connections into erpsync ERP/storefront adapters and its state store.",
        "hooks": [{"integration-name": "erpsync", "python-modules": ["erpsync_airflow.hooks"]}],
        "connection-types": [
            {"hook-class-name": "erpsync_airflow.hooks.ErpHook", "connection-type": "erpsync_erp"},
            {
                "hook-class-name": "erpsync_airflow.hooks.StorefrontHook",
                "connection-type": "erpsync_storefront",
            },
            {"hook-class-name": "erpsync_airflow.hooks.StateStoreHook", "connection-type": "erpsync_state"},
        ],
    }
