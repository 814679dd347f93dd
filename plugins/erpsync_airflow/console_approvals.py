"""The console's Approvals page (issue 20 item 4): changes a flow held for a person, decided in the UI.

``/erpsync/approvals`` lists the held changes: prices pricing_sync's price guard held (kind
``price_change``) and risky catalog changes catalog_sync's hold rules held (``catalog_retire``,
``catalog_change``; ``erpsync.rules.catalog_holds``), each with what the store shows now
(current), what the ERP proposed, and **what the ERP says now**, read live through the ERP
adapter when the page loads. Approve and reject, one or many at once; the decider is the
logged-in Airflow user (no free text), every decision is audited (system ``operator``,
correlation id ``approval:<id>``).

Compare-and-set, twice: approving re-reads the ERP and refuses a change the ERP no longer
proposes (the page says what the ERP says now; the flow's next run supersedes the approval), and
the flow publishes an approved change only while the ERP still says it (pricing_sync's
``apply_approved``/``_take``, catalog_sync's approved changes read again by SKU): an approved
price is never published after the ERP took it back.

How the ERP's price is read now: the price rows changed since the oldest listed approval was held
(an hour of overlap for clock skew); a row not changed since still says what was held. Prices are
rounded by the default rounding policy of pricing_sync (its ``rounding`` Param unset).

Same rules as the rest of the console (``erpsync_airflow.console``): Airflow's login; reading needs
read access to the ``dead_letter_replay`` runs, deciding needs the right to trigger the flow that
held the change (``pricing_sync``, ``catalog_sync``); a form token; everything shown is escaped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from erpsync_airflow.console import (
    OPERATOR,
    PREFIX,
    _csrf,
    _fmt_time,
    _forbidden,
    _may_act,
    _may_read,
    _name,
    _page,
    _store,
    app,
    e,
)

log = logging.getLogger("erpsync_airflow.console")

PRICE_KIND = "price_change"
CATALOG_KINDS = ("catalog_retire", "catalog_change")
#: approvals listed on one page (the CLI lists them all)
LIST_LIMIT = 500
#: overlap of the "changed since held" read of ERP prices (clock skew between the ERP and us)
PRICE_LOOKBACK = dt.timedelta(hours=1)
STATUSES = ("pending", "approved", "rejected", "published", "all")


@dataclass(frozen=True, slots=True)
class ErpNow:
    """What the ERP says now of a held change: shown, and whether it still says what was held."""

    shown: str
    matches: bool | None  # None: could not be checked (the flow's own compare-and-set decides)
    why: str = ""


# --------------------------------------------------------------------------- the ERP now


def _price_of(data: Any) -> str:
    if isinstance(data, dict):
        text = str(data.get("price"))
        if data.get("sale"):
            text += " (sale" + (f" from {data['from']}" if data.get("from") else "") + \
                (f" to {data['to']}" if data.get("to") else "") + ")"
        return text
    return "-"


def prices_now(erp: Any, approvals: Sequence[Any]) -> dict[int, ErpNow]:
    """The ERP's price now for each held price (kind ``price_change``), by approval id."""
    from erpsync.connectors.registry import erp_mapping
    from erpsync.errors import MappingError
    from erpsync.model import PriceKind
    from erpsync.rules.pricing import PriceRule
    from erpsync.rules.rounding import rounding_policy

    want = {str(a.proposed.get("erp_row")): a for a in approvals
            if a.kind == PRICE_KIND and isinstance(a.proposed, dict) and a.proposed.get("erp_row")}
    out: dict[int, ErpNow] = {}
    for a in approvals:
        if a.kind == PRICE_KIND and a.id not in {w.id for w in want.values()}:
            out[a.id] = ErpNow("not checked", None, "no ERP price row recorded with it")
    if not want:
        return out
    erp_map = erp_mapping(erp)
    rounding = rounding_policy(None)
    since = min(a.created_at for a in want.values()) - PRICE_LOOKBACK
    for raw in erp.list_prices(updated_since=since):
        if not isinstance(raw, dict):
            continue
        ref = erp_map.price_ref(raw)
        a = want.pop(ref.row_id, None)
        if a is None:
            continue
        try:
            entry = erp_map.price_from_erp(raw, lambda code: code)
            price = rounding.round(entry.price, entry.currency)
            data = PriceRule(price, entry.effective_from, entry.effective_to,
                             sale=entry.kind is PriceKind.SALE).to_json()
        except (MappingError, ArithmeticError, ValueError) as exc:
            out[a.id] = ErpNow("unreadable", False, f"the ERP's row cannot be read: {exc}")
            continue
        same = data == a.proposed.get("data")
        out[a.id] = ErpNow(_price_of(data), same, "" if same else
                           f"the ERP now says {_price_of(data)}, not the {_price_of(a.proposed.get('data'))} "
                           "that was held")
        if not want:
            break
    for a in want.values():  # not changed since it was held: the ERP still says it
        out[a.id] = ErpNow(_price_of(a.proposed.get("data")), True, "unchanged since held")
    return out


def catalog_now(store: Any, erp: Any, approvals: Sequence[Any]) -> dict[int, ErpNow]:
    """The ERP's item(s) now for each held catalog change, by approval id (``erpsync.flows.catalog``)."""
    from erpsync.flows.catalog import erp_now

    out = {}
    for a in approvals:
        if a.kind in CATALOG_KINDS:
            shown, matches, why = erp_now(store, erp, a)
            out[a.id] = ErpNow(shown, matches, why)
    return out


def erp_now(store: Any, approvals: Sequence[Any]) -> tuple[dict[int, ErpNow], str]:
    """What the ERP says now of every pending approval listed, and an error if the ERP could not be read."""
    from erpsync_airflow.hooks import ErpHook

    pending = [a for a in approvals if a.status == "pending"]
    if not pending:
        return {}, ""
    erp = None
    try:
        erp = ErpHook().get_conn()
        return {**prices_now(erp, pending), **catalog_now(store, erp, pending)}, ""
    except Exception as exc:  # a refused login, the ERP down: say it; nothing can be approved
        log.warning("approvals: the ERP could not be read: %s", exc)
        return {}, f"the ERP could not be read ({type(exc).__name__}: {exc}); nothing can be approved until it can"
    finally:
        _close(erp)


def _close(adapter: Any) -> None:
    close = getattr(adapter, "close", None) or getattr(getattr(adapter, "http", None), "close", None)
    if callable(close):
        close()


# --------------------------------------------------------------------------- deciding


def _audit(store: Any, user: str, operation: str, ap: Any, request: dict[str, Any], result: str,
           response: Any = None) -> None:
    store.audit(flow=ap.flow, system=OPERATOR, operation=operation, entity="approval", external_id=ap.external_id,
                request={"by": user, "approval": ap.id, **request}, response=response, duration_ms=None,
                result=result, correlation_id=f"approval:{ap.id}")


def decide(user: str, decision: str, ids: Iterable[int], note: str) -> list[tuple[int, str, str]]:
    """Approve or reject approvals as ``user``: (id, result, detail) each. An approval is approved
    only when it is pending and the ERP still says what was held (read now)."""
    store = _store()
    note = note.strip()[:2000]
    found = []
    out: list[tuple[int, str, str]] = []
    for approval_id in dict.fromkeys(ids):
        ap = store.get_approval(approval_id)
        if ap is None:
            out.append((approval_id, "error", f"no approval #{approval_id}"))
        elif ap.status != "pending":
            out.append((approval_id, "error", f"#{approval_id} is {ap.status}, decided by {ap.decided_by or '-'}"))
        else:
            found.append(ap)
    now: dict[int, ErpNow] = {}
    if decision == "approved" and found:
        now, problem = erp_now(store, found)
        if problem:
            return out + [(ap.id, "refused", problem) for ap in found]
    for ap in found:
        check = now.get(ap.id)
        if decision == "approved" and check is not None and check.matches is False:
            detail = f"#{ap.id} cannot be approved: {check.why}"
            _audit(store, user, "approval_refused", ap, {"decision": decision, "note": note}, "refused",
                   {"erp_now": check.shown, "why": check.why})
            out.append((ap.id, "refused", detail))
            continue
        try:
            store.decide_approval(ap.id, decision, user, note=note)
        except (KeyError, ValueError) as exc:  # decided by someone else meanwhile
            out.append((ap.id, "error", str(exc)))
            continue
        _audit(store, user, f"approval_{'approve' if decision == 'approved' else 'reject'}", ap,
               {"decision": decision, "note": note}, decision,
               {"erp_now": check.shown, "checked": check.why or "the ERP still says it"} if check else None)
        out.append((ap.id, decision, f"#{ap.id} {decision} by {user}"))
    return out


# --------------------------------------------------------------------------- HTML


def _value(data: Any) -> str:
    """A stored value (current/proposed) as short text."""
    if data is None:
        return "-"
    if isinstance(data, dict):
        if "data" in data:
            return _price_of(data["data"])
        if "price" in data and set(data) <= {"price", "cost", "published", "change_pct"}:
            return f"{data.get('price') or '-'}" + (f" (cost {data['cost']})" if data.get("cost") else "")
        if "summary" in data:
            return str(data["summary"])
    return json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)[:300]


def _message(request: Request) -> str:
    results = request.query_params.get("results")
    if not results:
        return ""
    try:
        rows = json.loads(results)
    except ValueError:
        return ""
    bad = [r for r in rows if r[1] not in ("approved", "rejected", "note")]
    items = "".join(f"<li data-id='{e(r[0])}' data-result='{e(r[1])}'>{e(r[2])}</li>" for r in rows[:50])
    summary = "; ".join(f"{n} {r}" for r, n in sorted(_count(r[1] for r in rows).items()))
    return (f"<div class='msg {'bad' if bad else 'ok'}' id='result' data-result='{e(bad[0][1] if bad else rows[0][1])}'>"
            f"<b>{e(summary)}</b><ul>{items}</ul></div>")


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def _render(request: Request, user: str, rows: list[Any], now: dict[int, ErpNow], problem: str,
            flt: dict[str, str], csrf: str) -> str:
    flows = "".join(f"<option{' selected' if f == flt['flow'] else ''}>{f}</option>"
                    for f in ("pricing_sync", "catalog_sync"))
    statuses = "".join(f"<option{' selected' if s == flt['status'] else ''}>{s}</option>" for s in STATUSES)
    parts = [_message(request),
             "<p class='muted'>Changes a flow held for a person: prices the price guard held (zero, below cost, "
             "a large move) and risky catalog changes (many products retired at once, a product with open orders "
             "retired, a title or unit change on a best seller). <b>ERP now</b> is read from the ERP when this page "
             "loads: a change the ERP no longer proposes cannot be approved. An approved change is published by "
             "the flow's next run, and only while the ERP still says it.</p>",
             f"<p class='bad' id='erp-problem'>{e(problem)}</p>" if problem else "",
             "<form class='filters' method='get'>"
             f"<label>Flow <select name='flow'><option value=''>any</option>{flows}</select></label>"
             f"<label>Status <select name='status'>{statuses}</select></label><button type='submit'>Filter</button>"
             "</form>",
             f"<form id='decide' method='post' action='{PREFIX}/approvals/decide'>"
             f"<input type='hidden' name='csrf' value='{e(csrf)}'>",
             f"<input type='hidden' name='flow' value='{e(flt['flow'])}'>"
             f"<input type='hidden' name='status' value='{e(flt['status'])}'>",
             f"<p class='muted'>{len(rows)} shown{f' (the first {LIST_LIMIT})' if len(rows) >= LIST_LIMIT else ''}"
             "</p><table id='approvals'><tr><th>Pick</th><th>#</th><th>Flow</th><th>Change</th>"
             "<th>Record</th><th>Current</th><th>Proposed</th><th>ERP now</th><th>Reason</th><th>Status</th>"
             "<th>Held</th><th></th></tr>"]
    for a in rows:
        check = now.get(a.id)
        pending = a.status == "pending"
        blocked = pending and (bool(problem) or (check is not None and check.matches is False))
        if not pending:
            erp_cell = "<span class='muted'>-</span>"
        elif check is None:
            erp_cell = "<span class='muted'>not read</span>"
        else:
            cls = "ok" if check.matches else ("bad" if check.matches is False else "muted")
            erp_cell = (f"<span class='{cls} erp-now'>{e(check.shown)}</span>"
                        + (f"<br><span class='{cls} why'>{e(check.why)}</span>" if check.why else ""))
        status = e(a.status) + (f"<br><span class='muted'>by {e(a.decided_by)}</span>" if a.decided_by else "") + (
            f"<br><span class='muted'>{e((a.note or '')[:300])}</span>" if a.note else "")
        record = a.external_id if not isinstance(a.proposed, dict) else a.proposed.get("key") or a.external_id
        box = (f"<input type='checkbox' name='ids' value='{a.id}'{' disabled' if blocked else ''}>" if pending else "")
        actions = ""
        if pending:
            why = f" title='{e(check.why if check and check.why else problem)}'" if blocked else ""
            actions = (f"<button type='submit' name='one' value='approved:{a.id}' class='approve'"
                       f"{' disabled' + why if blocked else ''}>Approve</button> "
                       f"<button type='submit' name='one' value='rejected:{a.id}' class='reject'>Reject</button>")
        parts.append(
            f"<tr data-id='{a.id}' data-status='{e(a.status)}'><td>{box}</td><td>#{a.id}</td><td>{e(a.flow)}</td>"
            f"<td>{e(a.kind)}</td><td>{e(record)}</td><td>{e(_value(a.current))}</td>"
            f"<td class='proposed'>{e(_value(a.proposed))}</td><td class='erp'>{erp_cell}</td>"
            f"<td class='reason'>{e(a.reason[:300])}</td><td class='status'>{status}</td>"
            f"<td>{e(_fmt_time(a.created_at))}</td><td>{actions}</td></tr>")
    parts.append("</table><p><label>Note <input name='note' size='50' placeholder='why (kept in the audit log)'>"
                 "</label> <button type='submit' name='decision' value='approved' id='approve-selected'>"
                 "Approve selected</button> <button type='submit' name='decision' value='rejected' "
                 "id='reject-selected'>Reject selected</button></p></form>")
    return _page("Approvals", "".join(parts), user)


# --------------------------------------------------------------------------- routes


def _read(flow: str, status: str) -> tuple[list[Any], dict[int, ErpNow], str]:
    store = _store()
    rows = store.list_approvals(status=None if status == "all" else status, flow=flow or None)
    rows = list(reversed(rows))[:LIST_LIMIT]  # newest first
    now, problem = erp_now(store, rows)
    return rows, now, problem


@app.get("/approvals", response_class=HTMLResponse)
async def approvals(request: Request, flow: str = "", status: str = "pending") -> Response:
    user, refused = await _may_read(request)
    if refused is not None:
        return refused
    status = status if status in STATUSES else "pending"
    flow = flow if flow in ("pricing_sync", "catalog_sync") else ""
    rows, now, problem = await run_in_threadpool(_read, flow, status)
    return HTMLResponse(_render(request, _name(user), rows, now, problem, {"flow": flow, "status": status},
                                _csrf(request)))


def _may_decide(user: Any, flows: Iterable[str]) -> str | None:
    """None, or the flow whose DAG ``user`` may not trigger."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    manager = get_auth_manager()
    for flow in sorted(set(flows)):
        if not manager.is_authorized_dag(method="POST", user=user, access_entity=DagAccessEntity.RUN,
                                         details=DagDetails(id=flow)):
            return flow
    return None


def _ids(values: Sequence[str]) -> list[int]:
    out = []
    for v in values:
        try:
            out.append(int(v))
        except ValueError:
            continue
    return out


@app.post("/approvals/decide")
async def approvals_decide(request: Request, csrf: str = Form(""), decision: str = Form(""),
                           one: str = Form(""), ids: list[str] = Form([]), note: str = Form(""),  # noqa: B008
                           flow: str = Form(""), status: str = Form("")) -> Response:
    user, refused = await _may_act(request, csrf, None)  # the right to decide is checked per flow below
    if refused is not None:
        return refused
    if one:  # a row's own button
        decision, _, single = one.partition(":")
        chosen = _ids([single])
    else:
        chosen = _ids(ids)
    if decision not in ("approved", "rejected"):
        results = [(0, "error", "choose approve or reject")]
    elif not chosen:
        results = [(0, "error", "select the changes to decide (tick them in the list)")]
    else:
        def flows() -> list[str]:
            store = _store()
            return [ap.flow for ap in (store.get_approval(i) for i in chosen) if ap is not None]

        denied = await run_in_threadpool(_may_decide, user, await run_in_threadpool(flows))
        if denied:
            return _forbidden(f"{_name(user)} may not trigger {denied}, so may not decide its approvals")
        results = await run_in_threadpool(decide, _name(user), decision, chosen, note)
    shown = [(i, r, d[:300]) for i, r, d in results[:50]]
    if len(results) > 50:
        shown.append((0, "note", f"... and {len(results) - 50} more (see the list)"))
    query = {"results": json.dumps(shown)}
    if flow in ("pricing_sync", "catalog_sync"):
        query["flow"] = flow
    if status in STATUSES:
        query["status"] = status
    return RedirectResponse(f"{PREFIX}/approvals?{urllib.parse.urlencode(query)}", status_code=303)
