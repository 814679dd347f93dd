"""Safe display: how data from the ERP or the storefront (names, SKUs, payloads, reasons) is shown
to a person. Data is stored as given; it is made safe only where it is shown, and only here:

* ``text`` / ``line``: a terminal, a task log or a plain-text mail. Control characters (C0 except
  newline/tab in multi-line text, DEL, C1, so ANSI escape sequences too), bidirectional overrides
  and invisible format characters (RTL override, zero-width space, BOM, ...) are shown as
  visible escapes (``\\x1b``, ``\\u202e``); a value is cut to a bound with the count of what was
  left out, so a 10 MB name prints as a few hundred characters.
* ``html``: ``text`` then HTML-escaped (``<script>`` becomes ``&lt;script&gt;``), for mails' HTML
  parts and any HTML page.
* ``csv_cell``: a spreadsheet cell (OWASP CSV injection rule): a value starting with ``=``, ``+``,
  ``-``, ``@``, tab or carriage return is prefixed with ``'`` so no spreadsheet runs it as a
  formula (``=HYPERLINK(...)``); the ``csv`` module does the quoting.
* ``json_text``: a payload (dead letter, approval) as indented JSON, every string bounded, depth
  and container sizes bounded (a record nested 1,000 levels deep prints, it does not recurse),
  then ``text`` on the result.

Markup characters (``<``, ``>``, ``&``) are left as they are in plain text: a terminal and a
plain-text mail do not run them, and the operator must see the value as it is; HTML escapes them.
"""

from __future__ import annotations

import html as _html
import json
import logging
import unicodedata
from collections.abc import Mapping
from typing import Any

#: one value shown in full up to this many characters (a reason, a name, a payload string)
MAX_CHARS = 2_000
#: a table cell or a one-line field (subject, column)
LINE_CHARS = 200
#: a whole block (a mail body, a payload shown by ``dead-letters show``)
BLOCK_CHARS = 200_000
#: a payload is shown this deep; deeper levels are replaced by a marker
MAX_DEPTH = 32
#: a list or object shows at most this many entries, then a marker with the count left out
MAX_ITEMS = 500
#: one log line (a task log the Airflow UI shows, ANSI colours included)
LOG_CHARS = 50_000

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# characters shown as escapes although unicodedata does not class them as controls
_EXTRA = {0x2028, 0x2029}  # line / paragraph separator (Zl, Zp): they break lines in some viewers


def _unsafe(ch: str, keep_newlines: bool) -> bool:
    if ch in "\n\t":
        return not keep_newlines
    cp = ord(ch)
    if cp < 0x20 or 0x7F <= cp <= 0x9F or cp in _EXTRA:
        return True
    # Cf: format characters (bidi overrides U+202A-202E, isolates U+2066-2069, marks U+200E/F,
    # zero-width U+200B-200D, BOM U+FEFF, soft hyphen); Cs: lone surrogates; Co: private use
    return unicodedata.category(ch) in ("Cf", "Cs", "Co")


def _escape(ch: str) -> str:
    cp = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if ch == "\r":
        return "\\r"
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _as_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        return str(value)
    except Exception:  # a value whose __str__ fails is still shown
        return f"<unprintable {type(value).__name__}>"


def neutralise(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with every control, bidi and invisible format character shown as an escape."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(_escape(ch) if _unsafe(ch, keep_newlines) else ch for ch in text)


def bound(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` (plus a marker saying how many were left out)."""
    if limit <= 0 or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def text(value: Any, *, limit: int = MAX_CHARS, multiline: bool = True) -> str:
    """Any value as plain text safe for a terminal, a log or a plain-text mail."""
    raw = _as_str(value)
    return neutralise(bound(raw, limit), keep_newlines=multiline)


def line(value: Any, *, limit: int = LINE_CHARS) -> str:
    """One line (a table cell, a mail subject): newlines and tabs are escaped too."""
    return text(value, limit=limit, multiline=False)


def block(value: Any, *, line_limit: int = MAX_CHARS, limit: int = BLOCK_CHARS) -> str:
    """A multi-line text (a mail body): each line bounded, the whole bounded, all neutralised."""
    raw = bound(_as_str(value), limit)
    return "\n".join(neutralise(bound(part, line_limit), keep_newlines=False) for part in raw.split("\n"))


def html(value: Any, *, limit: int = MAX_CHARS, multiline: bool = True) -> str:
    """Plain text escaped for HTML (element content and quoted attribute values)."""
    return _html.escape(text(value, limit=limit, multiline=multiline), quote=True)


def html_block(value: Any, *, line_limit: int = MAX_CHARS, limit: int = BLOCK_CHARS) -> str:
    return _html.escape(block(value, line_limit=line_limit, limit=limit), quote=True)


def csv_cell(value: Any, *, limit: int = MAX_CHARS) -> Any:
    """A value for a CSV/spreadsheet cell: numbers stay numbers; text is bounded, neutralised and
    prefixed with ``'`` when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    raw = _as_str(value)
    shown = text(raw, limit=limit, multiline=False)
    if raw.startswith(FORMULA_PREFIXES) or shown.startswith(FORMULA_PREFIXES):
        return "'" + shown
    return shown


def safe_data(value: Any, *, limit: int = MAX_CHARS, depth: int = MAX_DEPTH, items: int = MAX_ITEMS) -> Any:
    """A JSON-able copy of ``value`` to show: strings bounded, depth and sizes bounded (never
    recursing deeper than ``depth``, so a record nested 1,000 levels deep is safe to show)."""
    if isinstance(value, str):
        return bound(value, limit)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth <= 0:
        return f"[… nested deeper than {MAX_DEPTH} levels]"
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for n, (k, v) in enumerate(value.items()):
            if n >= items:
                out["…"] = f"[{len(value) - items:,} more entries]"
                break
            out[bound(_as_str(k), LINE_CHARS)] = safe_data(v, limit=limit, depth=depth - 1, items=items)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        shown = [safe_data(v, limit=limit, depth=depth - 1, items=items) for v in seq[:items]]
        if len(seq) > items:
            shown.append(f"[… {len(seq) - items:,} more items]")
        return shown
    return bound(_as_str(value), limit)


def json_text(value: Any, *, limit: int = MAX_CHARS, total: int = BLOCK_CHARS) -> str:
    """A payload as indented JSON for a person: bounded (``safe_data``) and neutralised."""
    dumped = json.dumps(safe_data(value, limit=limit), indent=2, ensure_ascii=False, default=str)
    return text(dumped, limit=total, multiline=True)


class LogFilter(logging.Filter):
    """A logger filter: the formatted message of each record neutralised and bounded, so a value
    quoted in a log line (an external id, a reason) cannot colour, move or hide text in the task
    log the Airflow UI shows (it renders ANSI escapes). Newlines stay (multi-line summaries)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's own error report
            return True
        record.msg = text(message, limit=LOG_CHARS, multiline=True)
        record.args = ()
        return True


LOG_FILTER = LogFilter()


def safe_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with ``LOG_FILTER`` (added once)."""
    log = logging.getLogger(name)
    if LOG_FILTER not in log.filters:
        log.addFilter(LOG_FILTER)
    return log
