"""The console's Reports pages (issue 20 item 5): what the comparing flows found, browsable.

Every flow that compares or reports stores its result in the state store's drift reports: the
nightly ``inventory_drift_check`` (ERP vs store stock), ``orders_reconciliation`` (orders, totals,
confirmations), ``returns_sync`` (refund mismatches), ``dead_letter_replay`` and the historical
migration's job reports. ``/erpsync/reports`` lists them (newest first, by flow), a report's page
shows its summary and the items found, escaped, ``ITEMS_PER_PAGE`` at a time (read a page at a time
from the state store, with next and previous links); ``/erpsync/data-docs/`` serves the Great
Expectations Data Docs site the quality gates write (``erpsync.quality``), when one was built. GX's
pages load Bootstrap, jQuery and Vega from public CDNs: each HTML page served gets a one-line notice
saying so (and the Reports page beside its link), rather than vendoring those libraries.

Same rules as the rest of the console (``erpsync_airflow.console``): behind Airflow's login, read
access to the ``dead_letter_replay`` runs needed, everything shown is escaped.
"""

from __future__ import annotations

import json
import mimetypes
import pathlib
import re
import urllib.parse
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from erpsync_airflow.console import (
    PREFIX,
    _fmt_time,
    _may_read,
    _name,
    _page,
    _run_link,
    _store,
    app,
    e,
)

#: reports listed on one page
LIST_LIMIT = 200
#: items shown per page of a report (read from the state store a page at a time: ``page_items``)
ITEMS_PER_PAGE = 500


def data_docs_dir() -> pathlib.Path | None:
    """The quality gates' Data Docs site (``ERPSYNC_GX_DATA_DOCS_DIR``, default under
    ``$ERPSYNC_HOME/quality``: ``erpsync.quality.gx``), if one was built (a failed batch builds it)."""
    from erpsync.quality.gx import data_docs_dir as site

    path = site().expanduser()
    return path if (path / "index.html").is_file() else None


#: a script or stylesheet loaded from another site (GX's Data Docs templates load Bootstrap, jQuery,
#: Vega ... from public CDNs)
_EXTERNAL_ASSET = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//([^/\"'\s>]+)",
                             re.IGNORECASE)


def external_hosts(html: str) -> list[str]:
    """The hosts a page loads its scripts and stylesheets from, sorted (none: it is self-contained)."""
    return sorted({m.group(1).lower() for m in _EXTERNAL_ASSET.finditer(html)})


def cdn_notice(hosts: list[str]) -> str:
    """One line saying a Data Docs page depends on other sites: without internet access from the
    browser it shows unstyled and its filters do not work, and those sites learn it was opened."""
    return (f"These Great Expectations pages load their styles and scripts from public CDNs ({', '.join(hosts)}): "
            "without internet access they show unstyled, and those sites see each visit.")


def _with_notice(html: str) -> str:
    """A Data Docs HTML page with the CDN notice as its first line, when it loads anything from outside."""
    hosts = external_hosts(html)
    if not hosts:
        return html
    banner = (f"<div id='erpsync-cdn-notice' style='background:#fff3cd;color:#1f2933;padding:.4rem .8rem;"
              f"font:13px system-ui,sans-serif'>{e(cdn_notice(hosts))} <a href='{PREFIX}/reports' target='_top'>"
              "back to Reports</a></div>")
    marked, n = re.subn(r"(<body\b[^>]*>)", lambda m: m.group(1) + banner, html, count=1, flags=re.IGNORECASE)
    return marked if n else banner + html


def _run(flow: str, run_id: str) -> str:
    """An Airflow run id (``scheduled__...``, ``manual__...``) links to its run; a reconciliation's day
    or a migration job's id is not a DAG run, so it is shown as text."""
    if "__" in run_id and not run_id.startswith("console__"):
        return _run_link(flow, run_id)
    return e(run_id)


def _summary_rows(summary: Any) -> str:
    if isinstance(summary, dict):
        rows = []
        for key, value in summary.items():
            shown = value if isinstance(value, str | int | float | bool) or value is None else json.dumps(
                value, default=str, sort_keys=True)
            rows.append(f"<tr><th>{e(key)}</th><td>{e(str(shown)[:2000])}</td></tr>")
        return "<table id='summary'>" + "".join(rows) + "</table>"
    return f"<pre id='summary'>{e(json.dumps(summary, indent=2, default=str))}</pre>"


def _render_list(user: str, reports: list[Any], flows: list[str], flow: str, docs: bool,
                 docs_hosts: list[str] | None = None) -> str:
    options = "".join(f"<option value='{e(f)}'{' selected' if f == flow else ''}>{e(f)}</option>" for f in flows)
    parts = ["<p class='muted'>What the comparing flows found: drift checks, reconciliations, refund mismatches, "
             "replays and migrations. A report with items is work to look at.</p>",
             f"<form class='filters' method='get'><label>Flow <select name='flow'><option value=''>any</option>"
             f"{options}</select></label><button type='submit'>Filter</button></form>"]
    if docs:
        parts.append(f"<p><a id='data-docs' href='{PREFIX}/data-docs/index.html'>Great Expectations Data Docs</a> "
                     "<span class='muted'>(the quality gates' validation results)</span>"
                     + (f"<br><span class='muted' id='data-docs-cdn'>{e(cdn_notice(docs_hosts))}</span>"
                        if docs_hosts else "") + "</p>")
    else:
        parts.append("<p class='muted' id='data-docs-none'>No Great Expectations Data Docs site built yet "
                     "(the quality gates build it at their first failed batch, in ERPSYNC_GX_DATA_DOCS_DIR).</p>")
    parts.append(f"<p class='muted'>{len(reports)} shown{f' (the newest {LIST_LIMIT})' if len(reports) >= LIST_LIMIT else ''}"
                 "</p><table id='reports'><tr><th>#</th><th>Flow</th><th>Run</th><th>When</th><th>Items found</th>"
                 "<th>Summary</th></tr>")
    for r in reports:
        brief = json.dumps(r.summary, default=str, sort_keys=True) if r.summary is not None else ""
        parts.append(
            f"<tr data-id='{r.id}'><td><a href='{PREFIX}/reports/{r.id}'>#{r.id}</a></td><td>{e(r.flow)}</td>"
            f"<td>{_run(r.flow, r.run_id)}</td><td>{e(_fmt_time(r.created_at))}</td>"
            f"<td>{'<b>' + str(r.item_count) + '</b>' if r.item_count else '0'}</td><td>{e(brief[:240])}</td></tr>")
    parts.append("</table>")
    return _page("Reports", "".join(parts), user)


def _pager(report_id: int, page: Any) -> str:
    """``items 501-1000 of 23,000`` with previous/next links (keyset: the first/last item id shown)."""
    base = f"{PREFIX}/reports/{report_id}"
    if not page.items:
        where = f"no items here ({page.total:,} in all)"
    else:
        where = f"items {page.offset + 1:,}-{page.offset + len(page.items):,} of {page.total:,}"
    links = []
    if page.has_previous:
        links.append(f"<a id='items-first' href='{base}'>first</a>")
        before = f"?before={page.items[0].id}" if page.items else ""
        links.append(f"<a id='items-previous' href='{base}{before}'>&larr; previous</a>")
    if page.has_next:
        links.append(f"<a id='items-next' href='{base}?after={page.items[-1].id}'>next &rarr;</a>")
    return f"<p class='pager muted'><span class='where'>{where}</span> {' '.join(links)}</p>"


def _render_report(user: str, report: Any, page: Any) -> str:
    pager = _pager(report.id, page)
    parts = [f"<table id='facts'><tr><th>Flow</th><td>{e(report.flow)}</td></tr>"
             f"<tr><th>Run</th><td>{_run(report.flow, report.run_id)}</td></tr>"
             f"<tr><th>When</th><td>{e(_fmt_time(report.created_at))}</td></tr>"
             f"<tr><th>Items found</th><td id='item-count'>{report.item_count}</td></tr></table>",
             "<h2>Summary</h2>", _summary_rows(report.summary),
             f"<h2>Items</h2>{pager}"
             "<table id='items'><tr><th>Kind</th><th>Entity</th><th>Record</th><th>Detail</th></tr>"]
    for item in page.items:
        detail = {k: v for k, v in (item.detail or {}).items() if k not in ("kind", "entity", "external_id")} \
            if isinstance(item.detail, dict) else item.detail
        parts.append(f"<tr data-item='{item.id}'><td>{e(item.kind)}</td><td>{e(item.entity)}</td>"
                     f"<td>{e(item.external_id)}</td>"
                     f"<td><code>{e(json.dumps(detail, default=str, sort_keys=True)[:1000])}</code></td></tr>")
    parts.append("</table>" + (pager if len(page.items) > 20 else ""))
    return _page(f"Report #{report.id}: {report.flow}", "".join(parts), user)


@app.get("/reports", response_class=HTMLResponse)
async def reports(request: Request, flow: str = "") -> Response:
    user, refused = await _may_read(request)
    if refused is not None:
        return refused

    def read() -> tuple[list[Any], list[str]]:
        store = _store()
        rows = store.list_drift_reports(flow=flow or None, limit=LIST_LIMIT)
        flows = sorted({r.flow for r in store.list_drift_reports(limit=LIST_LIMIT)} | ({flow} if flow else set()))
        return rows, flows

    def docs_hosts() -> list[str] | None:
        root = data_docs_dir()
        if root is None:
            return None
        return external_hosts((root / "index.html").read_text(encoding="utf-8", errors="replace"))

    rows, flows = await run_in_threadpool(read)
    hosts = await run_in_threadpool(docs_hosts)
    return HTMLResponse(_render_list(_name(user), rows, flows, flow, hosts is not None, hosts))


@app.get("/reports/{report_id}", response_class=HTMLResponse)
async def report(request: Request, report_id: int, after: int | None = None, before: int | None = None) -> Response:
    """A report's summary and one page of its items: the first, those ``after`` an item id (next) or
    just ``before`` one (previous); never all of them at once."""
    user, refused = await _may_read(request)
    if refused is not None:
        return refused

    def read() -> tuple[Any, Any]:
        repo = _store().drift_reports
        found = repo.get(report_id, items=False)
        if found is None:
            return None, None
        return found, repo.page_items(report_id, after=None if before is not None else after, before=before,
                                      limit=ITEMS_PER_PAGE)

    found, page = await run_in_threadpool(read)
    if found is None:
        return HTMLResponse(_page("Not found", f"<p class='bad'>no report #{report_id}</p>", _name(user)),
                            status_code=404)
    return HTMLResponse(_render_report(_name(user), found, page))


@app.get("/data-docs/{path:path}")
async def data_docs(request: Request, path: str) -> Response:
    """The Data Docs site's files, read-only, never outside its directory."""
    user, refused = await _may_read(request)
    if refused is not None:
        return refused
    root = data_docs_dir()
    if root is None:
        return HTMLResponse(_page("No Data Docs", "<p class='bad'>no Great Expectations Data Docs site has been "
                                  "built yet</p>", _name(user)), status_code=404)
    target = (root / urllib.parse.unquote(path or "index.html")).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        return HTMLResponse(_page("Not found", f"<p class='bad'>no such Data Docs page: {e(path)}</p>",
                                  _name(user)), status_code=404)
    if target.suffix.lower() in (".html", ".htm"):  # said on the page itself: it depends on public CDNs
        html = await run_in_threadpool(lambda: target.read_text(encoding="utf-8", errors="replace"))
        return HTMLResponse(_with_notice(html))
    return FileResponse(target, media_type=mimetypes.guess_type(target.name)[0] or "application/octet-stream")
