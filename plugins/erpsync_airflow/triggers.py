"""``InboxTrigger``: the triggerer's watch on the state store's webhook inbox (issue 21).

A ``BaseEventTrigger`` (usable by an ``AssetWatcher``): every ``poll_interval`` seconds it claims
the pending inbox rows of its entity in one UPDATE and fires one event for all of them, so a
burst of webhooks becomes one Asset event and one DAG run. It fires nothing while an earlier claim
still waits for its run (that run reads every open row anyway), and fires a claim again that no
run consumed within ``ERPSYNC_INBOX_RECLAIM_SECONDS``. The query is one indexed count per poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent


class InboxTrigger(BaseEventTrigger):
    def __init__(self, entity: str, poll_interval: float = 1.0, state_conn_id: str = "erpsync_state") -> None:
        super().__init__()
        self.entity = entity
        self.poll_interval = float(poll_interval)
        self.state_conn_id = state_conn_id
        self._store: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"entity": self.entity, "poll_interval": self.poll_interval, "state_conn_id": self.state_conn_id})

    def _claim(self) -> tuple[str, int] | None:
        from erpsync import inbox

        if self._store is None:
            from erpsync_airflow.hooks import StateStoreHook

            self._store = StateStoreHook(self.state_conn_id).get_conn()
        return inbox.claim(self._store, self.entity)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        claim = sync_to_async(self._claim)
        while True:
            try:
                claimed = await claim()
            except Exception as exc:  # the store is down: say so, keep watching (the sweep still runs)
                self.log.warning("inbox %s: could not poll the state store: %s: %s", self.entity,
                                 type(exc).__name__, exc)
                claimed = None
            if claimed is not None:
                token, rows = claimed
                self.log.info("inbox %s: claimed %d event(s) (%s)", self.entity, rows, token)
                yield TriggerEvent({"entity": self.entity, "claim": token, "rows": rows, "at": time.time()})
            await asyncio.sleep(self.poll_interval)
