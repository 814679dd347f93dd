"""Shared set-up of the inventory benchmarks: a warmed sandbox, a state store, a context, counters."""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests

from erpsync.connectors.http import RetryPolicy
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.flows.base import FlowContext
from erpsync.state import StateStore

SET = "POST /admin/api/inventory_levels/set"
LOCATIONS = 3


def warm(sb: Any) -> None:
    """Derive the seeded stock columns in both services (a database would simply have them)."""
    def post(system: str) -> None:  # minutes at a million records: longer than the launcher's admin timeout
        requests.post(f"{sb.url(system)}/_admin/warm", timeout=900).raise_for_status()

    threads = [threading.Thread(target=post, args=(s,)) for s in ("erp", "storefront")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def context(urls: dict[str, str], db_url: str, flow: str, run_id: str, **params: Any) -> FlowContext:
    retry = RetryPolicy(max_attempts=3, base_delay=0.2)
    erp = SandboxErpAdapter(urls["erp"], urls["erp_user"], urls["erp_password"], timeout=120, retry=retry)
    sf = SandboxStorefrontAdapter(urls["storefront"], urls["token"], timeout=120, retry=retry)
    store = StateStore.from_url(db_url)
    store.migrate()
    log = logging.getLogger(f"bench.{flow}")
    log.setLevel(logging.ERROR)
    return FlowContext.for_run(flow=flow, run_id=run_id, store=store, erp=erp, storefront=sf, params=params,
                               log=log)


def urls_of(sb: Any) -> dict[str, str]:
    return {"erp": sb.erp_url, "storefront": sb.storefront_url, "erp_user": sb.erp_user,
            "erp_password": sb.erp_password, "token": sb.token}


def set_calls(sb: Any) -> int:
    return sum(sb.stats("storefront")["requests"].get(SET, {}).values())
