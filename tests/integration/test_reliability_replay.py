"""Replaying many dead letters by filter, with a dry-run preview first, against the sandbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from erpsync.errors import ConfigError
from erpsync.flows.replay import ReplayFilter, replay_many
from tests.integration.test_flows_sandbox import ctx_for
from tests.integration.test_replay import _held_guest_orders

pytestmark = pytest.mark.integration


def test_replay_by_filter_previews_then_sends_each_once(fresh: Any, store: Any, erp_adapter: Any,
                                                        storefront_adapter: Any) -> None:
    held = _held_guest_orders(store, erp_adapter, storefront_adapter)

    def make(flow: str) -> Any:
        return ctx_for(flow, store, erp_adapter, storefront_adapter, "replay-many", guest_policy="shared_account")

    with pytest.raises(ConfigError, match="say which dead letters"):
        replay_many(make, store, ReplayFilter())
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    flt = ReplayFilter(flow="orders_sync", reason="guest_held", since=hour_ago)

    before = fresh.stats("erp")["sales_orders"]
    preview = replay_many(make, store, flt, dry_run=True)
    assert preview.counts() == {"would_send": len(held)}
    assert all("create sales order" in o.detail and '"external_ref"' in o.detail for o in preview.outcomes)
    assert fresh.stats("erp")["sales_orders"] == before  # a dry run sends nothing

    report = replay_many(make, store, flt)
    assert report.ok and report.counts() == {"resolved": len(held)}
    assert "replay: " in report.render()
    assert fresh.stats("erp")["sales_orders"] == before + len(held)
    assert store.list_dead_letters(flow="orders_sync", reason_like="guest_held") == []

    again = replay_many(make, store, ReplayFilter(ids=tuple(d.id for d in held)))
    assert again.counts() == {"skipped": len(held)}  # already in the ERP: nothing twice
    assert fresh.stats("erp")["sales_orders"] == before + len(held)
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
