"""One task process of tests/integration/test_rate_budget_sandbox.py: build one flow's context the
way a task does (adapters from Connection-like settings, the shared state store), report ready,
wait for the start signal, run the flow, print its summary as one JSON line.

    python -m tests.integration.rate_budget_child '{"flow": "customers_sync", ...}'
"""

from __future__ import annotations

import json
import logging
import pathlib
import sys
import time

from erpsync.connectors.registry import build_erp, build_storefront
from erpsync.errors import TransientError
from erpsync.flows import customers, orders
from erpsync.flows.base import FlowContext
from erpsync.reliability.budget import TokenBucket
from erpsync.state import StateStore

RUNS = {"customers_sync": customers.run, "orders_sync": orders.run}


def main(cfg: dict) -> None:
    logging.basicConfig(level=logging.WARNING)
    store = StateStore.from_url(cfg["state_url"])
    limits = {"rps": cfg["rps"], "concurrency": cfg["concurrency"]} if cfg["mode"] == "shared" else {}
    erp = build_erp("sandbox", cfg["erp_url"], cfg["erp_user"], cfg["erp_password"],
                    {"conn_id": "erp_default", "timeout": 5, **limits})
    storefront = build_storefront("sandbox", cfg["storefront_url"], cfg["token"], {"timeout": 5})

    def context(attempt: int) -> FlowContext:
        ctx = FlowContext.for_run(flow=cfg["flow"], run_id=f"budget-{attempt}", store=store, erp=erp,
                                  storefront=storefront, params=dict(cfg.get("params") or {}),
                                  log=logging.getLogger(cfg["flow"]))
        if cfg["mode"] == "own":  # the counterfactual: each process keeps to rps on its own
            erp.http.throttle = TokenBucket(cfg["rps"], burst=1)
        return ctx

    context(0)  # the imports and the store's first touches happen before the start signal
    pathlib.Path(cfg["ready"]).touch()
    go = pathlib.Path(cfg["go"])
    while not go.exists():
        time.sleep(0.01)
    started = time.time()
    for attempt in range(1, 4):  # as Airflow's retries would
        try:
            summary = RUNS[cfg["flow"]](context(attempt))
            break
        except TransientError:
            if attempt == 3:
                raise
    print(json.dumps({"flow": cfg["flow"], "done": summary.done, "quarantined": summary.quarantined,
                      "started": started, "finished": time.time()}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
