"""Two flows in two processes at the same time, against a sandbox ERP that enforces the rate the
ERP Connection publishes (``rate_limit: {"rps": R}``: a token bucket answering 429 beyond it).

With the Connection's ``rps`` shared through the state store (``erpsync.reliability.budget``) the
two together stay within R: the ERP answers no 429, and its request count over the run is at most
R per second. The counterfactual, each process keeping to R on its own, meets 429s: the test
would see a budget that is not shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from erpsync.reliability.budget import BURST_SECONDS, LATE_SECONDS
from erpsync.state import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RPS = 20
#: small enough for a short test, enough for two flows that want more than RPS together
SEED = {"seed": 7, "skus": 40, "customers": 40, "orders": 30}
FLOWS = ("customers_sync", "orders_sync")
REPO = Path(__file__).resolve().parents[2]


def _run_pair(sb: Any, tmp_path: Path, mode: str) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
    """Both flows at once, each in its own process; returns their summaries, the ERP's stats over
    the run, and the run's length (first start to last finish)."""
    url = f"sqlite:///{tmp_path / f'state-{mode}.db'}"
    with StateStore.from_url(url) as store:
        store.migrate()
    procs, ready = [], []
    go = tmp_path / f"go-{mode}"
    for flow in FLOWS:
        flag = tmp_path / f"ready-{mode}-{flow}"
        ready.append(flag)
        cfg = {"flow": flow, "mode": mode, "rps": RPS, "concurrency": 2, "state_url": url,
               "erp_url": sb.erp_url, "erp_user": sb.erp_user, "erp_password": sb.erp_password,
               "storefront_url": sb.storefront_url, "token": sb.token, "ready": str(flag), "go": str(go),
               "params": {"guest_policy": "shared_account", "write_concurrency": 4}}
        procs.append(subprocess.Popen([sys.executable, "-m", "tests.integration.rate_budget_child", json.dumps(cfg)],
                                      cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    limit = time.monotonic() + 120
    while not all(f.exists() for f in ready):
        assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs if p.poll()]
        assert time.monotonic() < limit, "the flow processes did not get ready"
        time.sleep(0.05)
    before = sb.stats("erp")
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    after = sb.stats("erp")
    stats = {"requests": after["requests_total"] - before["requests_total"],
             "rate_limited": after["faults_injected"].get("rate_limit", 0)
             - before["faults_injected"].get("rate_limit", 0)}
    window = max(o["finished"] for o in outs) - min(o["started"] for o in outs)
    return outs, stats, window


def test_two_flows_at_once_stay_within_the_shared_rate(seeded: Any, tmp_path: Path) -> None:
    sb = seeded(**SEED)
    sb.set_faults("erp", rate_limit={"rps": RPS, "retry_after": 1})
    outs, stats, window = _run_pair(sb, tmp_path, "shared")
    by_flow = {o["flow"]: o for o in outs}
    assert by_flow["customers_sync"]["done"] > 0 and by_flow["orders_sync"]["done"] > 0
    # they really ran at the same time: each started before the other finished
    assert all(o["started"] < min(x["finished"] for x in outs) for o in outs)
    assert stats["requests"] > 3 * RPS, stats  # enough traffic for the limit to matter
    assert stats["rate_limited"] == 0, f"the ERP answered 429 {stats['rate_limited']} time(s): over budget"
    burst = RPS * (BURST_SECONDS + LATE_SECONDS) + 2  # the idle burst, turns used late, the two logins
    assert stats["requests"] <= RPS * window + burst, (stats, window)


def test_without_a_shared_budget_the_two_flows_overrun_it(seeded: Any, tmp_path: Path) -> None:
    """The counterfactual: each process keeps to RPS by itself; together they exceed it."""
    sb = seeded(**SEED)
    sb.set_faults("erp", rate_limit={"rps": RPS, "retry_after": 1})
    _outs, stats, _window = _run_pair(sb, tmp_path, "own")
    assert stats["rate_limited"] > 0, stats
