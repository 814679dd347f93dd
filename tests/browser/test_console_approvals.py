"""The console's Approvals page in a real browser (issue 20 item 4): headless chromium against the
Airflow API server with the erpsync plugin (the fixtures of ``tests.browser.test_console``).

pricing_sync holds two 90 % price cuts; the ERP changes one of them again before anyone looks.
Logged in to Airflow as ``admin``: the page lists both with current, proposed and the ERP's price
now; the one the ERP changed cannot be approved (the page says why, and a forged approval of it
is refused by the server, compare-and-set); the other is approved, audited as ``admin``, and
published by the next pricing_sync run exactly once. No page logs a console error.
"""

from __future__ import annotations

import logging
import pathlib
from decimal import Decimal
from typing import Any

import pytest

from erpsync.flows import pricing
from erpsync.flows.base import FlowContext, RunSummary
from erpsync.state import StateStore
from tests.browser import test_console as console
from tests.browser.test_console import PASSWORD, REPO, UPDATE_DOCS, _errors, _get, _post, _submit, _token
from tests.fixtures.sandbox import TEST_SEED

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

#: the API server (with a dead-lettered order, its own state store) and the browser of test_console
airflow_api = console.airflow_api
browser = console.browser
By, WebDriverWait = console.By, console.WebDriverWait  # selenium, once test_console found chromium


def _pricing(store: StateStore, erp: Any, sf: Any, run_id: str) -> RunSummary:
    return pricing.run(FlowContext.for_run(flow="pricing_sync", run_id=run_id, store=store, erp=erp,
                                           storefront=sf, log=logging.getLogger("test.console.approvals")))


def _row(erp: Any, item: str) -> dict[str, Any]:
    return next(dict(r) for r in erp.list_prices()
                if r["item_code"] == item and r["price_list"] == "LIST" and int(r.get("min_qty") or 1) == 1)


def _set(sandbox: Any, row: dict[str, Any], price: Decimal) -> None:
    sandbox.admin("erp", "POST", "prices", {"set": [{**row, "price": str(price.quantize(Decimal("0.01")))}]})


def _shown(sf: Any, sku: str) -> str:
    return next(v["price"] for p in sf.list_products() for v in p["variants"] if v["sku"] == sku)


def test_approve_a_held_price_as_the_logged_in_user(
    airflow_api: dict[str, Any], sandbox: Any, browser: Any, erp_adapter: Any, storefront_adapter: Any,
    tmp_path: pathlib.Path,
) -> None:
    img = REPO / "docs" / "img" if UPDATE_DOCS else tmp_path
    base = airflow_api["base"]
    store = StateStore.from_url(airflow_api["state_url"])
    try:
        _pricing(store, erp_adapter, storefront_adapter, "scheduled__r1")  # publishes what the ERP says
        keep, moved = _row(erp_adapter, "ITEM-000003"), _row(erp_adapter, "ITEM-000004")
        for row in (keep, moved):
            _set(sandbox, row, Decimal(row["price"]) * Decimal("0.1"))
        _pricing(store, erp_adapter, storefront_adapter, "scheduled__r2")
        held = {a.proposed["sku"]: a for a in store.list_approvals(status="pending", flow="pricing_sync")}
        assert set(held) == {"SKU-000003", "SKU-000004"}
        good, stale = held["SKU-000003"], held["SKU-000004"]
        _set(sandbox, moved, Decimal(moved["price"]) * Decimal("0.5"))  # the ERP changes it again
        erp_now = str((Decimal(moved["price"]) * Decimal("0.5")).quantize(Decimal("0.01")))

        browser.get(f"{base}/erpsync/approvals")
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.NAME, "username"))
        browser.find_element(By.NAME, "username").send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 30).until(lambda d: d.current_url.startswith(f"{base}/erpsync/approvals"))
        assert browser.find_element(By.ID, "user").text == "admin"

        ok_row = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{good.id}']")
        assert keep["price"] in ok_row.text  # current: what the store shows
        assert good.proposed["data"]["price"] in ok_row.find_element(By.CSS_SELECTOR, "td.proposed").text
        assert good.proposed["data"]["price"] in ok_row.find_element(By.CSS_SELECTOR, "td.erp").text
        assert "change_over_threshold" in ok_row.find_element(By.CSS_SELECTOR, "td.reason").text
        stale_row = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{stale.id}']")
        erp_cell = stale_row.find_element(By.CSS_SELECTOR, "td.erp").text
        assert erp_now in erp_cell and f"the ERP now says {erp_now}" in erp_cell
        assert not stale_row.find_element(By.CSS_SELECTOR, "button.approve").is_enabled()
        assert not stale_row.find_element(By.NAME, "ids").is_enabled()
        browser.save_screenshot(str(img / "console-approvals.png"))
        assert _errors(browser) == []

        # approve the good one from its row: the decider is the Airflow login
        result, text = _submit(browser, ok_row.find_element(By.CSS_SELECTOR, "button.approve"))
        assert result == "approved" and f"#{good.id} approved by admin" in text
        assert not browser.find_elements(By.CSS_SELECTOR, f"tr[data-id='{good.id}']")  # the list shows what waits
        decided = store.get_approval(good.id)
        assert (decided.status, decided.decided_by) == ("approved", "admin")

        # the stale one, forced through the bulk form (its box enabled by hand): the server refuses
        browser.execute_script(f"document.querySelector(\"tr[data-id='{stale.id}'] input[name=ids]\").disabled=false")
        browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{stale.id}'] input[name=ids]").click()
        result, text = _submit(browser, browser.find_element(By.ID, "approve-selected"))
        assert result == "refused" and f"the ERP now says {erp_now}" in text
        assert store.get_approval(stale.id).status == "pending"
        assert _errors(browser) == []

        # Airflow's permissions and the form token apply: a viewer sees the page but may not decide,
        # a form from another site is refused; neither leaves a trace
        viewer = _token(base, "viewer")
        assert _get(f"{base}/erpsync/approvals", viewer) == 200
        assert _post(f"{base}/erpsync/approvals/decide", {"one": f"rejected:{stale.id}"}, bearer=viewer) == 403
        assert _post(f"{base}/erpsync/approvals/decide", {"csrf": "forged", "one": f"rejected:{stale.id}"},
                     cookies=browser.get_cookies()) == 403
        assert store.get_approval(stale.id).status == "pending"

        audit = store.list_audit(correlation_id=f"approval:{good.id}")
        assert [(a.operation, a.request["by"], a.system) for a in audit] == [("approval_approve", "admin", "operator")]
        refused = store.list_audit(correlation_id=f"approval:{stale.id}")
        assert [(a.operation, a.request["by"]) for a in refused] == [("approval_refused", "admin")]

        # the next run publishes the approved price once; the stale approval is superseded there
        _pricing(store, erp_adapter, storefront_adapter, "scheduled__r3")
        assert Decimal(_shown(storefront_adapter, "SKU-000003")) == Decimal(good.proposed["data"]["price"])
        assert store.get_approval(good.id).status == "published"
        assert store.get_approval(stale.id).note.startswith("superseded:")
        writes = sandbox.stats("storefront")["writes_committed"]
        _pricing(store, erp_adapter, storefront_adapter, "scheduled__r4")
        assert sandbox.stats("storefront")["writes_committed"] == writes
        browser.get(f"{base}/erpsync/approvals?status=published")
        assert "by admin" in browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{good.id}'] td.status").text
        assert _errors(browser) == []
    finally:
        store.close()
        sandbox.reset(**TEST_SEED)
