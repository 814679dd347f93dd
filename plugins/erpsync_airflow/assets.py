"""Assets erpsync produces, defined once so producer and consumer DAGs name the same thing."""

from __future__ import annotations

from airflow.sdk import Asset

from erpsync.flows.specs import SPECS

#: updated by customers_sync after every run that synced customers
CUSTOMERS = Asset(name="erpsync_customers", uri=SPECS["customers_sync"].produces)

#: updated by catalog_sync after every run; the inventory flow is scheduled on it (stock is never
#: pushed for a product the store does not have: catalog_sync binds ("storefront", "variant", sku))
CATALOG = Asset(name="erpsync_catalog", uri=SPECS["catalog_sync"].produces)
