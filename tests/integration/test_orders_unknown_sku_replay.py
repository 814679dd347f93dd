"""An unknown SKU holds its order in the dead letters; once the SKU's mapping is added, a replay
sends the order, exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.flows.replay import replay
from erpsync.state import StateStore
from tests.integration.conftest import SEED
from tests.integration.test_flows_sandbox import ctx_for, sync_all

pytestmark = pytest.mark.integration


def test_unknown_sku_then_mapping_added_then_replayed_once(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    fresh.reset("erp", **{**SEED, "skus": 30})  # the ERP does not know SKU-000031 and up
    sync_all(store, erp_adapter, storefront_adapter)
    held = [d for d in store.list_dead_letters(flow="orders_sync") if d.reason.startswith("unknown_sku")]
    assert held
    dl = held[0]
    assert erp_adapter.find_sales_order(dl.external_id) is None
    # the operator maps each unknown storefront SKU to the ERP item it is sold as
    for sku in dl.reason.split(": ", 1)[1].split(", "):
        store.upsert_xref("erp", "item", sku, f"ITEM-{int(sku.removeprefix('SKU-')) - 30:06d}")
    ctx = ctx_for("orders_sync", store, erp_adapter, storefront_adapter, "replay-sku")
    out = replay(ctx, dl)
    assert out.result == "resolved", out
    so = erp_adapter.find_sales_order(dl.external_id)
    assert so is not None and store.get_dead_letter(dl.id).status == "resolved"
    assert replay(ctx, store.get_dead_letter(dl.id)).result == "skipped"
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
