"""``python -m erpsync.sandbox [both|erp|storefront]``: run the simulated systems.

``both`` (the default) runs each service as its own child process and stops both on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from erpsync.sandbox.data import SeedOptions
from erpsync.sandbox.launcher import (
    DEFAULT_PASSWORD,
    DEFAULT_TOKEN,
    DEFAULT_USER,
    SandboxStartError,
    start_sandbox,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m erpsync.sandbox", description=__doc__)
    p.add_argument("service", nargs="?", choices=["both", "erp", "storefront"], default="both")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="port of a single service (0 = any free port)")
    p.add_argument("--erp-port", type=int, default=8101)
    p.add_argument("--storefront-port", type=int, default=8102)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--skus", type=int, default=200, help="ERP items = storefront SKUs")
    p.add_argument("--locations", type=int, default=3, help="warehouses; SKU-locations = skus * locations")
    p.add_argument("--customers", type=int, default=2000)
    p.add_argument("--orders", type=int, default=500)
    p.add_argument("--storefront-token", default=DEFAULT_TOKEN)
    p.add_argument("--erp-user", default=DEFAULT_USER)
    p.add_argument("--erp-password", default=DEFAULT_PASSWORD)
    p.add_argument("--session-ttl", type=float, default=1800, help="ERP session lifetime in seconds")
    p.add_argument("--auto-ship-seconds", type=float, default=0,
                   help="ERP ships open orders older than this (0 = only via POST /_admin/ship)")
    p.add_argument("--default-warehouse", default=None,
                   help="ERP: the warehouse of a sales order that names none (default: none, such an order is "
                        "refused with 422 warehouse_required when there are several warehouses)")
    p.add_argument("--inventory-policy", choices=["deny", "continue", "untracked"], default="deny",
                   help="storefront: refuse checkouts beyond stock (deny, the default), let levels go negative "
                        "(continue) or ignore them (untracked)")
    p.add_argument("--no-taxes", action="store_true", help="storefront: charge no tax on new orders")
    p.add_argument("--tax-rate", default=None,
                   help='storefront: one flat tax rate for new orders, e.g. 0.10 (default: by shipping country)')
    p.add_argument("--tax-code", default="TAX", help="storefront: the tax code of --tax-rate")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    options = SeedOptions(seed=a.seed, skus=a.skus, locations=a.locations, customers=a.customers, orders=a.orders)
    if a.service == "erp":
        from erpsync.sandbox.erp import ErpService
        from erpsync.sandbox.server import serve

        svc: Any = ErpService(options, username=a.erp_user, password=a.erp_password, session_ttl=a.session_ttl,
                              auto_ship_seconds=a.auto_ship_seconds, default_warehouse=a.default_warehouse)
        svc.verbose = a.verbose
        serve(svc, a.host, a.erp_port if a.port is None else a.port)
        return 0
    if a.service == "storefront":
        from erpsync.sandbox.server import serve
        from erpsync.sandbox.storefront import StorefrontService

        svc = StorefrontService(options, token=a.storefront_token, inventory_policy=a.inventory_policy,
                                taxes=not a.no_taxes, tax_rate=a.tax_rate, tax_code=a.tax_code)
        svc.verbose = a.verbose
        serve(svc, a.host, a.storefront_port if a.port is None else a.port)
        return 0
    try:
        sandbox = start_sandbox(
            erp_port=a.erp_port, storefront_port=a.storefront_port, host=a.host, token=a.storefront_token,
            erp_user=a.erp_user, erp_password=a.erp_password, session_ttl=a.session_ttl,
            auto_ship_seconds=a.auto_ship_seconds, default_warehouse=a.default_warehouse,
            inventory_policy=a.inventory_policy, taxes=not a.no_taxes, tax_rate=a.tax_rate, tax_code=a.tax_code,
            seed=options.seed, skus=options.skus, locations=options.locations, customers=options.customers,
            orders=options.orders)
    except SandboxStartError as exc:
        print(f"sandbox failed to start: {exc}", file=sys.stderr)
        return 1
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"ERP        {sandbox.erp_url}  (user {a.erp_user})\n"
          f"storefront {sandbox.storefront_url}  (token {a.storefront_token})\n"
          f"logs       {sandbox.erp.log_path.parent}\nCtrl-C stops both.", flush=True)
    code = 0
    while not stopping:
        if not sandbox.alive():
            print("a sandbox service exited; stopping the other", file=sys.stderr)
            code = 1
            break
        time.sleep(0.2)
    sandbox.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
