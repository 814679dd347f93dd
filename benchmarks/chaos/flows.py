"""Chaos scenarios of the other writing flows: customers_sync, shipments_sync, returns_sync.

Same machinery and columns as the orders scenarios (:mod:`benchmarks.chaos.scenarios`): reseed
the sandbox, inject the faults, run the flow the way Airflow would (``settle``), clear the faults,
then count against the target system's own records, read back over HTTP:

* customers: ERP customers per storefront customer id (``external_ref``);
* shipments: store fulfillments per (order, tracking number) of every package the ERP shipped;
* returns: ERP RMAs and credit memos per store return (``external_ref``), store refunds per return;
  ``returns_erp_outage``: the same during a 10-minute ERP outage (breaker e-mails, then recovery).

``expected`` is what must reach the target (customers / shipped packages / store returns).
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from benchmarks.chaos.scenarios import (
    FAST_RETRY,
    NO_DEAD_LETTERS,
    ChaosResult,
    SimClock,
    _breaker_events,
    _store,
    make_adapters,
    settle,
)
from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.errors import MappingError
from erpsync.flows import customers, orders, returns, shipments
from erpsync.mappings.storefront_sandbox import customer_from_storefront
from erpsync.reliability import Outbox, RecordingNotifier
from erpsync.sandbox.launcher import Sandbox
from erpsync.state import StateStore

#: returns_sync has no outbox: a run stops at the first write that fails all its tries and the next
#: run starts over from the cursor (the returns scenarios need dozens of runs, not settle's 40)
MAX_RETURN_RUNS = 200


class KeylessErp(SandboxErpAdapter):
    """The sandbox ERP as if it ignored ``Idempotency-Key`` on customers and RMAs (see
    scenarios.KeylessErp): a write whose answer is lost is an unknown outcome, and only the
    ledger + look-up prevent a duplicate."""

    def create_customer(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call("POST", "/api/customers", json=payload).body

    def update_customer(self, erp_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call("PATCH", f"/api/customers/{erp_id}", json=payload).body

    def create_return(self, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self._call("POST", "/api/returns", json=payload).body


class KeylessStorefront(SandboxStorefrontAdapter):
    """The sandbox storefront as if it ignored ``Idempotency-Key`` on fulfillments and returns."""

    def add_fulfillment(self, order_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self.http.request("POST", f"/admin/api/orders/{order_id}/fulfillments", json=payload).body

    def update_return(self, return_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self.http.request("PUT", f"/admin/api/returns/{return_id}", json=payload).body

    def refund_return(self, return_id: str, payload: dict[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        return self.http.request("POST", f"/admin/api/returns/{return_id}/refunds", json=payload).body


def adapters(sb: Sandbox, *, keyless: bool) -> tuple[Any, Any]:
    """The sandbox adapters of the orders scenarios, or their keyless twins."""
    if not keyless:
        return make_adapters(sb.erp_url, sb.storefront_url, sb.token)
    erp = KeylessErp(sb.erp_url, sb.erp_user, sb.erp_password, timeout=2.0, page_size=500, retry=FAST_RETRY)
    sf = KeylessStorefront(sb.storefront_url, sb.token, timeout=2.0, page_size=250, retry=FAST_RETRY)
    return erp, sf


def _suffix(keyless: bool) -> str:
    return "_keys_ignored" if keyless else ""


def _keys_note(keyless: bool) -> str:
    return " (no Idempotency-Key sent: look-up)" if keyless else " (keys honoured)"


def _injected(sb: Sandbox, system: str, fault: str = "commit_then_timeout") -> int:
    return int(sb.stats(system)["faults_injected"].get(fault, 0))


def _dead(store: StateStore, flow: str) -> dict[str, str]:
    return {d.external_id: d.reason for d in store.list_dead_letters(flow=flow, limit=1_000_000)}


def _dl_notes(dead: dict[str, str], notes: list[str]) -> Counter[str]:
    reasons = Counter(r.split(":", 1)[0] for r in dead.values())
    if reasons:
        notes.append("dead letters: " + ", ".join(f"{r} x{n}" for r, n in reasons.most_common(3)))
    return reasons


def _result(name: str, expected: set[Any], delivered: set[Any], duplicated: int, dead_ids: set[Any],
            dead: dict[str, str], runs: int, started: float, notes: list[str], *,
            expected_dead: dict[str, str] | None = None, expected_dead_why: str = NO_DEAD_LETTERS) -> ChaosResult:
    """``expected_dead``: the dead letters the scenario's data must produce, record id -> a word
    its reason must hold; every other dead letter is unexpected (the default: none expected)."""
    lost = expected - delivered - dead_ids
    if lost:
        notes.append("lost e.g. " + ", ".join(sorted(map(str, lost))[:5]))
    reasons = _dl_notes(dead, notes)
    want = expected_dead or {}
    unexpected = sorted(k for k, why in dead.items() if k not in want or want[k] not in why)
    return ChaosResult(name, len(expected), len(delivered), duplicated, len(lost), len(dead), runs,
                       round(time.monotonic() - started, 1), "; ".join(notes), dict(reasons),
                       expected_dead_letters=len(want), expected_dead_why=expected_dead_why,
                       unexpected_dead=unexpected[:5])


def _sync_orders(sb: Sandbox, store: StateStore) -> None:
    """Orders (and their customers) into the ERP with no faults: what shipments and returns need."""
    erp, sf = make_adapters(sb.erp_url, sb.storefront_url, sb.token)
    settle(store, erp, sf, run_id="chaos-seed-orders", flow=orders.FLOW, run=orders.run)


# -- customers_sync ---------------------------------------------------------------------------


def expected_customers(sf: Any) -> set[str]:
    out = set()
    for raw in sf.list_customers():
        try:
            out.add(customer_from_storefront(raw).external_id)
        except MappingError:
            continue
    return out


def erp_customer_refs(erp: Any) -> tuple[Counter[str], int]:
    """ERP customers per storefront customer id, and how many ERP customers there are."""
    refs: Counter[str] = Counter()
    total = 0
    token: str | None = None
    while True:  # every ERP customer, page by page (no flow lists them: the adapter has no list_customers)
        page = erp.read_page("customers", token=token, limit=1000)
        for r in page.items:
            total += 1
            if r.get("external_ref"):
                refs[str(r["external_ref"])] += 1
        if page.next_token is None:
            return refs, total
        token = page.next_token


def customers_commit_then_timeout(sb: Sandbox, workdir: Path, n: int, *, keyless: bool) -> ChaosResult:
    """30 % of the ERP's customer creates commit and never answer; ``n`` storefront customers."""
    name = "customers_commit_then_timeout_30pct" + _suffix(keyless)
    started = time.monotonic()
    sb.clear_faults()
    sb.reset(seed=111, skus=60, locations=2, customers=n, orders=0)
    clock = SimClock()
    store = _store(workdir, name, clock)
    erp, sf = adapters(sb, keyless=keyless)
    sb.set_faults("erp", seed=17, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.01},
                  paths=["/api/customers"], methods=["POST"])
    runs = settle(store, erp, sf, run_id="chaos-cust-ctt", tick=lambda: clock.advance(60),
                  flow=customers.FLOW, run=customers.run)
    injected = _injected(sb, "erp")
    sb.clear_faults()
    expected = expected_customers(sf)
    refs, total = erp_customer_refs(erp)
    dead = _dead(store, customers.FLOW)
    queued = len(Outbox(store, customers.FLOW).items(status="queued", limit=1_000_000))
    duplicated = sum(k - 1 for k in refs.values() if k > 1)
    created = total - n  # the ERP was seeded with n customers of its own
    notes = [f"{injected} customer creates committed without an answer" + _keys_note(keyless),
             f"{created} ERP customers created, the rest matched"]
    if queued:
        notes.append(f"{queued} still queued")
    return _result(name, expected, expected & set(refs), duplicated, set(dead), dead, runs, started, notes)


# -- shipments_sync ---------------------------------------------------------------------------


def _ship_everything(sb: Sandbox, erp: Any) -> int:
    """Ship every open sales order in the ERP: in two packages (UPS + DHL) where it has two units
    or more, else in one; returns the number of shipments."""
    n = 0
    for so in list(erp.list_sales_orders()):
        if so.get("status") != "open":
            continue
        lines = [{"item_code": ln["item_code"], "qty": int(float(ln["qty"]))} for ln in so["lines"]]
        first, rest = {**lines[0], "qty": 1}, [dict(ln) for ln in lines]
        rest[0]["qty"] -= 1
        rest = [ln for ln in rest if ln["qty"] > 0]
        packages = [{"carrier": "UPS", "lines": [first]}]
        if rest:
            packages.append({"carrier": "DHL", "lines": rest})
        sb.admin("erp", "POST", "ship_packages", {"order_no": so["order_no"], "packages": packages})
        n += 1
    return n


def shipped_packages(erp: Any) -> set[tuple[str, str]]:
    """(store order id, tracking number) of every package the ERP handed to a carrier."""
    out = set()
    for s in erp.list_shipments():
        for p in s.get("packages") or []:
            if p.get("status", "shipped") == "shipped" and s.get("external_ref"):
                out.add((str(s["external_ref"]), str(p["tracking_no"])))
    return out


def store_fulfillments(sf: Any) -> Counter[tuple[str, str]]:
    return Counter((str(o["id"]), str(f.get("tracking_number"))) for o in sf.list_orders()
                   for f in o.get("fulfillments") or [])


def shipments_commit_then_timeout(sb: Sandbox, workdir: Path, n: int, *, keyless: bool) -> ChaosResult:
    """30 % of the store's fulfilment writes commit and never answer; ``n`` orders, all shipped."""
    name = "shipments_commit_then_timeout_30pct" + _suffix(keyless)
    started = time.monotonic()
    sb.clear_faults()
    sb.reset(seed=121, skus=60, locations=2, customers=max(100, n // 4), orders=n)
    clock = SimClock()
    store = _store(workdir, name, clock)
    _sync_orders(sb, store)
    erp, sf = adapters(sb, keyless=keyless)
    shipped = _ship_everything(sb, erp)
    notified_before = int(sb.stats("storefront")["customer_notifications"])
    sb.set_faults("storefront", seed=19, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.01},
                  paths=["/admin/api/orders/*/fulfillments"], methods=["POST"])
    runs = settle(store, erp, sf, run_id="chaos-ship-ctt", tick=lambda: clock.advance(60),
                  flow=shipments.FLOW, run=shipments.run)
    injected = _injected(sb, "storefront")
    sb.clear_faults()
    expected = shipped_packages(erp)
    got = store_fulfillments(sf)
    dead = _dead(store, shipments.FLOW)
    dead_shipments = set(dead)
    dead_ids = {(o, t) for s in erp.list_shipments() if s["shipment_no"] in dead_shipments
                for (o, t) in [(str(s.get("external_ref")), str(p["tracking_no"])) for p in s["packages"]]}
    duplicated = sum(k - 1 for k in got.values() if k > 1)
    tracking = Counter(t for (_, t) in got)
    cross = sum(k - 1 for k in tracking.values() if k > 1) - duplicated  # one tracking number on two orders
    notified = int(sb.stats("storefront")["customer_notifications"]) - notified_before
    notes = [f"{shipped} shipments, {injected} fulfilment writes committed without an answer" + _keys_note(keyless),
             f"customer e-mails: {notified} for {len(expected)} packages"]
    if cross:
        notes.append(f"{cross} tracking numbers on another order too")
    result = _result(name, expected, expected & set(got), duplicated + max(0, cross), dead_ids, dead, runs,
                     started, notes)
    if notified != len(expected & set(got)):
        result.notes = "FAILED: " + result.notes
    return result


# -- returns_sync -----------------------------------------------------------------------------


def _returnable(store: StateStore, sf: Any) -> list[dict[str, Any]]:
    """Store orders synced to the ERP and not cancelled: each can take one store return."""
    return [o for o in sf.list_orders()
            if not o.get("cancelled_at") and store.get_xref("erp", "sales_order", str(o["id"])) is not None]


def _open_return(sb: Sandbox, order: dict[str, Any]) -> str:
    """A shopper returns one unit of the order's first line (the store's API, not an admin call)."""
    resp = requests.post(f"{sb.storefront_url}/admin/api/orders/{order['id']}/returns",
                         headers={"Authorization": f"Bearer {sb.token}"}, timeout=10,
                         json={"line_items": [{"sku": order["line_items"][0]["sku"], "quantity": 1,
                                               "reason": "chaos"}]})
    resp.raise_for_status()
    return str(resp.json()["id"])


def erp_rmas(erp: Any) -> list[dict[str, Any]]:
    return list(erp.list_returns())


def returns_commit_then_timeout(sb: Sandbox, workdir: Path, n: int, *, keyless: bool) -> ChaosResult:
    """30 % of the ERP's RMA creates commit and never answer; then the warehouse credits every RMA
    (credit memos) and 30 % of the store's return updates and refunds commit and never answer.
    ``n`` orders, a return on up to half of them."""
    name = "returns_commit_then_timeout_30pct" + _suffix(keyless)
    started = time.monotonic()
    sb.clear_faults()
    sb.reset(seed=131, skus=60, locations=2, customers=max(100, n // 4), orders=n)
    clock = SimClock()
    store = _store(workdir, name, clock)
    _sync_orders(sb, store)
    erp, sf = adapters(sb, keyless=keyless)
    returned = _returnable(store, sf)[: max(1, n // 2)]
    opened = [_open_return(sb, o) for o in returned]
    paid = {rid: Decimal(str(o["total_price"])) for rid, o in zip(opened, returned, strict=True)}
    tick = lambda: clock.advance(60)  # noqa: E731
    # 1. store -> ERP: RMA creates lose their answers; 40 % of the store's "open" updates get a
    #    503, so now and then one fails all its tries and the run stops between RMA and store
    sb.set_faults("erp", seed=23, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.01},
                  paths=["/api/returns"], methods=["POST"])
    sb.set_faults("storefront", seed=31, error_rate=0.4, error_status=503, paths=["/admin/api/returns"],
                  methods=["PUT"])
    runs = settle(store, erp, sf, run_id="chaos-ret-open", tick=tick, flow=returns.FLOW, run=returns.run,
                  max_runs=MAX_RETURN_RUNS)
    rma_faults = _injected(sb, "erp")
    open_errors = _injected(sb, "storefront", "error")
    sb.clear_faults()
    # 2. the warehouse receives every RMA: the ERP issues a credit memo for each
    for rma in erp_rmas(erp):
        if rma["status"] == "open":
            sb.admin("erp", "POST", "returns/receive", {"rma_no": rma["rma_no"]})
    # 3. ERP -> store: the store's return updates (credit memo) and refunds lose their answers
    sb.set_faults("storefront", seed=29, commit_then_timeout={"rate": 0.3, "hold_seconds": 0.01},
                  paths=["/admin/api/returns"], methods=["POST", "PUT"])
    runs += settle(store, erp, sf, run_id="chaos-ret-credit", tick=tick, flow=returns.FLOW, run=returns.run,
                   max_runs=MAX_RETURN_RUNS)
    store_faults = _injected(sb, "storefront")
    sb.clear_faults()

    expected = set(opened)
    rmas = erp_rmas(erp)
    rma_count = Counter(str(r.get("external_ref")) for r in rmas if r.get("external_ref"))
    memo_count = Counter(str(r.get("external_ref")) for r in rmas if r.get("external_ref") and r.get("credit_memo"))
    memo_of = {str(r["external_ref"]): r["credit_memo"] for r in rmas if r.get("external_ref") and r.get("credit_memo")}
    rma_of = {str(r["external_ref"]): r["rma_no"] for r in rmas if r.get("external_ref")}
    refunds: Counter[str] = Counter()
    delivered, wrong_store = set(), []
    for rid in opened:
        back = sf.get_return(rid) or {}
        refunds[rid] = len(back.get("refunds") or [])
        memo = memo_of.get(rid)
        ok = (memo is not None and back.get("status") == "refunded" and back.get("erp_reference") == rma_of.get(rid)
              and any(r.get("note") == memo["memo_no"] and r.get("amount") == memo["amount"]
                      for r in back.get("refunds") or []))
        if ok:
            delivered.add(rid)
        elif rid in rma_of:
            wrong_store.append(f"{rid}: {back.get('status')}, ref {back.get('erp_reference')}")
    dup_rma = sum(k - 1 for k in rma_count.values() if k > 1)
    dup_memo = sum(k - 1 for k in memo_count.values() if k > 1)
    dup_refund = sum(k - 1 for k in refunds.values() if k > 1)
    dead = _dead(store, returns.FLOW)
    notes = [f"{rma_faults} RMA creates and {store_faults} store return writes committed without an answer"
             + _keys_note(keyless), f"{open_errors} store 'open' updates answered 503",
             f"{len(rmas)} RMAs, {sum(memo_count.values())} credit memos, {sum(refunds.values())} refunds; "
             f"duplicates: {dup_rma} RMAs, {dup_memo} credit memos, {dup_refund} refunds"]
    if wrong_store:
        notes.append(f"{len(wrong_store)} in the ERP but not shown refunded in the store, e.g. {wrong_store[:3]}")
    # the store refuses a refund above what the order paid (422 over_refund): an ERP credit memo
    # for the full line with tax on an order with an order-level discount is more than that; those
    # returns, and only those, must be dead letters (with the store's reason), with or without faults
    over = {rid: "over_refund" for rid in opened
            if rid in memo_of and Decimal(str(memo_of[rid]["amount"])) > paid[rid]}
    return _result(name, expected, delivered, dup_rma + dup_memo + dup_refund, set(dead), dead, runs, started,
                   notes, expected_dead=over,
                   expected_dead_why=f"{len(over)}: returns whose ERP credit memo exceeds what the order paid "
                                     "(the store refuses the refund: over_refund); every other return delivered")




def returns_erp_outage(sb: Sandbox, workdir: Path, n: int) -> ChaosResult:
    """A 10-minute ERP outage (simulated minutes) while shoppers keep opening returns; returns_sync
    runs once a minute. ``n`` orders, a return on up to half of them."""
    name = "returns_erp_outage_10min"
    started = time.monotonic()
    sb.clear_faults()
    sb.reset(seed=141, skus=60, locations=2, customers=max(100, n // 4), orders=n)
    clock = SimClock()
    store = _store(workdir, name, clock)
    _sync_orders(sb, store)
    mail = RecordingNotifier()
    erp, sf = adapters(sb, keyless=False)
    todo = _returnable(store, sf)[: max(2, n // 2)]
    seeded = max(1, len(todo) // 3)
    opened = [_open_return(sb, o) for o in todo[:seeded]]
    todo = todo[seeded:]
    runs = settle(store, erp, sf, run_id="minute-00", notifier=mail, flow=returns.FLOW, run=returns.run)
    per_minute = max(1, len(todo) // 12)
    during = outage_hits = 0
    sb.set_faults("erp", outage_seconds=3600)
    for minute in range(1, 13):
        if minute == 11:
            outage_hits = _injected(sb, "erp", "outage")
            sb.clear_faults("erp")  # the ERP is back after ten minutes
        take = per_minute if minute < 12 else len(todo)  # the rest in the last minute
        opened += [_open_return(sb, o) for o in todo[:take]]
        todo = todo[take:]
        if minute <= 10:
            during = len(opened) - seeded
        runs += settle(store, erp, sf, run_id=f"minute-{minute:02d}", notifier=mail, max_runs=1,
                       flow=returns.FLOW, run=returns.run)
        clock.advance(60)
    runs += settle(store, erp, sf, run_id="minute-13", notifier=mail, tick=lambda: clock.advance(60),
                   flow=returns.FLOW, run=returns.run)
    sb.clear_faults()
    expected = set(opened)
    rmas = erp_rmas(erp)
    rma_count = Counter(str(r.get("external_ref")) for r in rmas if r.get("external_ref"))
    rma_of = {str(r["external_ref"]): r["rma_no"] for r in rmas if r.get("external_ref")}
    delivered = set()
    for rid in opened:
        back = sf.get_return(rid) or {}
        if rid in rma_of and back.get("status") == "open" and back.get("erp_reference") == rma_of[rid]:
            delivered.add(rid)
    opened_mails = sum(1 for subject, _ in mail.sent if "unreachable" in subject)
    recovered_mails = sum(1 for subject, _ in mail.sent if "recovered" in subject)
    events = Counter(_breaker_events(store))
    dead = _dead(store, returns.FLOW)
    notes = [f"e-mails: {opened_mails} opened, {recovered_mails} recovered",
             f"{outage_hits} ERP calls answered 503 outage; breaker: "
             + ", ".join(f"{e} x{k}" for e, k in events.items()),
             f"{during} returns opened during the outage waited in the store (returns_sync has no outbox: "
             f"its cursor stays until a run gets through)"]
    result = _result(name, expected, delivered, sum(k - 1 for k in rma_count.values() if k > 1), set(dead), dead,
                     runs, started, notes)
    if (opened_mails, recovered_mails) != (1, 1):
        result.notes = "FAILED: " + result.notes
    return result


FLOW_SCENARIOS = {
    "customers_commit_then_timeout": lambda sb, wd, n: customers_commit_then_timeout(sb, wd, n, keyless=False),
    "customers_commit_then_timeout_keys_ignored":
        lambda sb, wd, n: customers_commit_then_timeout(sb, wd, n, keyless=True),
    "shipments_commit_then_timeout": lambda sb, wd, n: shipments_commit_then_timeout(sb, wd, n, keyless=False),
    "shipments_commit_then_timeout_keys_ignored":
        lambda sb, wd, n: shipments_commit_then_timeout(sb, wd, n, keyless=True),
    "returns_commit_then_timeout": lambda sb, wd, n: returns_commit_then_timeout(sb, wd, n, keyless=False),
    "returns_commit_then_timeout_keys_ignored":
        lambda sb, wd, n: returns_commit_then_timeout(sb, wd, n, keyless=True),
    "returns_erp_outage": returns_erp_outage,
}
