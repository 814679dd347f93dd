"""Tryton's JSON-RPC rules (trytond 8.2), each citing the docs.tryton.org page it comes from, for
the requests erpsync's Tryton adapter sends (``erpsync.connectors.tryton``).

Only what a Tryton page states is here. Two things the adapter relies on are *not* rules, because
no docs.tryton.org page states them: that a ``model.*`` call takes the user's context as its last
parameter (trytond's dispatcher reads it so), and that ``model.<model>.<method>`` is how a model's
method is named over RPC. The rules read one exchange at a time (no state between exchanges).

The RPC page changed with the URL: up to 7.4 it said "the URL of the calls must end with the
database name with a trailing '/'"; its current source (trytond/doc/topics/rpc.rst in the Tryton
repository, published as the latest page) says "the format of the URL to call is ``<database
name>/rpc/``", and trytond 8.2's dispatcher routes only ``/<database>/rpc/``. The rule follows 8.2.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from erpsync.sandbox.contract.rules import Exchange, Rule, RuleBook

RPC = "https://docs.tryton.org/latest/server/topics/rpc.html"
MODELS = "https://docs.tryton.org/latest/server/ref/models.html"

#: methods that need no authorization (the login itself)
UNAUTHENTICATED = frozenset({"common.db.login"})
#: ModelStorage methods whose first parameter is a list of record ids
IDS_FIRST = frozenset({"read", "write", "delete", "copy"})
#: ModelStorage methods taking (domain, offset, limit, order, ...)
SEARCHES = frozenset({"search", "search_read"})
_DIRECTION = re.compile(r"(?i)^(ASC|DESC)?(\s+NULLS\s+(FIRST|LAST))?$")


def call(exchange: Exchange) -> tuple[str, list[Any]] | None:
    """(method, params) of a JSON-RPC request, or None when the body is not one."""
    body = exchange.body
    if isinstance(body, dict) and isinstance(body.get("method"), str) and isinstance(body.get("params"), list):
        return str(body["method"]), list(body["params"])
    return None


def model_method(exchange: Exchange) -> tuple[str, str, list[Any]] | None:
    """(model, method, params) of a ``model.<model>.<method>`` call, or None."""
    c = call(exchange)
    if c is None or not c[0].startswith("model."):
        return None
    model, _, method = c[0][len("model."):].rpartition(".")
    return (model, method, c[1]) if model else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _search(exchange: Exchange) -> tuple[str, list[Any]] | None:
    mm = model_method(exchange)
    if mm is None or mm[1] not in SEARCHES:
        return None
    return mm[0], mm[2]


def _pages_on(exchange: Exchange) -> bool:
    """A search for a page after the first (offset > 0)."""
    found = _search(exchange)
    return found is not None and len(found[1]) > 1 and _is_int(found[1][1]) and found[1][1] > 0


def rule_book(*, database: str | None = None) -> RuleBook:
    """Tryton's rules; ``database`` (the Connection's database) makes the path rule exact."""

    def rpc_path(ex: Exchange) -> str | None:
        if ex.method != "POST":
            return f"{ex.method} {ex.path}: JSON-RPC calls are POSTed"
        if database is not None and ex.path != f"/{database}/rpc/":
            return f"call to {ex.path!r}, not /{database}/rpc/"
        if database is None and not re.fullmatch(r"/[^/]+/rpc/", ex.path):
            return f"call to {ex.path!r}, not /<database name>/rpc/"
        return None

    def jsonrpc_request(ex: Exchange) -> str | None:
        body = ex.body
        if not isinstance(body, dict):
            return f"body is {type(body).__name__}, not a JSON-RPC request object"
        problems = []
        if not isinstance(body.get("method"), str) or not body.get("method"):
            problems.append(f"method is {body.get('method')!r}")
        if not isinstance(body.get("params"), list):
            problems.append(f"params is {type(body.get('params')).__name__}, not an array")
        if body.get("id") is None:
            problems.append("no id (JSON-RPC 1.0: a request without an id is a notification, never answered)")
        return "; ".join(problems) or None

    def login_params(ex: Exchange) -> str | None:
        c = call(ex)
        params = c[1] if c else []
        if len(params) < 2 or not isinstance(params[0], str) or not isinstance(params[1], dict):
            shown = [type(p).__name__ for p in params]
            return f"common.db.login params are {shown}, not (user name, dictionary of login parameters)"
        return None

    def logout_params(ex: Exchange) -> str | None:
        c = call(ex)
        if c and c[1]:
            return f"common.db.logout takes no parameters, got {len(c[1])}"
        return None

    def session_header(ex: Exchange) -> str | None:
        auth = (ex.header("authorization") or "").strip()
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "basic" and value.strip():
            return None
        if scheme.lower() != "session" or not value.strip():
            return f"Authorization is {auth[:16]!r}: neither 'Session <base64>' nor 'Basic <base64>'"
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return "the Session authorization is not Base64 of text"
        parts = decoded.split(":")
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2]:
            return (f"the Session authorization decodes to {len(parts)} colon-separated part(s), "
                    "not user name:user ID:session")
        return None

    def search_arguments(ex: Exchange) -> str | None:
        found = _search(ex)
        assert found is not None  # applies() checked it
        params = found[1]
        problems = []
        if not params or not isinstance(params[0], list):
            problems.append(f"domain is {type(params[0]).__name__ if params else 'missing'}, not a list")
        if len(params) > 1 and params[1] is not None and not (_is_int(params[1]) and params[1] >= 0):
            problems.append(f"offset is {params[1]!r}, not a whole number >= 0")
        if len(params) > 2 and params[2] is not None and not (_is_int(params[2]) and params[2] >= 0):
            problems.append(f"limit is {params[2]!r}, not a whole number >= 0 (or null)")
        order = params[3] if len(params) > 3 else None
        if order is not None:
            bad = [o for o in order if not (isinstance(o, list | tuple) and len(o) == 2 and isinstance(o[0], str)
                                             and isinstance(o[1], str) and _DIRECTION.match(o[1].strip()))] \
                if isinstance(order, list) else [order]
            if bad:
                problems.append(f"order has {bad!r}: each item is (field name, 'ASC'|'DESC' [NULLS FIRST|LAST])")
        return "; ".join(problems) or None

    def paging(ex: Exchange) -> str | None:
        found = _search(ex)
        assert found is not None
        params = found[1]
        limit: Any = params[2] if len(params) > 2 else None
        order: Any = params[3] if len(params) > 3 else None
        problems = []
        if not _is_int(limit) or limit <= 0:
            problems.append(f"limit {limit!r}")
        if not order:
            problems.append(f"order {order!r}")
        if problems:
            return (f"page at offset {params[1]} of {found[0]} with {' and '.join(problems)}: a page needs a limit, "
                    "and an order so the pages slice one fixed sequence")
        return None

    def integer_ids(ex: Exchange) -> str | None:
        mm = model_method(ex)
        assert mm is not None
        ids = mm[2][0] if mm[2] else None
        if not isinstance(ids, list) or not all(_is_int(i) for i in ids):
            return f"{mm[0]}.{mm[1]} record ids are {ids!r}, not a list of integers"
        return None

    def is_call(name: str) -> Any:
        return lambda ex: (c := call(ex)) is not None and c[0] == name

    rules = [
        Rule("tryton.rpc.path",
             "JSON-RPC calls are POSTed to <database name>/rpc/.",
             RPC, rpc_path),
        Rule("tryton.rpc.request",
             "trytond speaks JSON-RPC 1.0: a call is an object with 'method', 'params' (an array) and an 'id'.",
             RPC, jsonrpc_request, applies=lambda ex: ex.method == "POST"),
        Rule("tryton.rpc.login_params",
             "common.db.login takes the user name and a dictionary of login parameters.",
             RPC, login_params, applies=is_call("common.db.login")),
        Rule("tryton.rpc.logout_params",
             "common.db.logout takes no parameters (it invalidates the current session).",
             RPC, logout_params, applies=is_call("common.db.logout")),
        Rule("tryton.rpc.session_header",
             "Calls other than the login carry an authorization: 'Session' with Base64 of user name, user ID "
             "and session joined by colons (the session from common.db.login), or 'Basic'.",
             RPC, session_header,
             applies=lambda ex: (c := call(ex)) is not None and c[0] not in UNAUTHENTICATED),
        Rule("tryton.search.arguments",
             "search/search_read take (domain, offset, limit, order, ...): the domain a list, offset and limit "
             "whole numbers, order a list of (field name, 'ASC'|'DESC') pairs.",
             MODELS, search_arguments, applies=lambda ex: _search(ex) is not None),
        Rule("tryton.search.paging",
             "A page after the first (offset > 0) gives the limit (the page's length) and an order (what "
             "sequence offset counts in).",
             MODELS, paging, applies=_pages_on),
        Rule("tryton.records.integer_ids",
             "read/write/delete/copy take record ids, and a record's id is an Integer field.",
             MODELS, integer_ids,
             applies=lambda ex: (mm := model_method(ex)) is not None and mm[1] in IDS_FIRST),
    ]
    return RuleBook("tryton", rules)
