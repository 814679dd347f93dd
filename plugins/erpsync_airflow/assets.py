"""Assets erpsync produces, defined once so producer and consumer DAGs name the same thing."""

from __future__ import annotations

from airflow.sdk import Asset

#: updated by customers_sync after every run that synced customers
CUSTOMERS = Asset(name="erpsync_customers", uri="erpsync://customers")
