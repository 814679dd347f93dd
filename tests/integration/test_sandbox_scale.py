"""Seed determinism and size: same seed, same world; a 1,000,000 SKU-location sandbox starts quickly."""

from __future__ import annotations

import pytest
import requests

from erpsync.sandbox.data import Dataset, SeedOptions
from erpsync.sandbox.launcher import Sandbox, start_sandbox

pytestmark = pytest.mark.integration


def test_same_seed_same_records_other_seed_other_records() -> None:
    a, b = Dataset(SeedOptions(seed=1)), Dataset(SeedOptions(seed=1))
    c = Dataset(SeedOptions(seed=2))
    for i in (0, 7, 199):
        assert a.item(i) == b.item(i) and a.sf_order(i) == b.sf_order(i) and a.erp_customer(i) == b.erp_customer(i)
    assert [a.sf_order(i) for i in range(20)] != [c.sf_order(i) for i in range(20)]
    assert a.item(5)["sku"] == c.item(5)["sku"] == "SKU-000006"  # keys do not depend on the seed


def test_reset_restores_the_seeded_state(clean_sandbox: Sandbox) -> None:
    headers = {"Authorization": f"Bearer {clean_sandbox.token}"}
    url = f"{clean_sandbox.storefront_url}/admin/api/orders"
    before = requests.get(url, params={"limit": 250}, headers=headers, timeout=5).json()
    clean_sandbox.admin("storefront", "POST", "orders/generate", {"count": 5})
    requests.post(f"{url}/O100001/cancel", headers=headers, timeout=5)
    clean_sandbox.reset("storefront")
    assert requests.get(url, params={"limit": 250}, headers=headers, timeout=5).json() == before
    clean_sandbox.reset("storefront", seed=43)
    assert requests.get(url, params={"limit": 250}, headers=headers, timeout=5).json() != before


@pytest.mark.slow
def test_a_million_sku_locations_start_and_count_right(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with start_sandbox(skus=250_000, locations=4, customers=5000, orders=2000, log_dir=tmp_path) as sb:
        sid = requests.post(f"{sb.erp_url}/api/session", json={"username": sb.erp_user, "password": sb.erp_password},
                            timeout=5).json()["session_id"]
        body = requests.get(f"{sb.erp_url}/api/stock", params={"page": 4000, "page_size": 250},
                            headers={"X-Session-Id": sid}, timeout=10).json()
        assert body["total"] == 1_000_000 and len(body["data"]) == 250 and body["has_more"] is False
        assert body["data"][-1]["item_code"] == "ITEM-250000"
        inv = requests.get(f"{sb.storefront_url}/admin/api/inventory_levels", params={"limit": 250},
                           headers={"Authorization": f"Bearer {sb.token}"}, timeout=10).json()
        assert len(inv["items"]) == 250 and inv["next_cursor"]
