"""Stale dead letters of snapshot flows (issue 20 item 8): a record fixed at its source is resolved.

Stock levels, prices and products are read again whole on every run that sees them change: a record
whose dead letter is open (a negative reserve, an absurd price) and that a later run reads again,
passes the gate and processes without dead-lettering it again, is fixed; its letter is stale and
is closed as ``resolved`` at the end of that run. A record still bad is filed again during the run
(its letter's ``last_seen`` moves to the run), so its one letter stays open, never churned.

The open letters are read once, at the first record the run sees pass (usually few); only the keys among them that
the run saw pass are remembered, so a million-record run holds no million-key set.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


class StaleLetters:
    """One run's view of its flow's open dead letters of ``entity``."""

    def __init__(self, ctx: Any, entity: str) -> None:
        self.ctx, self.entity = ctx, entity
        self.started: dt.datetime = ctx.store.db.now()
        self._open: set[str] | None = None  # read at the first record seen: a run that gates nothing reads nothing
        self.passed: set[str] = set()

    @property
    def open(self) -> set[str]:
        if self._open is None:
            self._open = {d.external_id for d in self.ctx.store.list_dead_letters(flow=self.ctx.flow, limit=10_000_000)
                          if d.entity == self.entity}
        return self._open

    def saw(self, key: str) -> None:
        """The run read this record whole and it passed the gate."""
        if key in (self._open if self._open is not None else self.open):  # once per record passed
            self.passed.add(key)

    def resolve(self) -> int:
        """At the end of a run: close the letters of the records it saw pass and did not file again."""
        if not self.passed:
            return 0
        closed = self.ctx.store.dead_letters.resolve_unless_seen_since(self.ctx.flow, self.entity, self.passed,
                                                                        self.started)
        if closed:
            self.ctx.log.info("%s: %d stale dead letter(s) of %s resolved (their records read again, fixed)",
                              self.ctx.flow, closed, self.entity)
        self.open.difference_update(self.passed)
        self.passed.clear()
        return closed
