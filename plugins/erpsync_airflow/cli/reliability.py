"""`erpsync breaker ...` and `erpsync outbox ...`: what the circuit breakers and the outbox hold."""

from __future__ import annotations

import argparse

from erpsync_airflow.cli._common import store, table


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("breaker", help="circuit breakers per external system (shared by all workers)")
    bs = b.add_subparsers(dest="cmd", required=True)
    st = bs.add_parser("status", help="state of each system's breaker and its latest events")
    st.set_defaults(func=_breaker_status)
    rs = bs.add_parser("close", help="close a breaker by hand (after a fix, to skip the cooldown)")
    rs.add_argument("system", help="erp | storefront | ...")
    rs.set_defaults(func=_breaker_close)

    o = sub.add_parser("outbox", help="records kept while their target system was unavailable")
    os_ = o.add_subparsers(dest="cmd", required=True)
    s = os_.add_parser("status", help="rows per flow and status, and the oldest waiting records")
    s.add_argument("--flow")
    s.set_defaults(func=_outbox_status)


def _breaker_status(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from erpsync.state import schema as t

    st = store()
    with st.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(t.circuit_breakers).order_by("system")).mappings()]
        events = [dict(r) for r in conn.execute(
            sa.select(t.breaker_events).order_by(t.breaker_events.c.id.desc()).limit(10)).mappings()]
    cols = ["system", "state", "failures", "opened_at", "probe_owner", "last_error"]
    print(table(rows, cols) if rows else "no breaker has recorded anything yet")
    if events:
        print("\nlatest events:")
        print(table(events, ["at", "system", "event", "detail"]))
    return 0


def _breaker_close(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from erpsync.state import schema as t

    st = store()
    b = t.circuit_breakers
    now = st.clock()
    with st.engine.begin() as conn:
        n = conn.execute(sa.update(b).where(b.c.system == args.system).values(
            state="closed", failures=0, opened_at=None, probe_owner=None, probe_until=None, updated_at=now)).rowcount
        if n:
            conn.execute(sa.insert(t.breaker_events).values(system=args.system, event="closed_by_hand",
                                                            detail="erpsync breaker close", at=now))
    print(f"{args.system}: closed" if n else f"{args.system}: no breaker row (nothing to close)")
    return 0 if n else 1


def _outbox_status(args: argparse.Namespace) -> int:
    from erpsync.reliability import Outbox, outbox_counts

    st = store()
    counts = outbox_counts(st)
    rows = [{"flow": f, "status": s, "rows": n} for (f, s), n in sorted(counts.items()) if not args.flow or f == args.flow]
    print(table(rows, ["flow", "status", "rows"]) if rows else "the outbox is empty")
    for flow in sorted({f for f, s in counts if s != "done" and (not args.flow or f == args.flow)}):
        waiting = [i for i in Outbox(st, flow).items(limit=100_000) if i.status != "done"][:10]
        print(f"\n{flow}: oldest waiting")
        print(table([{"id": i.id, "external_id": i.external_id, "status": i.status, "attempts": i.attempts,
                      "since": i.created_at, "last_error": i.last_error} for i in waiting],
                    ["id", "external_id", "status", "attempts", "since", "last_error"]))
    return 0
