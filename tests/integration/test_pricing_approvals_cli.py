"""`erpsync approvals list/show/approve/reject` on the state store the tasks use."""

from __future__ import annotations

import pytest

from erpsync.state import StateStore
from erpsync_airflow.cli import main

pytestmark = pytest.mark.integration


def _held(store: StateStore, sku: str) -> int:
    return store.add_approval(
        "pricing_sync", "price", f"variant|{sku}|1#LIST", "price_change",
        {"key": f"variant|{sku}|1", "rule": "LIST", "data": {"price": "1.00"}, "currency": "USD"},
        {"price": "10.00"}, "change_over_threshold: -90.0% from 10.00 (limit 20%)",
    )


def test_list_approve_reject(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, c = (_held(store, s) for s in ("SKU-1", "SKU-2", "SKU-3"))
    assert main(["approvals", "list", "--flow", "pricing_sync"]) == 0
    out = capsys.readouterr().out
    assert "variant|SKU-1|1" in out and "10.00" in out and "3 approval(s)" in out
    assert main(["approvals", "approve", str(a), "--by", "pat"]) == 0
    assert main(["approvals", "reject", str(b), "--by", "pat", "--note", "ERP typo"]) == 0
    assert store.get_approval(a).status == "approved" and store.get_approval(a).decided_by == "pat"
    assert store.get_approval(b).note == "ERP typo"
    assert main(["approvals", "approve", str(b), "--by", "sam"]) == 1  # already decided
    assert main(["approvals", "reject", "--all-pending", "--flow", "pricing_sync", "--by", "pat"]) == 0
    assert store.get_approval(c).status == "rejected"
    assert main(["approvals", "show", str(a)]) == 0
    assert '"decided_by": "pat"' in capsys.readouterr().out
