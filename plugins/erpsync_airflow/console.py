"""The erpsync operator console inside the Airflow 3 UI: the health dashboard (its landing page,
``/erpsync/dashboard``, figures from ``erpsync.dashboard``), dead letters (list, bulk dry run and
replay by filter, detail with payload edit, bind and bind-and-replay) and cross-references.

A FastAPI app (Airflow plugin ``fastapi_apps``, mounted at ``/erpsync``) renders plain HTML on
the server, shown in Airflow's navigation as an external view (``plugins/erpsync_console.py``).
It sits behind Airflow's own login: every request needs the session of the Airflow UI (the JWT
cookie the auth manager sets at login) or a bearer token, and the auth manager decides:

* seeing the page needs read access to the ``dead_letter_replay`` DAG's runs;
* a dry run, a replay (one or many), an ignore, a payload edit and binding a SKU need the right
  to trigger it (create a run).

What it shows comes from the state store (``include/erpsync/state``); what it does goes through
``erpsync.flows.replay`` (the same path as the ``dead_letter_replay`` DAG and the CLI), and every
action is written to the audit log (system ``operator``) with the logged-in Airflow user's name.
Everything shown is HTML-escaped: payloads are data from outside.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import urllib.parse
from collections import Counter
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

try:  # the shared safe-display helpers, when present
    from erpsync.display import escape as _esc  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the checkout
    from html import escape as _esc

log = logging.getLogger("erpsync_airflow.console")

#: where the plugin mounts the app (plugins/erpsync_console.py)
PREFIX = "/erpsync"
#: the DAG whose permissions guard the console (read: see; trigger: act)
GUARD_DAG = "dead_letter_replay"
#: the audit log's system for operator actions
OPERATOR = "operator"

app = FastAPI(title="erpsync console", docs_url=None, redoc_url=None, openapi_url=None)


def e(value: Any) -> str:
    """HTML-escape anything for text and attribute values (quotes included)."""
    return _esc("" if value is None else str(value), quote=True)


# --------------------------------------------------------------------------- auth


async def _user(request: Request) -> Any | None:
    """The logged-in Airflow user (the UI's session cookie or a bearer token), else None."""
    from airflow.api_fastapi.core_api.security import resolve_user_from_token
    from fastapi import HTTPException

    token = _token(request)
    if not token:
        return None
    try:
        return await resolve_user_from_token(token)
    except HTTPException:
        return None


def _token(request: Request) -> str | None:
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN)


def _allowed(user: Any, method: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return bool(get_auth_manager().is_authorized_dag(
        method=method, user=user, access_entity=DagAccessEntity.RUN, details=DagDetails(id=GUARD_DAG)))


def _login(request: Request) -> RedirectResponse:
    from airflow.api_fastapi.app import get_auth_manager

    try:
        url = get_auth_manager().get_url_login(next_url=str(request.url))
    except TypeError:  # pragma: no cover - an auth manager without next_url
        url = get_auth_manager().get_url_login()
    return RedirectResponse(url, status_code=303)


def _csrf(request: Request) -> str:
    """A form token bound to the session: a page of another site cannot know it."""
    return hmac.new(b"erpsync-console", (_token(request) or "").encode(), hashlib.sha256).hexdigest()[:40]


def _forbidden(what: str) -> HTMLResponse:
    return HTMLResponse(_page("Not allowed", f"<p class='bad'>{e(what)}</p>"), status_code=403)


def _name(user: Any) -> str:
    try:
        return str(user.get_name())
    except Exception:  # pragma: no cover - a user class without get_name
        return str(getattr(user, "username", None) or user)


# --------------------------------------------------------------------------- state and actions


def _store() -> Any:
    from erpsync_airflow.hooks import StateStoreHook

    return StateStoreHook().get_conn()


def _audit(store: Any, user: str, operation: str, dl: Any, request: dict[str, Any], result: str,
           response: Any = None) -> None:
    store.audit(flow=dl.flow, system=OPERATOR, operation=operation, entity=dl.entity, external_id=dl.external_id,
                request={"by": user, "dead_letter": dl.id, **request}, response=response, duration_ms=None,
                result=result, correlation_id=f"dead_letter:{dl.id}")


def _with_contexts(store: Any, user: str, work: Any) -> Any:
    """``work(ctx_for)`` with the ERP and storefront connections open; ``ctx_for(flow)`` gives one
    manual run context per flow (run id ``console__<time>__<user>``)."""
    from erpsync.flows.base import FlowContext
    from erpsync.reliability.notify import LogNotifier
    from erpsync_airflow.hooks import ErpHook, StorefrontHook

    erp = storefront = None
    contexts: dict[str, Any] = {}
    try:
        erp, storefront = ErpHook().get_conn(), StorefrontHook().get_conn()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")

        def ctx_for(flow: str) -> Any:
            if flow not in contexts:
                contexts[flow] = FlowContext.for_run(flow=flow, run_id=f"console__{stamp}__{user}", store=store,
                                                     erp=erp, storefront=storefront, log=log, run_type="manual",
                                                     notifier=LogNotifier(log))
            return contexts[flow]

        return work(ctx_for)
    finally:
        for adapter in (erp, storefront):
            close = getattr(adapter, "close", None) or getattr(getattr(adapter, "http", None), "close", None)
            if callable(close):
                close()


def _replay_report(store: Any, user: str, flt: Any, *, dry_run: bool) -> tuple[Any, str | None]:
    """(report, None) of ``replay_many`` over ``flt``, each dead letter's outcome audited with the
    user; (None, why) when nothing could be tried (a missing connection, an empty filter)."""
    from erpsync.flows.replay import replay_many

    try:
        report = _with_contexts(store, user, lambda ctx_for: replay_many(ctx_for, store, flt, dry_run=dry_run))
    except Exception as exc:  # a missing connection, refused credentials, a refused filter: say it
        return None, f"{type(exc).__name__}: {exc}"
    for o in report.outcomes:
        dl = store.get_dead_letter(o.dead_letter_id)
        if dl is not None:
            _audit(store, user, "dead_letter_preview" if dry_run else "dead_letter_replay", dl,
                   {"dry_run": dry_run}, o.result, {"detail": o.detail[:2000]})
    return report, None


def _replay(dead_letter_id: int, user: str, *, dry_run: bool) -> tuple[str, str]:
    """Preview or replay one dead letter through ``erpsync.flows.replay``; (result, detail)."""
    from erpsync.flows.replay import ReplayFilter

    store = _store()
    dl = store.get_dead_letter(dead_letter_id)
    if dl is None:
        return "error", f"no dead letter #{dead_letter_id}"
    report, error = _replay_report(store, user, ReplayFilter(ids=(dl.id,), status="all"), dry_run=dry_run)
    if report is None or report.stopped:
        result, detail = ("error", error or "") if report is None else ("stopped", report.stopped)
        _audit(store, user, "dead_letter_preview" if dry_run else "dead_letter_replay", dl,
               {"dry_run": dry_run}, result, {"detail": detail[:2000]})
        return result, detail
    (outcome,) = report.outcomes
    return outcome.result, outcome.detail


def _ignore(dead_letter_id: int, user: str, note: str) -> tuple[str, str]:
    store = _store()
    dl = store.get_dead_letter(dead_letter_id)
    if dl is None:
        return "error", f"no dead letter #{dead_letter_id}"
    if not note.strip():
        return "error", "say why it is ignored (the note is kept in the audit log)"
    store.set_dead_letter_status([dl.id], "ignored")
    _audit(store, user, "dead_letter_ignore", dl, {"note": note.strip()[:2000]}, "ignored")
    return "ignored", f"ignored by {user}: {note.strip()}"


def _bind(dead_letter_id: int, user: str, sku: str, item_code: str) -> tuple[str, str]:
    """Bind a storefront SKU to its ERP item code (the cross-reference an unknown_sku lacks)."""
    store = _store()
    dl = store.get_dead_letter(dead_letter_id)
    if dl is None:
        return "error", f"no dead letter #{dead_letter_id}"
    sku, item_code = sku.strip(), item_code.strip()
    if not sku or not item_code:
        return "error", "give the SKU and the ERP item code it is sold as"
    before = store.get_xref("erp", "item", sku)
    store.upsert_xref("erp", "item", sku, item_code)
    _audit(store, user, "xref_bind", dl, {"sku": sku, "item_code": item_code,
                                          "was": before.internal_id if before else None}, "bound")
    return "bound", f"SKU {sku} -> ERP item {item_code}" + (f" (was {before.internal_id})" if before else "")


def unknown_skus(reason: str) -> list[str]:
    """The SKUs an ``unknown_sku: A, B (hint)`` reason names."""
    if not reason.startswith("unknown_sku:"):
        return []
    text = reason.split(":", 1)[1].split("(", 1)[0]
    return [s.strip().split(" ", 1)[0] for s in text.split(",") if s.strip()]


def _bind_and_replay(dead_letter_id: int, user: str, sku: str, item_code: str) -> tuple[str, str]:
    """Bind the SKU, then replay this dead letter and every open one blocked on the same SKU."""
    from erpsync.flows.replay import ReplayFilter

    result, detail = _bind(dead_letter_id, user, sku, item_code)
    if result != "bound":
        return result, detail
    store = _store()
    blocked = [d.id for d in store.list_dead_letters(status="open", reason_like="unknown_sku", limit=100_000)
               if sku.strip() in unknown_skus(d.reason) and d.id != dead_letter_id]
    report, error = _replay_report(store, user, ReplayFilter(ids=(dead_letter_id, *blocked[:499]), status="all"),
                                   dry_run=False)
    if report is None:
        return "error", f"{detail}; the replay did not start: {error}"
    mine = next((o for o in report.outcomes if o.dead_letter_id == dead_letter_id), None)
    counts = ", ".join(f"{k} x{n}" for k, n in report.counts().most_common())
    others = [o for o in report.outcomes if o.dead_letter_id != dead_letter_id]
    text = (f"{detail}; this letter: {mine.result + ': ' + mine.detail if mine else 'not replayed'}; "
            f"{len(others)} other open letter(s) blocked on {sku.strip()} replayed too ({counts})")
    text += "".join(f"; #{o.dead_letter_id} {o.result}: {o.detail[:120]}" for o in others
                    if o.result not in ("resolved", "skipped"))
    if report.stopped:
        text += f"; stopped: {report.stopped} (the rest stay open)"
    return (mine.result if mine and not report.stopped else "stopped" if report.stopped else "error"), text


def _payload_problem(store: Any, user: str, dl: Any, body: Any) -> tuple[str | None, str]:
    """(why ``body`` may not be saved, or None; what a replay would do with it). The flow's own
    path says it: the record must map and pass the flow's quality suite (``erpsync.quality``);
    other refusals (an SKU still unknown) do not stop the edit and are said."""
    from erpsync.errors import MappingError
    from erpsync.flows.replay import REPLAYERS, WouldFail
    from erpsync.model import ModelError

    replayer = REPLAYERS.get(dl.flow)
    if replayer is None:
        return f"{dl.flow} records are not replayed one by one, so their payload is not edited here", ""
    if not replayer.editable:
        return f"{dl.flow} re-reads the record from its source: change it there", ""
    if not isinstance(body, replayer.payload):
        return f"the payload must be a JSON {'array' if replayer.payload is list else 'object'}", ""

    def check(ctx_for: Any) -> tuple[str | None, str]:
        try:
            return None, "a replay would send: " + replayer.preview(ctx_for(dl.flow), body, dl)[:300]
        except (MappingError, ModelError) as exc:
            return f"it does not map to a {dl.entity}: {exc}", ""
        except WouldFail as exc:
            if str(exc).startswith("quality gate:"):
                return f"it fails the {dl.flow} quality suite: {str(exc).removeprefix('quality gate: ')}", ""
            return None, f"a replay would still fail: {exc}"

    return _with_contexts(store, user, check)


def _edit_payload(dead_letter_id: int, user: str, text: str) -> tuple[str, str]:
    """Save an edited payload once it maps and passes the flow's quality suite; audited."""
    store = _store()
    dl = store.get_dead_letter(dead_letter_id)
    if dl is None:
        return "error", f"no dead letter #{dead_letter_id}"
    if dl.status != "open":
        return "error", f"dead letter #{dl.id} is {dl.status}: only an open one is edited; nothing saved"
    try:
        body = json.loads(text)
    except ValueError as exc:
        return "invalid", f"not JSON ({exc}); nothing saved"
    try:
        problem, outlook = _payload_problem(store, user, dl, body)
    except Exception as exc:  # a missing connection: the suite could not be run, so nothing is saved
        return "error", f"could not check the payload ({type(exc).__name__}: {exc}); nothing saved"
    if problem:
        _audit(store, user, "dead_letter_edit", dl, {"saved": False}, "invalid", {"detail": problem[:2000]})
        return "invalid", f"{problem}; nothing saved"
    old = dl.payload if isinstance(dl.payload, dict) else {}
    changed = sorted(k for k in set(old) | set(body) if old.get(k) != body.get(k)) if isinstance(body, dict) else []
    if not store.dead_letters.replace_payload(dl.id, body):  # one UPDATE guarded by status open
        return "error", f"dead letter #{dl.id} was closed meanwhile; nothing saved"
    _audit(store, user, "dead_letter_edit", dl, {"saved": True, "changed": changed}, "saved",
           {"detail": outlook[:2000]})
    return "saved", f"payload saved by {user} (changed: {', '.join(changed) or 'nothing'}); {outlook}"


#: what a letter's status says when the audit log does not (a flow run, the CLI or the DAG closed it)
_CLOSED_BY_ITSELF = {
    "resolved": "resolved: a later run of {flow} synced the record (a flow closes a record's letter once it "
                "syncs); the state store keeps no time for that",
    "replayed": "replayed: a replay found nothing to write (already in the target, or nothing to change)",
    "ignored": "ignored outside the console (`erpsync dead-letters ignore` or the dead_letter_replay DAG): "
               "no note kept",
}
#: the console action whose audit row closed a letter, and the result it wrote, per status
_CLOSED_BY_ACTION = {"ignored": ("dead_letter_ignore", "ignored"), "resolved": ("dead_letter_replay", "resolved"),
                     "replayed": ("dead_letter_replay", "skipped")}


def closed_note(dl: Any, history: list[Any], transfers: list[Any]) -> str:
    """What happened to a dead letter that is no longer open, from what the state store keeps: the
    console action that closed it (its audit row, ``dead_letter:<id>``, newest first: when, who, the
    note or the outcome), else the record's first successful transfer after its last failure (the
    flow's own audit rows: when, which run, to which system), else what the status means. Said on
    the letter's page instead of its action buttons, and when an action on it is refused."""
    action = _CLOSED_BY_ACTION.get(dl.status)
    for a in history:
        if action and (a.operation, a.result) == action:
            req = a.request if isinstance(a.request, dict) else {}
            resp = a.response if isinstance(a.response, dict) else {}
            why = req.get("note") or resp.get("detail") or ""
            return (f"{dl.status} at {_fmt_time(a.at)} by {req.get('by') or 'an operator'} from the console"
                    + (f": {why}" if why else ""))
    if dl.status == "resolved":
        wrote = [a for a in transfers if a.result in ("ok", "found") and a.at >= dl.last_seen]
        if wrote:
            first = min(wrote, key=lambda a: a.at)
            return (f"resolved at {_fmt_time(first.at)}: run {first.run_id or '-'} of {dl.flow} wrote the record "
                    f"to {first.system} ({first.operation}), after its last failure at {_fmt_time(dl.last_seen)}")
    said = _CLOSED_BY_ITSELF.get(dl.status, f"{dl.status}: no longer open")
    return said.format(flow=dl.flow) + f"; it last failed at {_fmt_time(dl.last_seen)}"


def _closed_reading(store: Any, dl: Any, history: list[Any] | None = None) -> str:
    """``closed_note`` of ``dl`` with its audit rows read (``history``: already read)."""
    if history is None:
        history = store.list_audit(correlation_id=f"dead_letter:{dl.id}", limit=50)
    transfers = store.list_audit(flow=dl.flow, entity=dl.entity, external_id=dl.external_id, limit=50) \
        if dl.status == "resolved" else []
    return closed_note(dl, history, transfers)


def _refuse_closed(dead_letter_id: int, what: str) -> Response | None:
    """The answer to an action posted on a letter that is not open (a stale page, a second tab, a
    script): 409 and what happened to it; nothing is done, nothing audited. None when it is open
    or unknown (then the action itself says "no dead letter")."""
    store = _store()
    dl = store.get_dead_letter(dead_letter_id)
    if dl is None or dl.status == "open":
        return None
    note = _closed_reading(store, dl)
    log.info("console: dead letter #%d is %s: refused, it cannot be %s", dl.id, dl.status, what)
    reopen = (f" To work on it again, <code>erpsync dead-letters replay --id {dl.id}</code> reopens and replays it."
              if dl.status == "ignored" else "")
    body = (f"<div class='msg bad' id='result' data-result='refused'><b>refused</b>: dead letter #{dl.id} is "
            f"{e(dl.status)}: only an open dead letter can be {e(what)}; nothing was done.</div>"
            f"<p id='closed-note'>{e(note)}.{reopen}</p>"
            f"<p><a href='{PREFIX}/dead-letters/{dl.id}'>back to dead letter #{dl.id}</a></p>")
    return HTMLResponse(_page(f"Dead letter #{dl.id}", body), status_code=409)


# --------------------------------------------------------------------------- reading


def _parse_time(value: str | None) -> dt.datetime | None:
    from erpsync.dashboard import parse_time

    return parse_time(value)


def _health(store: Any, open_letters: list[Any]) -> list[dict[str, Any]]:
    """Per flow with a replayer or open dead letters: the dashboard's verdict (``erpsync.dashboard``)."""
    from erpsync import dashboard
    from erpsync.flows.replay import REPLAYERS

    flows = sorted(set(REPLAYERS) | {d.flow for d in open_letters})
    return [{"flow": h.flow, "last_ok": h.last_success_at, "open": h.open_dead_letters, "verdict": h.verdict,
             "why": "; ".join(h.reasons)} for h in dashboard.load(store, flows=flows).flows]


def _list(store: Any, flow: str | None, reason: str | None, since: dt.datetime | None,
          until: dt.datetime | None, status: str) -> tuple[list[Any], list[Any]]:
    open_all = store.list_dead_letters(status="open", limit=100_000)
    rows = store.list_dead_letters(flow=flow, status=None if status == "all" else status, reason_like=reason,
                                   since=since, until=until, limit=1000)
    return open_all, rows


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2rem;color:#1f2933;font-size:14px}
h1{font-size:1.4rem;margin:.2rem 0 1rem} h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;margin:.3rem 0} th,td{border-bottom:1px solid #d9e2ec;padding:.35rem .5rem;
text-align:left;vertical-align:top} th{background:#f0f4f8} tr:hover td{background:#fafcff}
pre{background:#f7f9fb;border:1px solid #d9e2ec;padding:.7rem;overflow:auto;max-height:28rem;white-space:pre-wrap}
.chip{display:inline-block;border-radius:1rem;padding:.05rem .55rem;margin:.1rem;background:#e4e7eb}
.green{background:#c6f7d0}.amber{background:#ffe8a3}.red{background:#ffc9c9}.grey{background:#e4e7eb}
.ok{color:#1b7a3a}.bad{color:#b42318} .msg{padding:.6rem .8rem;border-radius:.3rem;margin:.6rem 0}
.msg.ok{background:#e3f9e8}.msg.bad{background:#fde8e8} form.inline{display:inline-block;margin-right:.8rem}
input,select,button{font-size:14px;padding:.25rem .4rem} button{cursor:pointer}
.filters label{margin-right:.6rem} nav a{margin-right:1rem} .muted{color:#627d98}
"""


def _page(title: str, body: str, user: str | None = None) -> str:
    who = f"<span class='muted'>signed in as <b id='user'>{e(user)}</b></span>" if user else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)} - erpsync</title>"
            "<link rel='icon' href='data:,'>"
            f"<style>{_CSS}</style></head><body><nav><a href='{PREFIX}/dashboard' id='nav-dashboard'>Health</a>"
            f"<a href='{PREFIX}/dead-letters' id='nav-dead-letters'>Dead letters</a>"
            f"<a href='{PREFIX}/xrefs' id='nav-xrefs'>Cross-references</a>"
            f"<a href='{PREFIX}/reports' id='nav-reports'>Reports</a>"
            f"<a href='{PREFIX}/approvals' id='nav-approvals'>Approvals</a>{who}</nav>"
            f"<h1>{e(title)}</h1>{body}</body></html>")


def _fmt_time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "-" if value is None else str(value)


def _run_link(flow: str, run_id: str | None) -> str:
    if not run_id:
        return "-"
    if run_id.startswith("console__"):  # a replay from this page: no Airflow run to link to
        return e(run_id)
    href = f"/dags/{urllib.parse.quote(flow, safe='')}/runs/{urllib.parse.quote(run_id, safe='')}"
    return f"<a href='{e(href)}' target='_top'>{e(run_id)}</a>"


def _message(request: Request) -> str:
    result = request.query_params.get("result")
    if not result:
        return ""
    detail = request.query_params.get("detail", "")
    good = result in ("resolved", "would_send", "ignored", "bound", "skipped", "unbound", "saved", "replayed")
    return (f"<div class='msg {'ok' if good else 'bad'}' id='result' data-result='{e(result)}'>"
            f"<b>{e(result)}</b>: {e(detail)}</div>")


def _render_list(request: Request, user: str, health: list[dict[str, Any]], open_all: list[Any], rows: list[Any],
                 flt: dict[str, str], csrf: str = "") -> str:
    parts = [_message(request), "<h2>Health per flow</h2><table id='health'><tr><th>Flow</th><th>Verdict</th>"
             "<th>Last successful run</th><th>Open dead letters</th><th>Why</th></tr>"]
    for h in health:
        parts.append(f"<tr><td>{e(h['flow'])}</td><td><span class='chip {e(h['verdict'])}'>{e(h['verdict'])}</span></td>"
                     f"<td>{e(_fmt_time(h['last_ok']))}</td><td>{h['open']}</td><td>{e(h['why'])}</td></tr>")
    parts.append("</table>")
    reasons = Counter(d.reason.split(":", 1)[0] for d in open_all)
    parts.append("<h2>Open dead letters by reason</h2><p id='reasons'>" + (" ".join(
        f"<a class='chip' href='?reason={e(urllib.parse.quote(r))}'>{e(r)} <b>{n}</b></a>"
        for r, n in reasons.most_common()) or "<span class='ok'>none open</span>") + "</p>")
    flows = sorted({d.flow for d in open_all} | ({flt["flow"]} if flt["flow"] else set()))
    options = "".join(f"<option value='{e(f)}'{' selected' if f == flt['flow'] else ''}>{e(f)}</option>" for f in flows)
    statuses = "".join(f"<option{' selected' if s == flt['status'] else ''}>{s}</option>"
                       for s in ("open", "ignored", "resolved", "replayed", "all"))
    parts.append(
        "<h2>Dead letters</h2><form class='filters' method='get'>"
        f"<label>Flow <select name='flow'><option value=''>any</option>{options}</select></label>"
        f"<label>Reason <input name='reason' value='{e(flt['reason'])}' placeholder='e.g. unknown_sku'></label>"
        f"<label>Since <input name='since' value='{e(flt['since'])}' placeholder='2026-12-07T00:00Z'></label>"
        f"<label>Until <input name='until' value='{e(flt['until'])}'></label>"
        f"<label>Status <select name='status'>{statuses}</select></label><button type='submit'>Filter</button></form>")
    hidden = "".join(f"<input type='hidden' name='{k}' value='{e(v)}'>" for k, v in flt.items())
    parts.append(f"<form id='bulk' method='post' action='{PREFIX}/bulk/preview'>"
                 f"<input type='hidden' name='csrf' value='{e(csrf)}'>{hidden}"
                 f"<p class='muted'>{len(rows)} shown{' (the first 1000)' if len(rows) >= 1000 else ''}. "
                 "Replay several: tick them, or take all matching the filter (at most 500); a dry run comes first "
                 "and says per record whether it would send or fail, then you confirm.</p>"
                 "<button type='submit' name='scope' value='selected' id='bulk-selected'>Dry run the ticked</button> "
                 "<button type='submit' name='scope' value='filter' id='bulk-filter'>Dry run all matching the filter"
                 "</button>"
                 "<table id='dead-letters'><tr><th></th><th>#</th><th>Flow</th><th>Record</th><th>Reason</th>"
                 "<th>Attempts</th><th>Status</th><th>Last seen</th><th>Run</th></tr>")
    for d in reversed(rows):  # newest first
        parts.append(
            f"<tr data-id='{d.id}'><td><input type='checkbox' name='ids' value='{d.id}' aria-label='select #{d.id}'>"
            f"</td><td><a href='{PREFIX}/dead-letters/{d.id}'>#{d.id}</a></td><td>{e(d.flow)}</td>"
            f"<td><a href='{PREFIX}/dead-letters/{d.id}'>{e(d.entity)} {e(d.external_id)}</a></td>"
            f"<td>{e(d.reason[:200])}</td><td>{d.attempts}</td><td>{e(d.status)}</td>"
            f"<td>{e(_fmt_time(d.last_seen))}</td><td>{_run_link(d.flow, d.correlation_id)}</td></tr>")
    parts.append("</table></form>")
    return _page("Dead letters", "".join(parts), user)


def _render_detail(request: Request, user: str, dl: Any, history: list[Any], csrf: str, closed: str = "") -> str:
    """The letter's facts, its actions while it is open (else ``closed``: what happened to it), its
    payload and its history."""
    payload = json.dumps(dl.payload, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    token = f"<input type='hidden' name='csrf' value='{e(csrf)}'>"
    base = f"{PREFIX}/dead-letters/{dl.id}"
    parts = [_message(request), "<table id='facts'>"]
    for label, value in (("Flow", e(dl.flow)), ("Record", f"{e(dl.entity)} {e(dl.external_id)}"),
                         ("Reason", f"<span id='reason'>{e(dl.reason)}</span>"), ("Kind", e(dl.error_kind)),
                         ("Attempts", str(dl.attempts)), ("Status", f"<span id='status'>{e(dl.status)}</span>"),
                         ("First seen", e(_fmt_time(dl.first_seen))), ("Last seen", e(_fmt_time(dl.last_seen))),
                         ("Run", _run_link(dl.flow, dl.correlation_id))):
        parts.append(f"<tr><th>{label}</th><td>{value}</td></tr>")
    parts.append("</table><h2>Actions</h2>")
    if dl.status != "open":  # done with: what happened to it instead of actions the server would refuse
        parts.append(f"<p id='closed-note' class='msg ok'>{e(closed)}.</p>" if closed else "")
        if dl.status == "ignored":
            parts.append(f"<p class='muted'>To work on it again: <code>erpsync dead-letters replay --id {dl.id}"
                         "</code> reopens and replays it.</p>")
    elif dl.reason.startswith("unknown_sku:"):
        for sku in unknown_skus(dl.reason):
            parts.append(
                f"<form class='inline bind' method='post' action='{base}/bind'>{token}"
                f"<input type='hidden' name='sku' value='{e(sku)}'>"
                f"<label>Bind SKU <b>{e(sku)}</b> to ERP item <input name='item_code' required "
                f"placeholder='ERP item code'></label> <button type='submit' name='then' value='bind'>Bind</button> "
                f"<button type='submit' formaction='{base}/bind-replay' class='bind-replay'>Bind and replay</button>"
                "</form>")
        parts.append("<p class='muted'>Bind and replay: binds the SKU to the ERP item, then replays this letter "
                     "and every open letter blocked on the same SKU.</p>")
    if dl.status == "open":
        parts.append(
            f"<form class='inline' method='post' action='{base}/preview'>{token}"
            "<button type='submit' id='preview'>Dry run</button></form>"
            f"<form class='inline' method='post' action='{base}/replay'>{token}"
            "<button type='submit' id='replay'>Replay</button></form>"
            f"<form class='inline' method='post' action='{base}/ignore'>{token}"
            "<input name='note' placeholder='why it is ignored' required> <button type='submit' id='ignore'>Ignore"
            "</button></form>")
    parts.append(f"<h2>Payload</h2><pre id='payload'>{e(payload)}</pre>")
    if dl.status == "open":
        parts.append(
            f"<details id='edit'><summary>Edit the payload</summary><form id='edit-payload' method='post' "
            f"action='{base}/payload'>{token}<p class='muted'>Saved only if it maps and passes the {e(dl.flow)} "
            "quality suite; then replay it.</p><textarea name='payload' rows='16' cols='100' spellcheck='false'>"
            f"{e(payload)}</textarea><br><button type='submit' id='save-payload'>Check and save</button>"
            "</form></details>")
    parts.append("<h2>History</h2><table id='history'><tr><th>When</th><th>Who</th><th>Action</th><th>Result</th>"
                 "<th>Detail</th></tr>")
    for a in history:
        req = a.request if isinstance(a.request, dict) else {}
        resp = a.response if isinstance(a.response, dict) else {}
        extra = {k: v for k, v in req.items() if k not in ("by", "dead_letter")}
        detail = resp.get("detail") or (json.dumps(extra, default=str) if extra else "")
        parts.append(f"<tr><td>{e(_fmt_time(a.at))}</td><td>{e(req.get('by'))}</td><td>{e(a.operation)}</td>"
                     f"<td>{e(a.result)}</td><td>{e(str(detail)[:500])}</td></tr>")
    parts.append("</table>")
    return _page(f"Dead letter #{dl.id}", "".join(parts), user)


# --------------------------------------------------------------------------- routes


@app.get("/")
async def index() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/dashboard", status_code=303)


@app.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, flow: str = "", reason: str = "", since: str = "", until: str = "",
                       status: str = "open") -> Response:
    user, refused = await _may_read(request)
    if refused is not None:
        return refused
    status = status if status in ("open", "ignored", "resolved", "replayed", "all") else "open"

    def read() -> tuple[list[Any], list[Any], list[Any]]:
        store = _store()
        open_all, rows = _list(store, flow or None, reason or None, _parse_time(since), _parse_time(until), status)
        return _health(store, open_all), open_all, rows

    health, open_all, rows = await run_in_threadpool(read)
    flt = {"flow": flow, "reason": reason, "since": since, "until": until, "status": status}
    return HTMLResponse(_render_list(request, _name(user), health, open_all, rows, flt, _csrf(request)))


@app.get("/dead-letters/{dead_letter_id}", response_class=HTMLResponse)
async def dead_letter(request: Request, dead_letter_id: int) -> Response:
    user, refused = await _may_read(request)
    if refused is not None:
        return refused

    def read() -> tuple[Any, list[Any], str]:
        store = _store()
        dl = store.get_dead_letter(dead_letter_id)
        history = store.list_audit(correlation_id=f"dead_letter:{dead_letter_id}", limit=50) if dl else []
        closed = _closed_reading(store, dl, history) if dl is not None and dl.status != "open" else ""
        return dl, history, closed

    dl, history, closed = await run_in_threadpool(read)
    if dl is None:
        return HTMLResponse(_page("Not found", f"<p class='bad'>no dead letter #{dead_letter_id}</p>",
                                  _name(user)), status_code=404)
    return HTMLResponse(_render_detail(request, _name(user), dl, history, _csrf(request), closed))


async def _act(request: Request, dead_letter_id: int, csrf: str, action: Any, *args: Any, what: str) -> Response:
    """Run ``action`` on an open dead letter and show its page with the result; a letter that is not
    open is refused (409, nothing done: ``_refuse_closed``)."""
    user, refused = await _may_act(request, csrf)
    if refused is not None:
        return refused
    closed = await run_in_threadpool(_refuse_closed, dead_letter_id, what)
    if closed is not None:
        return closed
    result, detail = await run_in_threadpool(action, dead_letter_id, _name(user), *args)
    query = urllib.parse.urlencode({"result": result, "detail": detail[:1500]})
    return RedirectResponse(f"{PREFIX}/dead-letters/{dead_letter_id}?{query}", status_code=303)


@app.post("/dead-letters/{dead_letter_id}/preview")
async def preview(request: Request, dead_letter_id: int, csrf: str = Form("")) -> Response:
    return await _act(request, dead_letter_id, csrf, lambda i, u: _replay(i, u, dry_run=True),
                      what="dry-run (previewed)")


@app.post("/dead-letters/{dead_letter_id}/replay")
async def replay(request: Request, dead_letter_id: int, csrf: str = Form("")) -> Response:
    return await _act(request, dead_letter_id, csrf, lambda i, u: _replay(i, u, dry_run=False), what="replayed")


@app.post("/dead-letters/{dead_letter_id}/ignore")
async def ignore(request: Request, dead_letter_id: int, csrf: str = Form(""), note: str = Form("")) -> Response:
    return await _act(request, dead_letter_id, csrf, _ignore, note, what="ignored")


@app.post("/dead-letters/{dead_letter_id}/bind")
async def bind(request: Request, dead_letter_id: int, csrf: str = Form(""), sku: str = Form(""),
               item_code: str = Form("")) -> Response:
    return await _act(request, dead_letter_id, csrf, _bind, sku, item_code, what="bound")


@app.post("/dead-letters/{dead_letter_id}/bind-replay")
async def bind_replay(request: Request, dead_letter_id: int, csrf: str = Form(""), sku: str = Form(""),
                      item_code: str = Form("")) -> Response:
    return await _act(request, dead_letter_id, csrf, _bind_and_replay, sku, item_code, what="bound and replayed")


@app.post("/dead-letters/{dead_letter_id}/payload")
async def edit_payload(request: Request, dead_letter_id: int, csrf: str = Form(""),
                       payload: str = Form("")) -> Response:
    return await _act(request, dead_letter_id, csrf, _edit_payload, payload, what="edited")


# --------------------------------------------------------------------------- bulk replay


async def _may_act(request: Request, csrf: str, what: str | None = "act on dead letters") -> tuple[Any, Response | None]:
    """(user, None) when the request may post this form, else (None, the answer to give): logged in,
    the form's token (a cookie session), and the right to trigger the guard DAG to ``what``
    (None: the caller checks the permission itself, e.g. per flow)."""
    user = await _user(request)
    if user is None:
        return None, _login(request)
    bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
    if not bearer and not hmac.compare_digest(csrf, _csrf(request)):  # a cookie session needs the form token
        return None, _forbidden("the form is stale or came from another site: reload the page and try again")
    if what is not None and not await run_in_threadpool(_allowed, user, "POST"):
        return None, _forbidden(f"{_name(user)} may not trigger {GUARD_DAG}, so may not {what}")
    return user, None


async def _may_read(request: Request) -> tuple[Any, Response | None]:
    """(user, None) when the request may see the console's pages, else (None, the answer to give)."""
    user = await _user(request)
    if user is None:
        return None, _login(request)
    if not await run_in_threadpool(_allowed, user, "GET"):
        return None, _forbidden(f"{_name(user)} may not read the runs of {GUARD_DAG}")
    return user, None


def _ids(values: list[str]) -> tuple[int, ...]:
    return tuple(int(v) for raw in values for v in str(raw).replace(",", " ").split() if v.isdigit())


def _render_outcomes(report: Any, title: str, summary: str, result: str, extra: str, user: str) -> str:
    parts = [f"<div class='msg {'ok' if result in ('would_send', 'replayed') else 'bad'}' id='result' "
             f"data-result='{e(result)}'><b>{e(result)}</b>: {e(summary)}</div>",
             "<table id='bulk-outcomes'><tr><th>#</th><th>Record</th><th>Outcome</th><th>Why / what</th></tr>"]
    for o in report.outcomes:
        good = o.result in ("would_send", "resolved", "skipped")
        parts.append(f"<tr data-id='{o.dead_letter_id}'><td><a href='{PREFIX}/dead-letters/{o.dead_letter_id}'>"
                     f"#{o.dead_letter_id}</a></td><td>{e(o.external_id)}</td><td class='{'ok' if good else 'bad'}'>"
                     f"{e(o.result)}</td><td>{e(o.detail[:400])}</td></tr>")
    parts.append("</table>")
    if report.stopped:
        parts.append(f"<p class='bad'>stopped: {e(report.stopped)} (the rest were left as they are)</p>")
    parts.append(extra)
    return _page(title, "".join(parts), user)


@app.post("/bulk/preview", response_class=HTMLResponse)
async def bulk_preview(request: Request) -> Response:
    from erpsync.errors import ConfigError
    from erpsync.flows.replay import ReplayFilter

    form = await request.form()
    user, refused = await _may_act(request, str(form.get("csrf", "")))
    if refused is not None:
        return refused
    name = _name(user)
    back = f"{PREFIX}/dead-letters?" + urllib.parse.urlencode(
        {k: str(form.get(k, "")) for k in ("flow", "reason", "since", "until", "status") if form.get(k)})
    if form.get("scope") == "filter":
        try:
            flt = ReplayFilter.from_params({k: str(form.get(k, "")) for k in ("flow", "reason", "since", "until",
                                                                              "status")})
        except ConfigError as exc:
            return RedirectResponse(back + "&" + urllib.parse.urlencode({"result": "error", "detail": str(exc)}), 303)
    else:
        ids = _ids([str(v) for v in form.getlist("ids")])
        if not ids:
            return RedirectResponse(back + "&" + urllib.parse.urlencode(
                {"result": "error", "detail": "tick the dead letters to replay, or take all matching the filter"}), 303)
        flt = ReplayFilter(ids=ids)
    report, error = await run_in_threadpool(lambda: _replay_report(_store(), name, flt, dry_run=True))
    if report is None:
        return RedirectResponse(back + "&" + urllib.parse.urlencode({"result": "error", "detail": error}), 303)
    sendable = [o.dead_letter_id for o in report.outcomes if o.result == "would_send"]
    counts = ", ".join(f"{k} x{n}" for k, n in report.counts().most_common()) or "none matched"
    confirm = (f"<form id='bulk-confirm' method='post' action='{PREFIX}/bulk/replay'>"
               f"<input type='hidden' name='csrf' value='{e(_csrf(request))}'>"
               f"<input type='hidden' name='ids' value='{' '.join(map(str, sendable))}'>"
               f"<button type='submit' id='confirm'>Replay the {len(sendable)} that would send</button> "
               f"<a href='{e(back)}'>cancel</a></form>" if sendable else
               f"<p>Nothing would send: fix the causes above first. <a href='{e(back)}'>back</a></p>")
    return HTMLResponse(_render_outcomes(report, "Replay: dry run", f"{flt.describe()}: {counts} (nothing sent)",
                                         "would_send" if sendable else "would_fail", confirm, name))


@app.post("/bulk/replay", response_class=HTMLResponse)
async def bulk_replay(request: Request, csrf: str = Form(""), ids: str = Form("")) -> Response:
    from erpsync.flows.replay import ReplayFilter

    user, refused = await _may_act(request, csrf)
    if refused is not None:
        return refused
    name = _name(user)

    def work() -> tuple[Any, str | None]:
        store = _store()
        still_open = tuple(i for i in _ids([ids]) if (d := store.get_dead_letter(i)) and d.status == "open")
        if not still_open:
            return None, "none of them is open any more (replayed or ignored meanwhile)"
        return _replay_report(store, name, ReplayFilter(ids=still_open), dry_run=False)

    report, error = await run_in_threadpool(work)
    if report is None:
        return RedirectResponse(f"{PREFIX}/dead-letters?" + urllib.parse.urlencode(
            {"result": "error", "detail": error}), status_code=303)
    counts = ", ".join(f"{k} x{n}" for k, n in report.counts().most_common())
    result = "stopped" if report.stopped else "replayed" if report.ok else "failed_again"
    return HTMLResponse(_render_outcomes(report, "Replay: done", f"{len(report.outcomes)} replayed: {counts}",
                                         result, f"<p><a href='{PREFIX}/dead-letters'>back to the list</a></p>",
                                         name))


# --------------------------------------------------------------------------- health dashboard

_VERDICT_ORDER = {"red": 0, "amber": 1, "grey": 2, "green": 3}


def _chart(hours: Any, counts: Any) -> str:
    """Records synced per hour as an inline SVG bar chart (no script, no external resource)."""
    width, height, bar = 240, 36, 10
    top = max(counts) if counts and max(counts) else 0
    bars = []
    for i, (hour, n) in enumerate(zip(hours, counts, strict=True)):
        h = 0 if not top else max(1, round(n / top * (height - 2))) if n else 0
        bars.append(f"<rect x='{i * bar}' y='{height - h}' width='{bar - 2}' height='{h}' fill='#3e7bfa'>"
                    f"<title>{hour.strftime('%H:00')} UTC: {n} record(s)</title></rect>")
    label = f"max {top}/h" if top else "none in 24 h"
    return (f"<svg class='chart' role='img' width='{width}' height='{height + 12}' viewBox='0 0 {width} {height + 12}'"
            f" aria-label='records synced per hour, 24 h: {label}'><rect x='0' y='{height}' width='{width}' "
            f"height='1' fill='#9fb3c8'></rect>{''.join(bars)}<text x='0' y='{height + 11}' font-size='9' "
            f"fill='#627d98'>-24 h</text><text x='{width}' y='{height + 11}' font-size='9' fill='#627d98' "
            f"text-anchor='end'>{e(label)}</text></svg>")


def _render_dashboard(request: Request, user: str, board: Any) -> str:
    from erpsync.dashboard import fmt_seconds

    def latency(h: Any) -> str:
        if h.latency is None:
            return f"<span class='muted'>{e(h.latency_note)}</span>"
        def one(value: float | None) -> str:  # a histogram's bucket bound is an upper bound ("at most")
            return ("&le; " if h.latency.bucketed and value is not None else "") + e(fmt_seconds(value))

        return (f"p50 {one(h.latency.p50_s)}<br>p95 {one(h.latency.p95_s)}"
                f"<br><span class='muted'>{e(h.latency.what)}, {h.latency.samples} record(s)</span>")

    flows = sorted(board.flows, key=lambda h: (_VERDICT_ORDER.get(h.verdict, 9), h.flow))
    counts = Counter(h.verdict for h in board.flows)
    parts = [_message(request), "<p id='summary'>" + " ".join(
        f"<span class='chip {v}'>{v} <b>{counts[v]}</b></span>" for v in ("red", "amber", "green", "grey")
        if counts[v]) + f" <span class='muted'>as of {e(_fmt_time(board.now))}; read in {board.took_ms:.0f} ms"
        "</span></p>",
        "<h2>Flows</h2><table id='dashboard'><tr><th>Flow</th><th>Verdict</th><th>Why</th><th>Last successful run"
        "</th><th>Records synced per hour (24 h)</th><th>Synced 24 h</th><th>Error rate</th><th>Open dead letters"
        "</th><th>Outbox</th><th>Latency</th></tr>"]
    for h in flows:
        rate = "-" if h.error_rate is None else f"{h.error_rate:.1%}"
        letters = (f"<a href='{PREFIX}/dead-letters?flow={e(urllib.parse.quote(h.flow))}' class='open-letters'>"
                   f"{h.open_dead_letters}</a>" if h.open_dead_letters else "0")
        parts.append(
            f"<tr data-flow='{e(h.flow)}'><td>{e(h.flow)}</td><td><span class='chip verdict {e(h.verdict)}'>"
            f"{e(h.verdict)}</span></td><td class='why'>{'<br>'.join(e(r) for r in h.reasons)}</td>"
            f"<td>{e(_fmt_time(h.last_success_at))}</td><td>{_chart(board.hours, h.hourly)}</td>"
            f"<td>{h.synced_24h}</td><td>{rate}" + (f"<br><span class='muted'>{h.errors_24h} failed or dead-lettered"
                                                   "</span>" if h.runs_24h else "") +
            f"</td><td>{letters}</td><td>{h.outbox_depth}</td><td>{latency(h)}</td></tr>")
    parts.append("</table><h2>Systems</h2><table id='systems'><tr><th>System</th><th>Circuit breaker</th>"
                 "<th>Failures</th><th>Opened</th><th>Last error</th><th>Rate budget</th><th>In use now</th></tr>")
    colour = {"closed": "green", "half_open": "amber", "open": "red"}
    for s in board.systems:
        use = "-" if s.budget_use is None else f"{s.budget_use:.0%}"
        parts.append(
            f"<tr data-system='{e(s.system)}'><td>{e(s.system)}</td><td><span class='chip "
            f"{colour.get(s.breaker, 'grey')}'>{e(s.breaker.replace('_', ' '))}</span></td><td>{s.failures}</td>"
            f"<td>{e(_fmt_time(s.opened_at))}</td><td>{e((s.last_error or '-')[:200])}</td>"
            f"<td>{e(f'{s.rps:g} req/s' if s.rps else 'no shared budget')}</td><td>{use} "
            f"<span class='muted'>{e(s.budget_note)}</span></td></tr>")
    parts.append("</table><p class='muted'>Verdict: red when the last run failed, no run succeeded for three "
                 "cadences, a circuit is open or the 24 h error rate reached the flow's bad-share limit; amber for "
                 "open dead letters, any errors, a backlog in the outbox, a half-open circuit or a saturated rate "
                 "budget. Records synced and errors come from each run's counts; latency where the state store "
                 "records it (stock pushes; order histograms per run).</p>")
    return _page("Sync health", "".join(parts), user)


@app.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page(request: Request) -> Response:
    from erpsync import dashboard

    user, refused = await _may_read(request)
    if refused is not None:
        return refused
    board = await run_in_threadpool(lambda: dashboard.load(_store()))
    return HTMLResponse(_render_dashboard(request, _name(user), board))


# --------------------------------------------------------------------------- cross-references

#: the systems a cross-reference belongs to (the side of its internal id)
XREF_SYSTEMS = ("erp", "storefront")


def _xref_bind(user: str, system: str, entity: str, external_id: str, internal_id: str) -> tuple[str, str]:
    from erpsync import xrefs

    if system not in XREF_SYSTEMS:
        return "error", f"system must be one of {', '.join(XREF_SYSTEMS)}"
    try:
        new, before = xrefs.bind(_store(), system=system, entity=entity, external_id=external_id,
                                 internal_id=internal_id, by=user)
    except ValueError as exc:  # an id that stands for nothing: nothing written
        return "error", str(exc)
    was = f" (was {before.internal_id})" if before and before.internal_id != new.internal_id else ""
    return "bound", f"{new.system} {new.entity} {new.external_id} -> {new.internal_id}{was}"


def _xref_unbind(user: str, system: str, entity: str, external_id: str, confirm: str) -> tuple[str, str]:
    from erpsync import xrefs

    if confirm != "yes":
        return "error", "tick 'sure' to unbind (a record that needs it dead-letters again)"
    removed = xrefs.unbind(_store(), system=system, entity=entity, external_id=external_id, by=user)
    if removed is None:
        return "error", f"no {system} {entity} cross-reference for {external_id}"
    return "unbound", f"{removed.system} {removed.entity} {removed.external_id} (was {removed.internal_id})"


def _render_xrefs(request: Request, user: str, rows: list[Any], flt: dict[str, str], csrf: str) -> str:
    token = f"<input type='hidden' name='csrf' value='{e(csrf)}'>"
    systems = "".join(f"<option{' selected' if s == flt['system'] else ''}>{s}</option>" for s in XREF_SYSTEMS)
    parts = [_message(request), "<p class='muted'>Which record in one system is which in the other: a storefront "
             "SKU and its ERP item (entity <b>item</b>), a store location and its warehouse, a customer. An order "
             "dead-lettered for <code>unknown_sku</code> needs an <b>erp item</b> binding, then a replay.</p>",
             "<form class='filters' method='get'>"
             f"<label>System <select name='system'><option value=''>any</option>{systems}</select></label>"
             f"<label>Entity <input name='entity' value='{e(flt['entity'])}' placeholder='e.g. item'></label>"
             f"<label>Search <input name='search' value='{e(flt['search'])}' placeholder='an id'></label>"
             "<button type='submit'>Filter</button></form>",
             f"<h2>Bind</h2><form id='xref-bind' method='post' action='{PREFIX}/xrefs/bind'>{token}"
             f"<label>System <select name='system'>{systems}</select></label> "
             "<label>Entity <input name='entity' value='item' required></label> "
             "<label>External id <input name='external_id' required placeholder='e.g. the storefront SKU'></label> "
             "<label>Internal id <input name='internal_id' required placeholder='e.g. the ERP item code'></label> "
             "<button type='submit'>Bind</button></form>",
             f"<h2>Cross-references</h2><p class='muted'>{len(rows)} shown"
             f"{' (the first 500)' if len(rows) >= 500 else ''}</p><table id='xrefs'><tr><th>System</th>"
             "<th>Entity</th><th>External id</th><th>Internal id</th><th>Last synced</th><th></th></tr>"]
    for x in rows:
        parts.append(
            f"<tr><td>{e(x.system)}</td><td>{e(x.entity)}</td><td>{e(x.external_id)}</td><td>{e(x.internal_id)}</td>"
            f"<td>{e(_fmt_time(x.last_synced_at))}</td><td><form class='inline unbind' method='post' "
            f"action='{PREFIX}/xrefs/unbind'>{token}<input type='hidden' name='system' value='{e(x.system)}'>"
            f"<input type='hidden' name='entity' value='{e(x.entity)}'>"
            f"<input type='hidden' name='external_id' value='{e(x.external_id)}'>"
            "<label><input type='checkbox' name='confirm' value='yes' required> sure</label> "
            "<button type='submit'>Unbind</button></form></td></tr>")
    parts.append("</table>")
    return _page("Cross-references", "".join(parts), user)


@app.get("/xrefs", response_class=HTMLResponse)
async def xrefs_page(request: Request, system: str = "", entity: str = "", search: str = "") -> Response:
    user, refused = await _may_read(request)
    if refused is not None:
        return refused
    rows = await run_in_threadpool(lambda: _store().list_xrefs(system=system or None, entity=entity.strip() or None,
                                                               search=search.strip() or None, limit=500))
    flt = {"system": system, "entity": entity, "search": search}
    return HTMLResponse(_render_xrefs(request, _name(user), rows, flt, _csrf(request)))


async def _xref_act(request: Request, csrf: str, action: Any, *args: Any) -> Response:
    user, refused = await _may_act(request, csrf, "edit cross-references")
    if refused is not None:
        return refused
    result, detail = await run_in_threadpool(action, _name(user), *args)
    query = urllib.parse.urlencode({"result": result, "detail": detail[:1500]})
    return RedirectResponse(f"{PREFIX}/xrefs?{query}", status_code=303)


@app.post("/xrefs/bind")
async def xref_bind(request: Request, csrf: str = Form(""), system: str = Form(""), entity: str = Form(""),
                    external_id: str = Form(""), internal_id: str = Form("")) -> Response:
    return await _xref_act(request, csrf, _xref_bind, system, entity, external_id, internal_id)


@app.post("/xrefs/unbind")
async def xref_unbind(request: Request, csrf: str = Form(""), system: str = Form(""), entity: str = Form(""),
                      external_id: str = Form(""), confirm: str = Form("")) -> Response:
    return await _xref_act(request, csrf, _xref_unbind, system, entity, external_id, confirm)
