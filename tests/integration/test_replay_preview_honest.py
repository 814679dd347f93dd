"""A dry run is honest: it resolves the order's items (cross-reference, else the ERP by SKU, read
only) and says would_fail with the reason for an order a replay would dead-letter again; once the
SKU is bound it says would_send with the bound item code, and the replay sends it once."""

from __future__ import annotations

from typing import Any

import pytest

from erpsync.flows.replay import ReplayFilter, replay, replay_many
from erpsync.state import StateStore
from tests.integration.conftest import SEED
from tests.integration.test_flows_sandbox import ctx_for, sync_all

pytestmark = pytest.mark.integration


def test_dry_run_of_an_unknown_sku_order_says_would_fail_until_the_sku_is_bound(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any
) -> None:
    fresh.reset("erp", **{**SEED, "skus": 30})  # the ERP does not know SKU-000031 and up
    sync_all(store, erp_adapter, storefront_adapter)
    held = [d for d in store.list_dead_letters(flow="orders_sync") if d.reason.startswith("unknown_sku")]
    assert held
    dl = held[0]
    skus = dl.reason.split(": ", 1)[1].split(", ")
    ctx = ctx_for("orders_sync", store, erp_adapter, storefront_adapter, "preview")

    before = replay(ctx, dl, dry_run=True)
    assert before.result == "would_fail", before
    assert before.detail.startswith("unknown_sku: ") and all(sku in before.detail for sku in skus)
    assert store.xref_map("erp", "item", skus) == {}  # the preview bound nothing
    assert erp_adapter.find_sales_order(dl.external_id) is None
    report = replay_many(lambda f: ctx, store, ReplayFilter(ids=(dl.id,)), dry_run=True)
    assert not report.ok and report.counts() == {"would_fail": 1}

    codes = {sku: f"ITEM-{int(sku.removeprefix('SKU-')) - 30:06d}" for sku in skus}
    for sku, code in codes.items():
        store.upsert_xref("erp", "item", sku, code)
    after = replay(ctx, store.get_dead_letter(dl.id), dry_run=True)
    assert after.result == "would_send", after
    assert after.detail.startswith("create sales order ") and all(c in after.detail for c in codes.values())
    assert "<item of" not in after.detail
    assert replay(ctx, store.get_dead_letter(dl.id)).result == "resolved"
    assert erp_adapter.find_sales_order(dl.external_id) is not None
    assert fresh.stats("erp")["duplicate_external_refs"] == 0
