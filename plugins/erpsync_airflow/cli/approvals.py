"""`erpsync approvals ...`: list, show, approve and reject changes a flow held for a person.

pricing_sync holds price changes that break the price guard (docs/runbooks/price-cascade.md);
an approved change is published by the flow's next run, a rejected one is not proposed again
until the ERP value changes.
"""

from __future__ import annotations

import argparse
import sys

from erpsync import display
from erpsync_airflow.cli._common import csv_table, quiet_stdout, show, store, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("approvals", help="review changes held for approval (e.g. large price changes)")
    s = p.add_subparsers(dest="cmd", required=True)

    ls = s.add_parser("list", help="list approvals (pending by default)")
    ls.add_argument("--flow", help="e.g. pricing_sync")
    ls.add_argument("--status", default="pending", help="pending | approved | rejected | published | all")
    ls.add_argument("--limit", type=int, default=200)
    ls.add_argument("--format", choices=("table", "csv"), default="table",
                    help="csv: for a spreadsheet (formula-like values are quoted, OWASP rule)")
    ls.set_defaults(func=_list)

    sh = s.add_parser("show", help="one approval with its proposed and current values")
    sh.add_argument("id", type=int)
    sh.set_defaults(func=_show)

    for name, decision, help_text in (
        ("approve", "approved", "approve held changes: the flow publishes them in its next run"),
        ("reject", "rejected", "reject held changes: they are not published nor proposed again"),
    ):
        d = s.add_parser(name, help=help_text)
        d.add_argument("ids", type=int, nargs="*", help="approval ids")
        d.add_argument("--all-pending", action="store_true", help="every pending approval (of --flow)")
        d.add_argument("--flow", help="with --all-pending: only this flow")
        d.add_argument("--by", required=True, help="who decides (kept with the decision)")
        d.add_argument("--note", default="", help="why")
        d.set_defaults(func=_decide, decision=decision)


def _row(a) -> dict:
    proposed = a.proposed if isinstance(a.proposed, dict) else {}
    current = a.current if isinstance(a.current, dict) else {}
    data = proposed.get("data") if isinstance(proposed.get("data"), dict) else {}
    return {
        "id": a.id,
        "flow": a.flow,
        # erpsync's own decision (compare-and-set: the ERP no longer says it), not a person's
        "status": "superseded" if a.status == "rejected" and (a.note or "").startswith("superseded:") else a.status,
        "key": proposed.get("key", a.external_id),
        "rule": proposed.get("rule", ""),
        "current": current.get("price"),
        "proposed": data.get("price"),
        "currency": proposed.get("currency"),
        "reason": a.reason,
        "decided_by": a.decided_by,
    }


def _list(args: argparse.Namespace) -> int:
    with quiet_stdout(args.format == "csv"):  # logs (the store's migration) must not end up in the CSV
        st = store()
    rows = st.list_approvals(status=None if args.status == "all" else args.status, flow=args.flow)
    shown = rows[: args.limit]
    cols = ["id", "flow", "status", "key", "rule", "current", "proposed", "currency", "reason", "decided_by"]
    if args.format == "csv":
        sys.stdout.write(csv_table([_row(a) for a in shown], cols))
        return 0
    print(table([_row(a) for a in shown], cols))
    more = f" (showing {len(shown)})" if len(rows) > len(shown) else ""
    print(f"{len(rows)} approval(s){more}")
    return 0


def _show(args: argparse.Namespace) -> int:
    a = store().get_approval(args.id)
    if a is None:
        print(f"erpsync: no approval #{args.id}", file=sys.stderr)
        return 1
    print(show(a))
    return 0


def _decide(args: argparse.Namespace) -> int:
    st = store()
    ids = list(args.ids)
    if args.all_pending:
        ids += [a.id for a in st.list_approvals(status="pending", flow=args.flow)]
    if not ids:
        print("erpsync: name approval ids or use --all-pending", file=sys.stderr)
        return 2
    failed = 0
    for approval_id in dict.fromkeys(ids):
        try:
            st.decide_approval(approval_id, args.decision, args.by, note=args.note)
            print(f"#{approval_id} {args.decision}")
        except (KeyError, ValueError) as exc:
            failed += 1
            print(f"erpsync: #{approval_id}: {display.text(exc)}", file=sys.stderr)
    if args.decision == "approved":
        print("approved changes are published by the next pricing_sync run (or trigger it now)")
    return 1 if failed else 0
