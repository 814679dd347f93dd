"""`erpsync state ...`: create or upgrade the state store, show where it is."""

from __future__ import annotations

import argparse

from erpsync_airflow.cli._common import store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("state", help="state store: migrate, info")
    s = p.add_subparsers(dest="cmd", required=True)
    m = s.add_parser("migrate", help="create or upgrade the state store tables (idempotent)")
    m.set_defaults(func=_migrate)
    i = s.add_parser("info", help="where the state store is and its schema revision")
    i.set_defaults(func=_info)


def _migrate(args: argparse.Namespace) -> int:
    st = store(migrate=True)
    print(
        f"state store {st.engine.url.render_as_string(hide_password=True)} at revision {st.current_revision()}"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    st = store(migrate=False)
    print(f"url: {st.engine.url.render_as_string(hide_password=True)}")
    print(f"revision: {st.current_revision() or '(not migrated: run `erpsync state migrate`)'}")
    return 0
