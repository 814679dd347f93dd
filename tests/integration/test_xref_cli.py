"""`erpsync xref list|show|bind|unbind`, run as the real command: an order dead-lettered for an
unknown SKU is fixed by binding the SKU from the CLI, then `erpsync dead-letters replay` syncs it
exactly once. Ids that stand for nothing are refused with one clean line; changes are audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from erpsync.state import StateStore
from tests.integration.conftest import SEED
from tests.integration.test_flows_sandbox import sync_all

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "erpsync_airflow.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_bind_an_unknown_sku_from_the_cli_then_replay_once(
    fresh: Any, store: StateStore, erp_adapter: Any, storefront_adapter: Any, tmp_path: Any
) -> None:
    fresh.reset("erp", **{**SEED, "skus": 30})  # the ERP does not know SKU-000031 and up
    sync_all(store, erp_adapter, storefront_adapter)
    held = [d for d in store.list_dead_letters(flow="orders_sync") if d.reason.startswith("unknown_sku")]
    assert held
    dl = held[0]
    skus = dl.reason.split(": ", 1)[1].split(", ")
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW_CONN_ERP_DEFAULT=json.dumps({
            "conn_type": "erpsync_erp", "host": fresh.erp_url, "login": fresh.erp_user,
            "password": fresh.erp_password, "extra": {"adapter": "sandbox"}}),
        AIRFLOW_CONN_STOREFRONT_DEFAULT=json.dumps({
            "conn_type": "erpsync_storefront", "host": fresh.storefront_url, "password": fresh.token,
            "extra": {"adapter": "sandbox"}}),
    )

    # a binding to nothing is refused: one clean line, nothing written
    for bad in ("None", " ", "null"):
        r = _cli(env, "xref", "bind", "erp", "item", skus[0], bad, "--by", "pat")
        assert r.returncode == 2, r
        assert len(r.stderr.strip().splitlines()) == 1 and "not an id" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert store.get_xref("erp", "item", skus[0]) is None

    # a replay before the fix fails again, and says why
    before = _cli(env, "dead-letters", "replay", "--id", str(dl.id))
    assert before.returncode == 1 and "unknown_sku" in before.stdout, before

    for sku in skus:
        code = f"ITEM-{int(sku.removeprefix('SKU-')) - 30:06d}"
        r = _cli(env, "xref", "bind", "erp", "item", sku, code, "--by", "pat")
        assert r.returncode == 0, r.stderr
        assert f"{sku} -> {code}" in r.stdout and "by pat" in r.stdout
        assert store.get_xref("erp", "item", sku).internal_id == code

    listed = _cli(env, "xref", "list", "--system", "erp", "--kind", "item", "--search", skus[0].lower())
    assert listed.returncode == 0, listed.stderr
    assert skus[0] in listed.stdout and "1 cross-reference(s)" in listed.stdout
    shown = _cli(env, "xref", "show", "erp", "item", skus[0])
    assert shown.returncode == 0 and "xref_bind" in shown.stdout and "pat" in shown.stdout, shown

    done = _cli(env, "dead-letters", "replay", "--id", str(dl.id))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resolved" in done.stdout
    assert erp_adapter.find_sales_order(dl.external_id) is not None
    assert store.get_dead_letter(dl.id).status == "resolved"
    again = _cli(env, "dead-letters", "replay", "--id", str(dl.id))
    assert again.returncode == 0 and "skipped" in again.stdout, again
    assert fresh.stats("erp")["duplicate_external_refs"] == 0


def test_unbind_asks_unless_yes_and_is_audited(store: StateStore, tmp_path: Any) -> None:
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "airflow"))
    store.upsert_xref("erp", "warehouse", "LOC-\x1b[31mX", "WH-1")  # a hostile id is shown as text
    listed = _cli(env, "xref", "list", "--entity", "warehouse")
    assert listed.returncode == 0 and "\x1b" not in listed.stdout and "LOC-" in listed.stdout
    no = _cli(env, "xref", "unbind", "erp", "warehouse", "LOC-\x1b[31mX", "--by", "sam", stdin="n\n")
    assert no.returncode == 1 and "not unbound" in no.stdout
    assert store.get_xref("erp", "warehouse", "LOC-\x1b[31mX") is not None
    yes = _cli(env, "xref", "unbind", "erp", "warehouse", "LOC-\x1b[31mX", "--by", "sam", "--yes")
    assert yes.returncode == 0 and "was WH-1" in yes.stdout, yes
    assert store.get_xref("erp", "warehouse", "LOC-\x1b[31mX") is None
    (entry,) = store.list_audit(correlation_id="xref:erp:warehouse:LOC-\x1b[31mX")
    assert entry.operation == "xref_unbind" and entry.request["by"] == "sam" and entry.request["was"] == "WH-1"
    missing = _cli(env, "xref", "unbind", "erp", "warehouse", "nope", "--yes")
    assert missing.returncode == 1 and "no erp warehouse cross-reference" in missing.stderr
