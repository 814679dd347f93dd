"""`erpsync connectors list`: the capability matrix of the built-in connectors."""

from __future__ import annotations

import argparse

from erpsync_airflow.cli._common import table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("connectors", help="the connectors and what each supports (capability matrix)")
    s = p.add_subparsers(dest="action", required=True)
    ls = s.add_parser("list", help="one row per capability, one column per connector (yes / no / - for another side)")
    ls.add_argument("--notes", action="store_true", help="also list why each connector lacks what it lacks")
    ls.set_defaults(func=_list)


def _list(args: argparse.Namespace) -> int:
    from erpsync.connectors.capabilities import capabilities_of, known_adapters, matrix

    adapters = known_adapters()
    print(table(matrix(adapters), ["capability", *adapters, "flows"]))
    if args.notes:
        for label, cls in adapters.items():
            caps = capabilities_of(cls)
            for cap, note in caps.notes:
                print(f"{label} ({caps.name}) lacks {cap}: {note}")
    return 0
