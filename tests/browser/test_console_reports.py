"""The console's Reports pages in a real browser (issue 20 item 5): a drift check's report, found
by a real ``inventory_drift_check`` run on the sandbox, is listed and opened with the counts the
flow stored; a report whose items carry markup shows it as text; no console errors.

Same set-up as ``test_console.py`` (its fixtures: a real Airflow API server with the erpsync plugin,
headless chromium); skipped with the install hint when chromium is absent.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import pytest

from tests.browser.test_console import (  # noqa: F401  (fixtures)
    PASSWORD,
    REPO,
    UPDATE_DOCS,
    _errors,
    airflow_api,
    browser,
)

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from erpsync.connectors.registry import storefront_mapping  # noqa: E402
from erpsync.flows import inventory_drift  # noqa: E402
from erpsync.flows.base import FlowContext  # noqa: E402
from erpsync.runctx import RunSummary  # noqa: E402
from erpsync.state import StateStore  # noqa: E402

LOCATIONS = {"MAIN": "MAIN", "EAST": "EAST", "WEST": "WEST"}


def _log_in(driver: Any, base: str, path: str) -> None:
    driver.get(f"{base}{path}")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.NAME, "username"))
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(lambda d: d.current_url.startswith(f"{base}{path}"))


def test_reports_list_and_show_what_the_drift_check_found(
    airflow_api: dict[str, Any],  # noqa: F811  (the fixtures imported above)
    browser: Any,  # noqa: F811
    erp_adapter: Any, storefront_adapter: Any, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    img = REPO / "docs" / "img" if UPDATE_DOCS else tmp_path
    base = airflow_api["base"]
    store = StateStore.from_url(airflow_api["state_url"])
    try:
        ctx = FlowContext.for_run(flow="inventory_drift_check", run_id="scheduled__reports", store=store,
                                  erp=erp_adapter, storefront=storefront_adapter,
                                  params={"location_map": LOCATIONS}, log=logging.getLogger("test.reports"))
        _summary, _mail, found = inventory_drift.run_with_email(ctx)
        assert found.compared > 0
        (drift,) = [r for r in store.list_drift_reports(flow="inventory_drift_check") if r.run_id == "scheduled__reports"]
        full = store.get_drift_report(drift.id)
        assert full is not None and full.item_count == len(full.items)
        hostile = store.add_drift_report("orders_reconciliation", "2026-12-06", {"note": "<b>x</b>"}, [
            {"kind": "missing_in_erp", "entity": "order", "external_id": "<img src=x onerror=alert(1)>",
             "detail": "<script>alert(2)</script>"}])

        _log_in(browser, base, "/erpsync/reports")
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{drift.id}']")
        assert "inventory_drift_check" in row.text and "scheduled__reports" in row.text
        assert row.find_elements(By.TAG_NAME, "td")[4].text == str(full.item_count)
        assert browser.find_elements(By.CSS_SELECTOR, f"tr[data-id='{hostile}']")
        # the Data Docs link is there only once a site was built; either way the page says which
        assert browser.find_elements(By.ID, "data-docs") or browser.find_elements(By.ID, "data-docs-none")
        browser.save_screenshot(str(img / "console-reports.png"))
        assert _errors(browser) == []

        # the filter narrows the list to one flow
        browser.get(f"{base}/erpsync/reports?flow=orders_reconciliation")
        assert browser.find_elements(By.CSS_SELECTOR, f"tr[data-id='{drift.id}']") == []

        # the drift report's page: its counts and every item the flow stored
        browser.get(f"{base}/erpsync/reports/{drift.id}")
        assert browser.find_element(By.ID, "item-count").text == str(full.item_count)
        summary = browser.find_element(By.ID, "summary").text
        assert f"compared {full.summary['compared']}" in summary
        assert len(browser.find_elements(By.CSS_SELECTOR, "#items tr")) == 1 + len(full.items)
        assert _errors(browser) == []

        # a long report is paged (500 items a page, read a page at a time): next to the end shows each once
        many = store.add_drift_report("inventory_drift_check", "scheduled__many", {"compared": 1200}, [
            {"kind": "quantity_mismatch", "entity": "stock", "external_id": f"SKU-{i:05d}"} for i in range(1200)])
        browser.get(f"{base}/erpsync/reports/{many}")
        shown, wheres = [], []
        while True:
            wheres.append(browser.find_element(By.CSS_SELECTOR, ".pager .where").text)
            shown += browser.execute_script("return [...document.querySelectorAll("
                                            "'#items tr[data-item] td:nth-child(3)')].map(td => td.textContent);")
            following = browser.find_elements(By.ID, "items-next")
            if not following:
                break
            browser.get(following[0].get_attribute("href"))
        assert wheres == ["items 1-500 of 1,200", "items 501-1,000 of 1,200", "items 1,001-1,200 of 1,200"]
        assert shown == [f"SKU-{i:05d}" for i in range(1200)]
        browser.find_element(By.ID, "items-previous").click()
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".pager .where").text == "items 501-1,000 of 1,200")
        assert browser.find_element(By.ID, "item-count").text == "1200" and _errors(browser) == []

        # markup in a report is text
        browser.get(f"{base}/erpsync/reports/{hostile}")
        items = browser.find_element(By.ID, "items").text
        assert "<img src=x onerror=alert(1)>" in items and "<script>alert(2)</script>" in items
        assert "<b>x</b>" in browser.find_element(By.ID, "summary").text
        assert browser.find_elements(By.CSS_SELECTOR, "#items img, #items script, #summary b") == []
        assert _errors(browser) == []

        browser.get(f"{base}/erpsync/reports/999999")
        assert "no report #999999" in browser.page_source

        # a batch that fails the gate builds the Data Docs site the console serves (the API server's
        # ERPSYNC_HOME: the fixture's), and the Reports page links to it
        home = pathlib.Path(airflow_api["state_url"].removeprefix("sqlite:///")).parent
        monkeypatch.setenv("ERPSYNC_HOME", str(home / "erpsync"))
        monkeypatch.delenv("ERPSYNC_GX_DATA_DOCS_DIR", raising=False)
        good, other = list(storefront_adapter.list_customers())[:2]
        twice = [other, {**other, "first_name": "Another"}]  # one id, two contents: GX's unique check fails
        gate_ctx = FlowContext.for_run(flow="customers_sync", run_id="scheduled__docs", store=store,
                                       erp=erp_adapter, storefront=storefront_adapter,
                                       log=logging.getLogger("test.reports"))
        passed = list(gate_ctx.gate("customer", [good, *twice], RunSummary(flow="customers_sync"),
                                    mapper=storefront_mapping(storefront_adapter).customer_from_storefront,
                                    key=lambda raw: str(raw["id"])))
        assert [r["id"] for r in passed] == [good["id"]]
        browser.get(f"{base}/erpsync/reports")
        browser.find_element(By.ID, "data-docs").click()
        WebDriverWait(browser, 30).until(lambda d: "/erpsync/data-docs/" in d.current_url)
        assert "customer" in browser.page_source.lower() and browser.find_elements(By.TAG_NAME, "table")
        # GX's pages load Bootstrap, jQuery ... from public CDNs: the page says so in its first line
        assert "from public CDNs (" in browser.find_element(By.ID, "erpsync-cdn-notice").text
        browser.get(f"{base}/erpsync/reports")
        assert "without internet access they show unstyled" in browser.find_element(By.ID, "data-docs-cdn").text
        # a path out of the site is refused (slashes encoded, so the browser does not fold the dots away)
        browser.get(f"{base}/erpsync/data-docs/..%2F..%2F..%2Fstate.db")
        assert "no such Data Docs page" in browser.page_source
    finally:
        store.close()
