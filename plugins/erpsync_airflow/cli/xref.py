"""`erpsync xref list|show|bind|unbind`: the cross-references (SKU <-> ERP item, store location <->
warehouse, customer) an operator fixes when a record is dead-lettered for a missing one."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from erpsync import display
from erpsync_airflow.cli._common import csv_table, quiet_stdout, show, store, table

COLUMNS = ["system", "entity", "external_id", "internal_id", "last_synced_at"]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return ""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("xref", help="view and edit cross-references (SKU <-> item, location <-> warehouse, ...)")
    s = p.add_subparsers(dest="cmd", required=True)

    ls = s.add_parser("list", help="list cross-references")
    ls.add_argument("--system", help="erp | storefront")
    ls.add_argument("--entity", "--kind", dest="entity", help="e.g. item, customer, warehouse, sales_order")
    ls.add_argument("--search", help="substring of either id (case-insensitive)")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--format", choices=("table", "csv"), default="table")
    ls.set_defaults(func=_list)

    for name, helptext, func in (("show", "one cross-reference with its audited changes", _show),
                                 ("bind", "bind (or rebind) an external id to the other system's id", _bind),
                                 ("unbind", "remove a binding", _unbind)):
        c = s.add_parser(name, help=helptext)
        c.add_argument("system", help="the system the internal id belongs to: erp | storefront")
        c.add_argument("entity", help="e.g. item (storefront SKU -> ERP item code), customer, warehouse")
        c.add_argument("external_id", help="the id on the other side (e.g. the storefront SKU)")
        if name == "bind":
            c.add_argument("internal_id", help="the id in SYSTEM (e.g. the ERP item code)")
        if name in ("bind", "unbind"):
            c.add_argument("--by", default=_os_user(), help="who does it, for the audit log (default: the OS user)")
        if name == "unbind":
            c.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        c.set_defaults(func=func)


def _rows(xrefs: list) -> list[dict]:
    return [{c: getattr(x, c) for c in COLUMNS} for x in xrefs]


def _list(args: argparse.Namespace) -> int:
    with quiet_stdout(args.format == "csv"):
        st = store()
    rows = _rows(st.list_xrefs(system=args.system, entity=args.entity, search=args.search, limit=args.limit))
    if args.format == "csv":
        sys.stdout.write(csv_table(rows, COLUMNS))
        return 0
    print(table(rows, COLUMNS))
    print(f"{len(rows)} cross-reference(s)")
    return 0


def _found(st: Any, args: argparse.Namespace) -> Any:
    """The cross-reference the arguments name, or None after saying so on stderr."""
    x = st.get_xref(args.system, args.entity, args.external_id)
    if x is None:
        print(f"erpsync: no {display.line(args.system)} {display.line(args.entity)} cross-reference for "
              f"{display.line(args.external_id)!r}", file=sys.stderr)
    return x


def _show(args: argparse.Namespace) -> int:
    from erpsync import xrefs

    st = store()
    x = _found(st, args)
    if x is None:
        return 1
    print(show(x))
    changes = xrefs.history(st, args.system, args.entity, args.external_id)
    if changes:
        print(table([{"at": a.at, "by": (a.request or {}).get("by"), "operation": a.operation,
                      "internal_id": (a.request or {}).get("internal_id"), "was": (a.request or {}).get("was")}
                     for a in changes], ["at", "by", "operation", "internal_id", "was"]))
    return 0


def _bind(args: argparse.Namespace) -> int:
    from erpsync import xrefs

    try:
        new, before = xrefs.bind(store(), system=args.system, entity=args.entity, external_id=args.external_id,
                                 internal_id=args.internal_id, by=args.by)
    except ValueError as exc:  # an empty or "None" id, no --by: nothing was written
        print(f"erpsync: {display.text(exc)}", file=sys.stderr)
        return 2
    was = f" (was {display.line(before.internal_id)})" if before and before.internal_id != new.internal_id else ""
    print(f"bound {display.line(new.system)} {display.line(new.entity)} {display.line(new.external_id)} -> "
          f"{display.line(new.internal_id)}{was} by {display.line(args.by)}")
    return 0


def _unbind(args: argparse.Namespace) -> int:
    from erpsync import xrefs

    st = store()
    x = _found(st, args)
    if x is None:
        return 1
    if not args.yes:
        prompt = (f"unbind {display.line(x.system)} {display.line(x.entity)} {display.line(x.external_id)} -> "
                  f"{display.line(x.internal_id)}? [y/N] ")
        try:
            answer = input(prompt) if sys.stdin.isatty() else (print(prompt, end="") or sys.stdin.readline())
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("not unbound (answer y, or pass --yes)")
            return 1
    try:
        removed = xrefs.unbind(st, system=args.system, entity=args.entity, external_id=args.external_id, by=args.by)
    except ValueError as exc:
        print(f"erpsync: {display.text(exc)}", file=sys.stderr)
        return 2
    if removed is None:  # gone in between
        print("erpsync: it was already unbound", file=sys.stderr)
        return 1
    print(f"unbound {display.line(removed.system)} {display.line(removed.entity)} "
          f"{display.line(removed.external_id)} (was {display.line(removed.internal_id)}) by {display.line(args.by)}")
    return 0
