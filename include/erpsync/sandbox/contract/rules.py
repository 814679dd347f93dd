"""Rules of a vendor's API dialect, each citing the vendor's reference page, and a recorder of the
exchanges a client had with a server speaking that dialect.

A rule checks one exchange (the request, and the answer where it has one) and says what is wrong
with it, or nothing. A simulator *enforces* a rule (it refuses a request that breaks it with the
vendor's own error shape, :attr:`Rule.refuse`); a recording proxy in front of the real system only
*records* the breaks. Either way the adapter's tests read :meth:`Recorder.violations` and
:meth:`Recorder.exercised`: no rule broken, and the rules the test meant to exercise did apply.

Keep a rule small and literal: ``says`` is one sentence a reader can check against ``cite`` (the
vendor's page, not a blog); ``check`` returns the break in words that name the value seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: a check: the exchange -> None when the rule is kept, else what breaks it (naming the value seen)
Check = Callable[["Exchange"], "str | None"]
#: when a rule applies at all (a write, a GraphQL mutation, a list query); default: every exchange
Applies = Callable[["Exchange"], bool]


@dataclass
class Exchange:
    """One request a client sent and, once known, the answer it got."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # the decoded JSON body, or None
    status: int | None = None  # the answer's status; None before it is known (or when dropped)
    answer: Any = None  # the decoded JSON answer, or None
    at: float = field(default_factory=time.time)
    #: what a dialect read off the request once for its rules and handler (a parsed GraphQL
    #: operation, the cost charged); never sent anywhere
    meta: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Rule:
    """One requirement of a vendor's API, with the page that states it."""

    id: str  # "<dialect>.<area>.<name>", e.g. "vendure.list.take_limit"
    says: str  # the requirement in one sentence, as the vendor's page states it
    cite: str  # the vendor's reference page (https://...), the authority for ``says``
    check: Check
    applies: Applies = lambda exchange: True
    #: a simulator answers a request that breaks the rule with this (status, body) in the vendor's
    #: error shape; None: the rule is only checked (recorded), never enforced
    refuse: Callable[[Exchange, str], tuple[int, Any]] | None = None
    #: "request": checked before the server answers (the simulator may refuse); "answer": checked
    #: once the answer is known (a rule about what the client must do with an answer)
    when: str = "request"

    def __post_init__(self) -> None:
        if not self.cite.startswith("https://"):
            raise ValueError(f"rule {self.id}: cite must be the vendor's reference page (https://...), got {self.cite!r}")
        if self.when not in ("request", "answer"):
            raise ValueError(f"rule {self.id}: when must be 'request' or 'answer', got {self.when!r}")


@dataclass(frozen=True)
class Violation:
    rule: Rule
    detail: str
    exchange: Exchange

    def __str__(self) -> str:
        return f"{self.rule.id}: {self.detail} ({self.exchange.method} {self.exchange.path}; see {self.rule.cite})"


class RuleBook:
    """A dialect's rules, checked over exchanges."""

    def __init__(self, dialect: str, rules: Iterable[Rule]) -> None:
        self.dialect = dialect
        self.rules: list[Rule] = list(rules)
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"rule book {dialect}: rule ids used twice: {dupes}")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rules)

    def __getitem__(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(f"rule book {self.dialect} has no rule {rule_id!r}")

    def check(self, exchange: Exchange, *, when: str = "request") -> tuple[list[Rule], list[Violation]]:
        """(the rules that applied, the violations) for one exchange at one stage."""
        applied: list[Rule] = []
        broken: list[Violation] = []
        for rule in self.rules:
            if rule.when != when or not rule.applies(exchange):
                continue
            applied.append(rule)
            detail = rule.check(exchange)
            if detail:
                broken.append(Violation(rule, detail, exchange))
        return applied, broken


class Recorder:
    """Every exchange seen, the rules that applied to it and the ones it broke (thread-safe)."""

    def __init__(self, book: RuleBook) -> None:
        self.book = book
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []
        self._violations: list[Violation] = []
        self._applied: dict[str, int] = {}

    def on_request(self, exchange: Exchange) -> list[Violation]:
        """Record a request; returns its violations (a simulator refuses on the first enforced one)."""
        applied, broken = self.book.check(exchange, when="request")
        with self._lock:
            self.exchanges.append(exchange)
            self._note(applied, broken)
        return broken

    def on_answer(self, exchange: Exchange, status: int | None, answer: Any) -> list[Violation]:
        exchange.status, exchange.answer = status, answer
        applied, broken = self.book.check(exchange, when="answer")
        with self._lock:
            self._note(applied, broken)
        return broken

    def _note(self, applied: list[Rule], broken: list[Violation]) -> None:
        for r in applied:
            self._applied[r.id] = self._applied.get(r.id, 0) + 1
        self._violations.extend(broken)

    def violations(self) -> list[Violation]:
        with self._lock:
            return list(self._violations)

    def exercised(self) -> dict[str, int]:
        """rule id -> how many exchanges it applied to."""
        with self._lock:
            return dict(self._applied)

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()
            self._violations.clear()
            self._applied.clear()

    def assert_clean(self, *, exercised: Iterable[str] = ()) -> None:
        """Raise AssertionError listing every broken rule, or naming a rule that was meant to be
        exercised and never applied (a test that checks nothing must not pass)."""
        problems = [str(v) for v in self.violations()]
        seen = self.exercised()
        for rule_id in exercised:
            self.book[rule_id]  # a typo in a test is an error, not a pass
            if not seen.get(rule_id):
                problems.append(f"{rule_id}: never applied to any of the {len(self.exchanges)} exchanges recorded")
        if problems:
            raise AssertionError(f"{self.book.dialect}: " + "\n".join(problems))
