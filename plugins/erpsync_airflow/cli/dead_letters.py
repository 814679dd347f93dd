"""`erpsync dead-letters ...`: list, show, ignore and replay records that could not be synced."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from erpsync import display
from erpsync_airflow.cli._common import csv_table, flow_context, quiet_stdout, show, store, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dead-letters", help="triage records that could not be synced")
    s = p.add_subparsers(dest="cmd", required=True)

    ls = s.add_parser("list", help="list dead letters (open by default)")
    ls.add_argument("--flow")
    ls.add_argument("--status", default="open", help="open | replayed | resolved | ignored | all")
    ls.add_argument("--reason", help="substring of the reason")
    ls.add_argument("--since", type=_time, help="last seen at or after (ISO 8601)")
    ls.add_argument("--until", type=_time, help="last seen before (ISO 8601)")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--format", choices=("table", "csv"), default="table",
                    help="csv: for a spreadsheet (formula-like values are quoted, OWASP rule)")
    ls.set_defaults(func=_list)

    sh = s.add_parser("show", help="one dead letter with its payload")
    sh.add_argument("id", type=int)
    sh.set_defaults(func=_show)

    ig = s.add_parser("ignore", help="mark dead letters as ignored (kept, no longer open)")
    ig.add_argument("ids", type=int, nargs="+")
    ig.set_defaults(func=_ignore)

    rp = s.add_parser(
        "replay",
        help="run dead letters' payloads through their flow again: one (--id), several (--ids) or by filter",
        description="Replay one dead letter (--id), several (--ids) or every open one matching a filter "
        "(--flow, --reason, --since, --until, --run-id). --dry-run previews what would be sent and writes "
        "nothing. Exactly once: the ledger and the look-up by key make a second replay a no-op.",
    )
    rp.add_argument("--id", type=int, dest="dl_id", help="one dead letter")
    rp.add_argument("--ids", type=int, nargs="+", default=[], help="several dead letters")
    rp.add_argument("--flow", help="filter: flow (e.g. orders_sync)")
    rp.add_argument("--reason", help="filter: substring of the reason (e.g. unknown_sku)")
    rp.add_argument("--since", type=_time, help="filter: last seen at or after (ISO 8601)")
    rp.add_argument("--until", type=_time, help="filter: last seen before (ISO 8601)")
    rp.add_argument("--run-id", help="filter: the run that dead-lettered them (the task log names it)")
    rp.add_argument("--limit", type=int, default=500, help="at most this many (filter only)")
    rp.add_argument("--dry-run", action="store_true", help="map only and show what would be sent")
    rp.add_argument("--payload-file", help="JSON file with an edited payload (with --id only)")
    rp.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="flow params, e.g. guest_policy=create",
    )
    rp.set_defaults(func=_replay)


def _time(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _list(args: argparse.Namespace) -> int:
    with quiet_stdout(args.format == "csv"):  # logs (the store's migration) must not end up in the CSV
        st = store()
    rows = st.list_dead_letters(
        flow=args.flow,
        status=None if args.status == "all" else args.status,
        reason_like=args.reason,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    cols = ["id", "flow", "entity", "external_id", "status", "attempts", "last_seen", "reason"]
    if args.format == "csv":
        sys.stdout.write(csv_table([{c: getattr(r, c) for c in cols} for r in rows], cols))
        return 0
    print(table([{c: getattr(r, c) for c in cols} for r in rows], cols))
    print(f"{len(rows)} dead letter(s)")
    return 0


def _show(args: argparse.Namespace) -> int:
    dl = store().get_dead_letter(args.id)
    if dl is None:
        print(f"erpsync: no dead letter #{args.id}", file=sys.stderr)
        return 1
    print(show(dl))  # bounded and neutralised: names and payloads are data, shown as text
    return 0


def _ignore(args: argparse.Namespace) -> int:
    n = store().set_dead_letter_status(args.ids, "ignored")
    print(f"{n} dead letter(s) marked ignored")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from erpsync.errors import ConfigError
    from erpsync.flows.replay import ReplayFilter, replay, replay_many

    st = store()
    params = dict(p.split("=", 1) for p in args.param)
    if args.dl_id is not None and not args.ids:
        dl = st.get_dead_letter(args.dl_id)
        if dl is None:
            print(f"erpsync: no dead letter #{args.dl_id}", file=sys.stderr)
            return 1
        payload = None
        if args.payload_file:
            with open(args.payload_file, encoding="utf-8") as fh:
                payload = json.load(fh)
        outcome = replay(flow_context(dl.flow, params), dl, payload=payload, dry_run=args.dry_run)
        print(f"dead letter #{outcome.dead_letter_id} ({display.line(outcome.external_id)}): {outcome.result}: "
              f"{display.text(outcome.detail)}")
        return 0 if outcome.result in {"resolved", "skipped", "would_send"} else 1
    if args.payload_file:
        raise ConfigError("--payload-file edits one dead letter: use it with --id")
    ids = tuple(args.ids) + ((args.dl_id,) if args.dl_id is not None else ())
    flt = ReplayFilter(ids=ids, flow=args.flow, reason=args.reason, since=args.since, until=args.until,
                       run_id=args.run_id, limit=args.limit)
    contexts: dict[str, object] = {}

    def ctx_for(flow: str):
        if flow not in contexts:
            contexts[flow] = flow_context(flow, params)
        return contexts[flow]

    print(f"selecting {flt.describe()}")
    report = replay_many(ctx_for, st, flt, dry_run=args.dry_run)
    print(report.render())
    return 0 if report.ok else 1
