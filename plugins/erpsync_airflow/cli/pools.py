"""`erpsync pools sync`: one Airflow pool per external system, sized from its Connection.

The rate budget of a system is in the extra of its Connection (``{"rps": 40, "concurrency":
15}``, ``erpsync.reliability.budget``); its pool ``erpsync_<system>`` gets ``concurrency``
slots. The tasks of every DAG run in the pool of the system they load
(``erpsync_airflow.defaults.POOL_SYSTEMS``), so a task whose pool does not exist is never
scheduled: ``scripts/up.sh`` and the compose ``airflow-init`` service run this after ``airflow db
migrate``; run it again after changing a Connection's limits (it updates the pools in place).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pools", help="the Airflow pools of the rate budget (one per external system)")
    ps = p.add_subparsers(dest="cmd", required=True)
    s = ps.add_parser("sync", help="create or resize the pools from the Connections' extras (airflow pools set)")
    s.add_argument("--dry-run", action="store_true", help="print the airflow commands instead of running them")
    s.set_defaults(func=_sync)


def airflow_cli() -> list[str]:
    """The ``airflow`` command: ``ERPSYNC_AIRFLOW_CLI`` (a command line), else this Python's airflow."""
    given = os.environ.get("ERPSYNC_AIRFLOW_CLI", "").strip()
    return shlex.split(given) if given else [sys.executable, "-m", "airflow"]


def limits_from_connections() -> tuple[dict[str, Any], list[str]]:
    """Each system's Limits from its Connection; a missing Connection gives the defaults (and a note)."""
    from erpsync.reliability.budget import SYSTEMS, Limits
    from erpsync_airflow.hooks import ErpHook, MissingConnectionError, StorefrontHook

    hooks = {"erp": ErpHook, "storefront": StorefrontHook}
    limits: dict[str, Any] = {}
    notes: list[str] = []
    for system in SYSTEMS:
        hook = hooks[system]()
        try:
            limits[system] = hook.get_limits()
        except MissingConnectionError:
            limits[system] = Limits()
            notes.append(f"Connection {hook.conn_id} is not defined: pool of the {system} sized from the defaults")
    return limits, notes


def pool_commands() -> tuple[list[list[str]], list[dict[str, Any]], list[str]]:
    """The ``airflow pools set NAME SLOTS DESCRIPTION`` command of each pool, the specs, the notes."""
    from erpsync.reliability.budget import pool_specs

    limits, notes = limits_from_connections()
    specs = pool_specs(limits)
    cli = airflow_cli()
    return [[*cli, "pools", "set", s["name"], str(s["slots"]), s["description"]] for s in specs], specs, notes


def _sync(args: argparse.Namespace) -> int:
    commands, specs, notes = pool_commands()
    for note in notes:
        print(f"erpsync pools: {note}", file=sys.stderr)
    for cmd, spec in zip(commands, specs, strict=True):
        if args.dry_run:
            print(shlex.join(cmd))
            continue
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"erpsync pools: `airflow pools set {spec['name']}` failed:\n{done.stderr.strip()[-2000:]}",
                  file=sys.stderr)
            return 1
        rate = f"{spec['rps']:g} req/s shared" if spec["rps"] else "no req/s limit"
        print(f"pool {spec['name']}: {spec['slots']} slot(s), {rate}")
    return 0
