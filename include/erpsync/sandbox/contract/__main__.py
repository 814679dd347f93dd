"""``python -m erpsync.sandbox.contract shopify --port N``: run a vendor simulator for a person.

The first stdout line names the bound URL; ``GET /_admin/contract`` lists the rules (with their
cites), the rules exercised so far and every request that broke one.
"""

from __future__ import annotations

import argparse
import sys

from erpsync.sandbox.data import SeedOptions


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m erpsync.sandbox.contract", description=__doc__)
    p.add_argument("dialect", choices=["shopify"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8103, help="0 = any free port")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--skus", type=int, default=200)
    p.add_argument("--locations", type=int, default=3)
    p.add_argument("--orders", type=int, default=500)
    p.add_argument("--token", default=None, help="shopify: the X-Shopify-Access-Token it accepts")
    p.add_argument("--bucket-size", type=float, default=2000, help="shopify: query cost bucket, in points")
    p.add_argument("--restore-rate", type=float, default=100, help="shopify: points restored per second")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from erpsync.sandbox.contract.shopify import DEFAULT_TOKEN, VERSION, ShopifyService
    from erpsync.sandbox.server import serve

    options = SeedOptions(seed=a.seed, skus=a.skus, locations=a.locations, orders=a.orders)
    svc = ShopifyService(options, token=a.token or DEFAULT_TOKEN, bucket_size=a.bucket_size,
                         restore_rate=a.restore_rate)
    svc.verbose = a.verbose
    print(f"Shopify Admin GraphQL {VERSION} simulator: POST /admin/api/{VERSION}/graphql.json with "
          f"X-Shopify-Access-Token: {a.token or DEFAULT_TOKEN}", file=sys.stderr, flush=True)
    serve(svc, a.host, a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
