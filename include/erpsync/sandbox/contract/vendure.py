"""The Vendure Admin API's rules (Vendure 3.7, GraphQL over HTTP), each citing the docs.vendure.io
page it comes from, for the requests erpsync's Vendure adapter sends (``erpsync.connectors.vendure``).

Only what a Vendure page states is here; what no page states (for instance that paging with
``skip``/``take`` needs a sort on a unique field, or when a client must log in again) is left out,
however sensible, so every rule can be checked against its page. The rules read the exchange only
(no state between exchanges), and each applies to the requests it names (``applies``), so a test
can require that a rule was exercised (``Recorder.assert_clean(exercised=...)``).

GraphQL is read with a small scanner (:func:`root_fields`): enough to tell a query from a
mutation, name the root fields and cut out a field's selection set; it is not a GraphQL parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from erpsync.sandbox.contract.rules import Exchange, Rule, RuleBook

API_OPTIONS = "https://docs.vendure.io/current/framework/reference/typescript-api/configuration/api-options"
AUTH_OPTIONS = "https://docs.vendure.io/current/framework/reference/typescript-api/auth/auth-options"
ERROR_HANDLING = "https://docs.vendure.io/guides/developer-guide/error-handling/"
CONNECT_API = "https://docs.vendure.io/current/core/storefront/connect-api"
CHANNELS = "https://docs.vendure.io/guides/core-concepts/channels"

#: ApiOptions.adminListQueryLimit's default: "the upper limit of the take input option" (Admin API)
ADMIN_LIST_QUERY_LIMIT = 1000
#: ApiOptions.adminApiPath's default
ADMIN_API_PATH = "admin-api"
#: AuthOptions.cookieOptions' default cookie name (@vendure/common DEFAULT_COOKIE_NAME)
SESSION_COOKIE = "session"

#: Admin API mutations whose result is a union with ErrorResult members (Vendure 3.7 schema: the
#: error-handling page says ErrorResults "are encoded into the GraphQL schema itself"). The
#: adapter's tests check this list against the running server's schema (introspection), so an
#: entry that is not such a union, or a union mutation the adapter sends that is missing here,
#: fails a test rather than passing unchecked.
ERROR_RESULT_MUTATIONS = frozenset({
    "login", "authenticate",
    "addFulfillmentToOrder", "transitionFulfillmentToState", "settleRefund", "refundOrder",
    "addManualPaymentToOrder", "transitionOrderToState", "settlePayment", "cancelOrder", "cancelPayment",
    "transitionPaymentToState", "modifyOrder",
    "createCustomer", "updateCustomer",
    "addItemToDraftOrder", "adjustDraftOrderLine", "setCustomerForDraftOrder", "setDraftOrderShippingMethod",
})


# --------------------------------------------------------------------------- GraphQL scanning


def document(exchange: Exchange) -> str | None:
    """The GraphQL document the request carries (``query``), or None."""
    body = exchange.body
    if isinstance(body, dict) and isinstance(body.get("query"), str):
        return str(body["query"])
    return None


def variables(exchange: Exchange) -> dict[str, Any]:
    body = exchange.body
    found = body.get("variables") if isinstance(body, dict) else None
    return found if isinstance(found, dict) else {}


_STRING = re.compile(r'"""(?:.|\n)*?"""|"(?:\\.|[^"\\])*"')
_COMMENT = re.compile(r"#[^\n]*")


def _blank_strings(doc: str) -> str:
    """The document with string literals emptied and comments removed (braces in them do not count)."""
    return _COMMENT.sub("", _STRING.sub('""', doc))


def _balanced(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def operation(doc: str) -> str | None:
    """``query``, ``mutation`` or ``subscription`` (a bare ``{...}`` is a query); None if unreadable."""
    text = _blank_strings(doc).lstrip()
    if text.startswith("{"):
        return "query"
    word = re.match(r"(query|mutation|subscription)\b", text)
    return word.group(1) if word else None


def root_fields(doc: str) -> list[tuple[str, str, str]]:
    """The operation's root fields as (response key, field name, selection set text or "")."""
    text = _blank_strings(doc)
    head = re.match(r"\s*(?:(?:query|mutation|subscription)\b[^({]*)?", text)
    i = head.end() if head else 0
    if i < len(text) and text[i] == "(":
        i = _balanced(text, i, "(", ")")
    brace = text.find("{", i)
    if brace < 0:
        return []
    end = _balanced(text, brace, "{", "}")
    body, out, j = text[brace + 1:end - 1], [], 0
    token = re.compile(r"\s*(?:(\w+)\s*:\s*)?(\w+)")
    while j < len(body):
        if body[j].isspace() or body[j] == ",":
            j += 1
            continue
        if body.startswith("...", j):  # a fragment at the root: skip it whole
            nxt = body.find("{", j)
            j = _balanced(body, nxt, "{", "}") if nxt >= 0 else len(body)
            continue
        m = token.match(body, j)
        if not m:
            j += 1
            continue
        alias, name = m.group(1), m.group(2)
        j = m.end()
        while j < len(body) and body[j].isspace():
            j += 1
        if j < len(body) and body[j] == "(":
            j = _balanced(body, j, "(", ")")
            while j < len(body) and body[j].isspace():
                j += 1
        selection = ""
        if j < len(body) and body[j] == "{":
            end_sel = _balanced(body, j, "{", "}")
            selection, j = body[j:end_sel], end_sel
        out.append((alias or name, name, selection))
    return out


def _inline_fragment(selection: str, type_name: str) -> str | None:
    """The selection set of ``... on <type_name> { }`` within ``selection``, or None."""
    m = re.search(r"\.\.\.\s*on\s+" + re.escape(type_name) + r"\s*\{", selection)
    if not m:
        return None
    start = m.end() - 1
    return selection[start:_balanced(selection, start, "{", "}")]


def _takes(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "take":
                yield v
            else:
                yield from _takes(v)
    elif isinstance(value, list):
        for v in value:
            yield from _takes(v)


def takes(exchange: Exchange) -> list[Any]:
    """Every ``take`` a request asks for: in its variables and written in the document."""
    found = list(_takes(variables(exchange)))
    doc = document(exchange)
    if doc:
        found.extend(int(n) for n in re.findall(r"\btake\s*:\s*(-?\d+)", _blank_strings(doc)))
    return found


def _error_result_fields(exchange: Exchange) -> list[tuple[str, str, str]]:
    doc = document(exchange)
    if not doc or operation(doc) != "mutation":
        return []
    return [f for f in root_fields(doc) if f[1] in ERROR_RESULT_MUTATIONS]


def _is_login(exchange: Exchange) -> bool:
    doc = document(exchange)
    return bool(doc) and operation(doc or "") == "mutation" and \
        {name for _, name, _ in root_fields(doc or "")} <= {"login", "authenticate"}


# --------------------------------------------------------------------------- the rules


def rule_book(*, admin_api_path: str = ADMIN_API_PATH, list_limit: int = ADMIN_LIST_QUERY_LIMIT,
              channel_token: str | None = None) -> RuleBook:
    """The rules for a Vendure server configured with these ApiOptions (defaults: Vendure's).
    ``channel_token``: the token of the channel the adapter is configured for (its Connection's
    extra ``channel_token``), or None when it uses the default channel."""
    path = "/" + admin_api_path.strip("/")

    def admin_path(ex: Exchange) -> str | None:
        if ex.path.rstrip("/") != path:
            return f"request to {ex.path!r}, not the Admin API path {path!r}"
        return None

    def graphql_query(ex: Exchange) -> str | None:
        if not isinstance(ex.body, dict):
            return f"body is {type(ex.body).__name__}, not a JSON object carrying the GraphQL document"
        q = ex.body.get("query")
        if not isinstance(q, str) or not q.strip():
            return f"no GraphQL document in 'query' (keys sent: {sorted(ex.body)})"
        if "variables" in ex.body and ex.body["variables"] is not None and not isinstance(ex.body["variables"], dict):
            return f"'variables' is {type(ex.body['variables']).__name__}, not a JSON object"
        return None

    def session(ex: Exchange) -> str | None:
        auth = (ex.header("authorization") or "").strip()
        if re.fullmatch(r"(?i)bearer\s+\S+", auth):
            return None
        cookies = ex.header("cookie") or ""
        if re.search(rf"(?:^|;\s*){SESSION_COOKIE}=", cookies):
            return None
        seen = f"Authorization {auth[:12]!r}..." if auth else "no Authorization header"
        return f"{seen} and no '{SESSION_COOKIE}' cookie: the request carries no session"

    def channel(ex: Exchange) -> str | None:
        sent = ex.header("vendure-token")
        if sent != channel_token:
            return f"vendure-token is {sent!r}, not the channel's token"
        return None

    def take_limit(ex: Exchange) -> str | None:
        bad = [t for t in takes(ex) if not isinstance(t, int) or isinstance(t, bool) or t > list_limit]
        if bad:
            return f"take {bad} above adminListQueryLimit {list_limit} (or not a whole number)"
        return None

    def error_result_selected(ex: Exchange) -> str | None:
        missing = []
        for _key, name, selection in _error_result_fields(ex):
            frag = _inline_fragment(selection, "ErrorResult")
            if frag is None or not re.search(r"\berrorCode\b", frag) or not re.search(r"\bmessage\b", frag):
                missing.append(name)
        if missing:
            return (f"mutation {', '.join(missing)} returns an ErrorResult union but does not select "
                    "'... on ErrorResult { errorCode message }': a refusal would come back as {} and be lost")
        return None

    def refusal_kept(ex: Exchange) -> str | None:
        data = ex.answer.get("data") if isinstance(ex.answer, dict) else None
        if not isinstance(data, dict):
            return None
        lost = []
        for key, name, _ in _error_result_fields(ex):
            value = data.get(key)
            if not isinstance(value, dict):
                continue
            refused = value == {} or "errorCode" in value or str(value.get("__typename", "")).endswith("Error")
            if refused and not (value.get("errorCode") and value.get("message")):
                lost.append(f"{name} -> {value}")
        if lost:
            return f"refusal answered without its errorCode and message (not selected): {'; '.join(lost)}"
        return None

    rules = [
        Rule("vendure.api.admin_path",
             f"Admin API requests go to the Admin API path (ApiOptions.adminApiPath, default '{ADMIN_API_PATH}').",
             API_OPTIONS, admin_path),
        Rule("vendure.graphql.query",
             "A GraphQL request over HTTP is a JSON body whose 'query' is the GraphQL document, with its "
             "'variables' as an object (the page's Fetch client).",
             CONNECT_API, graphql_query, applies=lambda ex: ex.method == "POST"),
        Rule("vendure.auth.session",
             "With bearer sessions the token from the 'vendure-auth-token' answer header is sent as "
             "'Authorization: Bearer <token>' on each later request (or the session cookie with cookie sessions).",
             AUTH_OPTIONS, session, applies=lambda ex: ex.method == "POST" and not _is_login(ex)),
        Rule("vendure.channel.token_header",
             "To use a channel other than the default, each request sets the 'vendure-token' header to that "
             "channel's token (ApiOptions.channelTokenKey).",
             CHANNELS, channel, applies=lambda ex: channel_token is not None),
        Rule("vendure.list.take_limit",
             f"A list query's 'take' is at most adminListQueryLimit (default {ADMIN_LIST_QUERY_LIMIT}): "
             "'the upper limit of the take input option'.",
             API_OPTIONS, take_limit, applies=lambda ex: bool(takes(ex))),
        Rule("vendure.errors.error_result_selected",
             "A mutation whose result is an ErrorResult union selects '... on ErrorResult { errorCode message }' "
             "(expected errors are results, not entries of 'errors').",
             ERROR_HANDLING, error_result_selected, applies=lambda ex: bool(_error_result_fields(ex))),
        Rule("vendure.errors.refusal_kept",
             "An ErrorResult answer carries its errorCode and message, so the refusal is read, not taken "
             "for a success (GraphQL answers 200 either way).",
             ERROR_HANDLING, refusal_kept, applies=lambda ex: bool(_error_result_fields(ex)), when="answer"),
    ]
    return RuleBook("vendure", rules)
