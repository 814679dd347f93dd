"""`erpsync`: the operator's command line (state store, dead letters, approvals, ...).

Each command group lives in its own module of this package with a ``register(subparsers)``
function; add the module name to ``GROUPS``. Commands that talk to external systems get their
adapters through the same hooks as the tasks, so credentials still come only from Connections
(``AIRFLOW_CONN_*`` or a secrets backend); ``source scripts/airflow-env.sh`` sets the sandbox ones.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

GROUPS: tuple[str, ...] = (
    "state", "dead_letters", "approvals", "reliability", "migration", "pools", "connectors", "xref")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="erpsync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from erpsync import display
    from erpsync.errors import ErpsyncError
    from erpsync_airflow.cli._common import safe_output

    args = build_parser().parse_args(argv)
    with safe_output():  # every line printed is neutralised (erpsync.display): data cannot drive the terminal
        try:
            return int(args.func(args) or 0)
        except (ErpsyncError, LookupError) as exc:  # ConfigError, MissingConnectionError, ...
            print(f"erpsync: {display.text(exc)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
