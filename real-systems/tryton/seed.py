"""Initialise a fresh Tryton database for erpsync (run once, on the template database).

Run with the Tryton venv's python, after ``trytond-admin --all``:
``var/real-systems/tryton/venv/bin/python real-systems/tryton/seed.py -c CONF -d DB``.

Sets up what a shop's ERP has before the first order: a company in USD, the admin user in that
company, a few countries, sales that invoice manually (no chart of accounts needed) and ship on
order, and one carrier for shipment tracking. Products, stock, parties and sales are created by
the tests (and by erpsync) over JSON-RPC, like a real user would.
"""

from __future__ import annotations

import argparse
from decimal import Decimal

COUNTRIES = {"US": "United States", "DE": "Germany", "FR": "France", "GB": "United Kingdom",
             "NL": "Netherlands", "CA": "Canada"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("-d", "--database", required=True)
    args = parser.parse_args()

    from trytond.config import config

    config.update_etc(args.config)
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    Pool.start()
    pool = Pool(args.database)
    pool.init()
    extras: dict = {}
    while True:  # trytond's own retry: a TransactionError says which tables to lock first
        try:
            with Transaction().start(args.database, 0, context={}, **extras) as transaction:
                seed(pool)
                transaction.commit()
            break
        except TransactionError as exc:
            exc.fix(extras)
    print(f"seeded {args.database}")


def seed(pool) -> None:  # noqa: ANN001 - trytond types
    from trytond.transaction import Transaction

    Currency = pool.get("currency.currency")
    Party = pool.get("party.party")
    Company = pool.get("company.company")
    User = pool.get("res.user")
    Country = pool.get("country.country")

    usd, = Currency.create([{"name": "US Dollar", "code": "USD", "symbol": "$", "rounding": Decimal("0.01"),
                             "digits": 2}])
    company_party, = Party.create([{"name": "erpsync Demo Inc."}])
    company, = Company.create([{"party": company_party.id, "currency": usd.id}])
    for user in User.search([("login", "=", "admin")]):
        User.write([user], {"companies": [("add", [company.id])], "company": company.id})
    Country.create([{"code": code, "name": name} for code, name in COUNTRIES.items()])
    with Transaction().set_context(company=company.id):
        seed_company(pool)


def seed_company(pool) -> None:  # noqa: ANN001 - trytond types
    SaleConfig = pool.get("sale.configuration")
    Template = pool.get("product.template")
    Uom = pool.get("product.uom")
    Party = pool.get("party.party")
    Carrier = pool.get("carrier")

    config = SaleConfig(1)
    config.sale_invoice_method = "manual"
    config.sale_shipment_method = "order"
    config.save()

    unit, = Uom.search([("symbol", "=", "u")], limit=1)
    service, = Template.create([{"name": "Shipping", "type": "service", "default_uom": unit.id,
                                 "salable": True, "sale_uom": unit.id,
                                 "list_price": Decimal("0"), "products": [("create", [{"suffix_code": "SHIPPING"}])]}])
    carrier_party, = Party.create([{"name": "UPS"}])
    Carrier.create([{"party": carrier_party.id, "carrier_product": service.products[0].id}])


if __name__ == "__main__":
    main()
