"""The operator console in a real browser: Debian's headless chromium driven by selenium against
a real Airflow API server (its own AIRFLOW_HOME, SQLite, SimpleAuthManager) with the erpsync
plugin, the sandbox ERP and storefront over HTTP.

The triage path as a newcomer walks it: an order is dead-lettered for an SKU the ERP does not
know; log in to Airflow, land on the health dashboard (orders_sync amber, why, how many dead
letters), follow the count to the Dead letters page, open the letter, a dry run says it would
fail and why, a payload edit that breaks the quality suite is refused (nothing saved) and a good
one saved, "bind and replay" binds the SKU and replays every letter blocked on it: the order is
in the ERP exactly once, the dead letter resolved, every action audited with the Airflow user.
The rest are replayed in bulk: an honest dry run per record, then a confirm. A hostile payload
is shown as text. No page logs a console error.

Needs ``apt-get install -y chromium chromium-driver`` (skipped with that hint when absent).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("browser tests need Debian's chromium and its driver: apt-get install -y chromium chromium-driver",
                allow_module_level=True)
selenium = pytest.importorskip("selenium", reason="pip install -r requirements.txt (selenium)")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from erpsync.state import StateStore  # noqa: E402
from tests.fixtures.sandbox import TEST_RETRY, TEST_SEED, TEST_TIMEOUT  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

REPO = pathlib.Path(__file__).resolve().parents[2]
#: ERPSYNC_UPDATE_SCREENSHOTS=1 writes the screenshots to docs/img/ (the ones the docs show);
#: otherwise to the test's temporary directory, so a test run leaves the checkout as it was
UPDATE_DOCS = os.environ.get("ERPSYNC_UPDATE_SCREENSHOTS", "") == "1"
PASSWORD = "console-test-pass"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def airflow_api(sandbox: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``airflow api-server`` (one worker) with our plugins, on a free port, logged to its home."""
    home = tmp_path_factory.mktemp("console-airflow")
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD, "viewer": PASSWORD}))
    port = _free_port()
    state_url = f"sqlite:///{home}/state.db"
    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "ERPSYNC_STATE_URL": state_url,
        "ERPSYNC_HOME": str(home / "erpsync"),
        "AIRFLOW_CONN_ERP_DEFAULT": json.dumps({
            "conn_type": "erpsync_erp", "host": sandbox.erp_url, "login": sandbox.erp_user,
            "password": sandbox.erp_password, "extra": {"adapter": "sandbox", "timeout": 5}}),
        "AIRFLOW_CONN_STOREFRONT_DEFAULT": json.dumps({
            "conn_type": "erpsync_storefront", "host": sandbox.storefront_url, "password": sandbox.token,
            "extra": {"adapter": "sandbox", "timeout": 5}}),
    }
    env.pop("AIRFLOW_CONN_ERPSYNC_STATE", None)
    # the metadata DB migrates while the sandbox dead-letters an order (both take seconds)
    migrate = subprocess.Popen([sys.executable, "-m", "airflow", "db", "migrate"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dead = _dead_letter_an_order(sandbox, state_url)
    out, _ = migrate.communicate(timeout=300)
    assert migrate.returncode == 0, out[-3000:]
    log = (home / "api-server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--apps", "core", "--workers", "1",
                             "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _healthy(f"{base}/api/v2/monitor/health"):
            assert proc.poll() is None, (home / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the API server did not come up in 120 s"
            time.sleep(0.5)
        yield {"base": base, "state_url": state_url, **dead}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_window_size(1400, 1000)
    try:
        yield driver
    finally:
        driver.quit()


def _errors(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _result(driver: Any) -> tuple[str, str]:
    el = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "result"))
    return el.get_attribute("data-result"), el.text


def _submit(driver: Any, button: Any, timeout: float = 30) -> tuple[str, str]:
    """Click a form's button and read the result of the page it leads to, never the page before.
    The old page is marked with a window property; a new document has none. (Watching the old
    #result go stale raced twice: a stale read, then chromedriver's 'Node ... does not belong to
    the document' while the page was being swapped.)"""
    driver.execute_script("window.__erpsyncOldPage = true;")
    button.click()
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(
        lambda d: d.execute_script(
            "return window.__erpsyncOldPage === undefined && document.readyState === 'complete';"))
    return _result(driver)


def test_triage_an_unknown_sku_from_the_dead_letters_page(
    airflow_api: dict[str, Any], sandbox: Any, browser: Any, erp_adapter: Any, tmp_path: pathlib.Path
) -> None:
    img = REPO / "docs" / "img" if UPDATE_DOCS else tmp_path
    base = airflow_api["base"]
    store = StateStore.from_url(airflow_api["state_url"])
    held = airflow_api["held"]
    dl = store.get_dead_letter(airflow_api["dead_letter"])
    (sku,) = dl.reason.removeprefix("unknown_sku: ").split(", ")
    try:
        hostile = store.add_dead_letter("customers_sync", "customer", "C-<b>bold</b>",
                                        {"id": "<script>alert('x')</script>", "note": "<img src=x onerror=alert(1)>"},
                                        "mapping_error: <img src=x onerror=alert(2)>")

        # log in through Airflow's own login page, which sends us back to the console's landing page
        browser.get(f"{base}/erpsync/")
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.NAME, "username"))
        assert "/auth/login" in browser.current_url
        browser.find_element(By.NAME, "username").send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(browser, 30).until(lambda d: d.current_url.startswith(f"{base}/erpsync/dashboard"))
        assert browser.find_element(By.ID, "user").text == "admin"

        # the dashboard says orders_sync needs attention, why, and how many letters wait
        orders = browser.find_element(By.CSS_SELECTOR, "#dashboard tr[data-flow='orders_sync']")
        assert orders.find_element(By.CSS_SELECTOR, ".verdict").text in ("amber", "red")
        assert f"{held} open dead letter(s)" in orders.find_element(By.CSS_SELECTOR, ".why").text
        assert orders.find_elements(By.CSS_SELECTOR, "svg.chart rect")  # the 24 h chart, drawn on the server
        assert {r.get_attribute("data-system") for r in browser.find_elements(By.CSS_SELECTOR, "#systems tr[data-system]")
                } >= {"erp", "storefront"}
        browser.save_screenshot(str(img / "console-dashboard.png"))
        assert _errors(browser) == []
        link = orders.find_element(By.CSS_SELECTOR, "a.open-letters")
        assert link.text == str(held)
        link.click()
        WebDriverWait(browser, 30).until(lambda d: d.current_url.startswith(f"{base}/erpsync/dead-letters?flow="))

        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{dl.id}']")
        assert dl.external_id in row.text and f"unknown_sku: {sku}" in row.text
        assert f"unknown_sku {held}" in browser.find_element(By.ID, "reasons").text
        health = browser.find_element(By.ID, "health").text
        assert ("orders_sync amber" in health or "orders_sync red" in health) and f"{held} open dead letter(s)" in health
        browser.save_screenshot(str(img / "console-dead-letters.png"))
        assert _errors(browser) == []

        # the filter narrows the list
        browser.get(f"{base}/erpsync/dead-letters?flow=customers_sync")
        assert browser.find_elements(By.CSS_SELECTOR, f"tr[data-id='{dl.id}']") == []
        assert browser.find_elements(By.CSS_SELECTOR, f"tr[data-id='{hostile}']")

        # a hostile payload is text, not markup (an unescaped <img src=x> would log a 404 error)
        browser.get(f"{base}/erpsync/dead-letters/{hostile}")
        assert "<script>alert('x')</script>" in browser.find_element(By.ID, "payload").text
        assert "<img src=x onerror=alert(2)>" in browser.find_element(By.ID, "reason").text
        assert browser.find_elements(By.CSS_SELECTOR, "#payload script, #payload img, #reason img, b b") == []
        assert _errors(browser) == []

        # open the order's dead letter from the list
        browser.get(f"{base}/erpsync/dead-letters")
        browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{dl.id}'] a").click()
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "payload"))
        assert json.loads(browser.find_element(By.ID, "payload").text)["id"] == json.loads(
            json.dumps(dl.payload, default=str))["id"]
        assert browser.find_element(By.ID, "reason").text == dl.reason

        # honest dry run: it would fail, and why
        result, text = _submit(browser, browser.find_element(By.ID, "preview"))
        assert result == "would_fail" and f"unknown_sku: {sku}" in text
        assert erp_adapter.find_sales_order(dl.external_id) is None

        # a payload edit is checked against the order quality suite: a bad one is refused, nothing saved
        before = store.get_dead_letter(dl.id).payload
        edited = json.loads(json.dumps(before))
        for email, expected in (("not an e-mail", "invalid"), ("fixed.buyer@example.com", "saved")):
            edited["email"] = email
            result, text = _edit(browser, json.dumps(edited, indent=2))
            assert result == expected, text
            if expected == "invalid":
                assert "nothing saved" in text and store.get_dead_letter(dl.id).payload == before
        assert "changed: email" in text and f"a replay would still fail: unknown_sku: {sku}" in text
        assert store.get_dead_letter(dl.id).payload["email"] == "fixed.buyer@example.com"
        result, _ = _edit(browser, "{not json")
        assert result == "invalid" and store.get_dead_letter(dl.id).payload["email"] == "fixed.buyer@example.com"

        # bind and replay, one action: the SKU is bound, this letter and every one blocked on the SKU replayed
        blocked = [d.id for d in store.list_dead_letters(flow="orders_sync") if d.reason == f"unknown_sku: {sku}"]
        code = _item_code(erp_adapter, "SKU-000001")  # an item the ERP knows
        form = browser.find_element(By.CSS_SELECTOR, "form.bind")
        form.find_element(By.NAME, "item_code").send_keys(code)
        result, text = _submit(browser, form.find_element(By.CSS_SELECTOR, "button.bind-replay"))
        assert result == "resolved", text
        assert f"SKU {sku} -> ERP item {code}" in text and f"blocked on {sku} replayed too" in text
        assert browser.find_element(By.ID, "status").text == "resolved"
        history = browser.find_element(By.ID, "history").text
        for action in ("dead_letter_preview", "dead_letter_edit", "xref_bind", "dead_letter_replay"):
            assert action in history
        browser.save_screenshot(str(img / "console-dead-letter-detail.png"))
        assert _errors(browser) == []

        assert erp_adapter.find_sales_order(dl.external_id) is not None
        assert all(store.get_dead_letter(i).status == "resolved" for i in blocked)
        assert all(erp_adapter.find_sales_order(store.get_dead_letter(i).external_id) for i in blocked)
        assert sandbox.stats("erp")["duplicate_external_refs"] == 0
        audit = store.list_audit(correlation_id=f"dead_letter:{dl.id}")
        assert [a.operation for a in reversed(audit)] == [
            "dead_letter_preview", "dead_letter_edit", "dead_letter_edit", "xref_bind", "dead_letter_replay"]
        assert {a.request["by"] for a in audit} == {"admin"} and {a.system for a in audit} == {"operator"}

        # the rest in bulk: ticked ones first (an honest dry run says each would fail, and why) ...
        rest = store.list_dead_letters(flow="orders_sync")
        assert rest, "the seed dead-letters orders for more than one SKU"
        browser.get(f"{base}/erpsync/dead-letters?flow=orders_sync")
        for d in rest[:2]:
            browser.find_element(By.CSS_SELECTOR, f"tr[data-id='{d.id}'] input[name=ids]").click()
        result, text = _submit(browser, browser.find_element(By.ID, "bulk-selected"))
        assert result == "would_fail" and "would_fail x" in text
        outcomes = browser.find_elements(By.CSS_SELECTOR, "#bulk-outcomes tr[data-id]")
        assert len(outcomes) == len(rest[:2]) and all("unknown_sku" in o.text for o in outcomes)
        assert browser.find_elements(By.ID, "confirm") == []  # nothing that would send, nothing to confirm
        # ... then the SKUs of the letters naming the least blocked SKU are bound (as on the Cross-references
        # page), the list is filtered by that SKU, and all matching the filter go (a replay takes ~2 s)
        by_sku = Counter(s for d in rest for s in d.reason.removeprefix("unknown_sku: ").split(", "))
        least = min(by_sku, key=lambda s: (by_sku[s], s))
        batch = [d for d in rest if least in d.reason]
        for d in batch:
            for other in d.reason.removeprefix("unknown_sku: ").split(", "):
                store.upsert_xref("erp", "item", other, code)
        browser.get(f"{base}/erpsync/dead-letters?flow=orders_sync&reason={least}")
        result, text = _submit(browser, browser.find_element(By.ID, "bulk-filter"), timeout=90)
        assert result == "would_send" and f"would_send x{len(batch)}" in text, text
        assert all(erp_adapter.find_sales_order(d.external_id) is None for d in batch)  # a dry run sends nothing
        result, text = _submit(browser, browser.find_element(By.ID, "confirm"), timeout=90)
        assert result == "replayed" and f"resolved x{len(batch)}" in text, text
        assert _errors(browser) == []
        assert all(store.get_dead_letter(d.id).status == "resolved" for d in batch)
        assert all(erp_adapter.find_sales_order(d.external_id) for d in batch)
        assert sandbox.stats("erp")["duplicate_external_refs"] == 0
        assert len(store.list_dead_letters(flow="orders_sync")) == len(rest) - len(batch)

        # the Cross-references page, linked from the console's pages: the binding is there, filterable;
        # a binding to nothing is refused; a store location is bound and unbound (escaped, audited)
        browser.find_element(By.ID, "nav-xrefs").click()
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "xrefs"))
        browser.get(f"{base}/erpsync/xrefs?system=erp&entity=item&search={sku.lower()}")
        rows = browser.find_elements(By.CSS_SELECTOR, "#xrefs tr")[1:]
        assert len(rows) == 1 and sku in rows[0].text and code in rows[0].text
        location = "LOC-<i>1</i>"
        for internal, expected in (("None", "error"), ("WH-1", "bound")):
            form = browser.find_element(By.ID, "xref-bind")
            form.find_element(By.NAME, "entity").clear()
            form.find_element(By.NAME, "entity").send_keys("warehouse")
            form.find_element(By.NAME, "external_id").send_keys(location)
            form.find_element(By.NAME, "internal_id").send_keys(internal)
            result, text = _submit(browser, form.find_element(By.CSS_SELECTOR, "button"))
            assert result == expected, text
        assert "not an id" not in text and store.get_xref("erp", "warehouse", location).internal_id == "WH-1"
        assert location in browser.find_element(By.ID, "xrefs").text
        assert browser.find_elements(By.CSS_SELECTOR, "#xrefs i, #result i") == []
        browser.save_screenshot(str(img / "console-xrefs.png"))
        browser.get(f"{base}/erpsync/xrefs?entity=warehouse")
        form = browser.find_element(By.CSS_SELECTOR, "form.unbind")
        form.find_element(By.NAME, "confirm").click()
        assert _submit(browser, form.find_element(By.CSS_SELECTOR, "button"))[0] == "unbound"
        assert store.get_xref("erp", "warehouse", location) is None
        changes = store.list_audit(correlation_id=f"xref:erp:warehouse:{location}")
        assert [(a.operation, a.request["by"]) for a in changes] == [("xref_unbind", "admin"), ("xref_bind", "admin")]
        assert _errors(browser) == []
        browser.get(f"{base}/erpsync/dead-letters/{dl.id}")

        # the dashboard counts what is left
        browser.find_element(By.ID, "nav-dashboard").click()
        orders = WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#dashboard tr[data-flow='orders_sync']"))
        left = len(rest) - len(batch)
        assert (f"{left} open dead letter(s)" in orders.find_element(By.CSS_SELECTOR, ".why").text) == bool(left)
        assert _errors(browser) == []
        browser.get(f"{base}/erpsync/dead-letters/{dl.id}")

        # a resolved letter has no actions left, says what closed it, and refuses one posted anyway (nothing sent)
        assert browser.find_element(By.ID, "status").text == "resolved"
        assert browser.find_elements(By.CSS_SELECTOR, "#preview, #replay, #ignore, #edit, form.bind, .bind-replay") == []
        closed = browser.find_element(By.ID, "closed-note").text
        assert closed.startswith("resolved at ") and "by admin from the console: written to the target" in closed
        audited = len(store.list_audit(correlation_id=f"dead_letter:{dl.id}"))
        admin = _token(base, "admin")
        for action in ("replay", "ignore", "bind-replay", "payload"):
            assert _post(f"{base}/erpsync/dead-letters/{dl.id}/{action}", {"note": "x", "sku": sku, "item_code": code,
                                                                           "payload": "{}"}, bearer=admin) == 409
        assert store.get_dead_letter(dl.id).status == "resolved" and sandbox.stats("erp")["duplicate_external_refs"] == 0
        assert len(store.list_audit(correlation_id=f"dead_letter:{dl.id}")) == audited
        # ignore needs a note and is audited
        browser.get(f"{base}/erpsync/dead-letters/{hostile}")
        browser.find_element(By.NAME, "note").send_keys("test data, not a real customer")
        assert _submit(browser, browser.find_element(By.ID, "ignore"))[0] == "ignored"
        assert store.get_dead_letter(hostile).status == "ignored"
        assert store.list_audit(correlation_id=f"dead_letter:{hostile}")[0].request["note"] == \
            "test data, not a real customer"
        assert browser.find_elements(By.CSS_SELECTOR, "#preview, #replay, #ignore, #edit") == []
        assert "by admin from the console: test data, not a real customer" in browser.find_element(
            By.ID, "closed-note").text

        # the page inside Airflow's own UI (its navigation entry)
        browser.get(f"{base}/plugin/erpsync-dead-letters")
        frame = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "iframe"))
        assert frame.get_attribute("src").endswith("/erpsync/dead-letters")
        browser.switch_to.frame(frame)
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "health"))
        browser.switch_to.default_content()
        browser.save_screenshot(str(img / "console-in-airflow.png"))
        browser.get(f"{base}/plugin/erpsync-dashboard")  # Browse > Sync health
        frame = WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "iframe"))
        assert frame.get_attribute("src").endswith("/erpsync/dashboard")
        browser.switch_to.frame(frame)
        WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#dashboard tr[data-flow]"))
        browser.switch_to.default_content()
        assert _errors(browser) == []

        # forms from another site are refused (the token is bound to the session)
        status = _post(f"{base}/erpsync/dead-letters/{dl.id}/replay", {"csrf": "forged"}, cookies=browser.get_cookies())
        assert status == 403
        # Airflow's permissions apply: a viewer sees the page but may not act; no login, no page
        viewer = _token(base, "viewer")
        assert _get(f"{base}/erpsync/dead-letters", viewer) == 200
        assert _post(f"{base}/erpsync/dead-letters/{hostile}/ignore", {"note": "x"}, bearer=viewer) == 403
        assert _get(f"{base}/erpsync/dead-letters/{hostile}", None) == 303  # to Airflow's login
        assert len(store.list_audit(correlation_id=f"dead_letter:{hostile}")) == 1  # the admin's ignore only
    finally:
        store.close()
        sandbox.reset(**TEST_SEED)


def _edit(driver: Any, text: str) -> tuple[str, str]:
    """Put ``text`` in the payload editor of the open dead letter page and save it."""
    driver.find_element(By.CSS_SELECTOR, "#edit summary").click()
    area = driver.find_element(By.CSS_SELECTOR, "#edit-payload textarea")
    driver.execute_script("arguments[0].value = arguments[1];", area, text)
    return _submit(driver, driver.find_element(By.ID, "save-payload"))


def _dead_letter_an_order(sandbox: Any, state_url: str) -> dict[str, Any]:
    """The ERP lacks the last 10 SKUs: orders_sync dead-letters the orders that sell them."""
    from erpsync.connectors.sandbox_erp import SandboxErpAdapter
    from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
    from tests.integration.test_flows_sandbox import sync_all

    sandbox.reset(**TEST_SEED)
    sandbox.clear_faults()
    sandbox.reset("erp", **{**TEST_SEED, "skus": TEST_SEED["skus"] - 10})
    erp = SandboxErpAdapter(sandbox.erp_url, sandbox.erp_user, sandbox.erp_password, timeout=TEST_TIMEOUT,
                            page_size=25, retry=TEST_RETRY)
    sf = SandboxStorefrontAdapter(sandbox.storefront_url, sandbox.token, timeout=TEST_TIMEOUT, page_size=25,
                                  retry=TEST_RETRY)
    store = StateStore.from_url(state_url)
    try:
        store.migrate()
        customers, orders = sync_all(store, erp, sf, run_id="scheduled__console")
        _record_runs(store, {"customers_sync": customers, "orders_sync": orders})
        held = [d for d in store.list_dead_letters(flow="orders_sync") if d.reason.startswith("unknown_sku: ")]
        assert held
        dl = min(held, key=lambda d: (d.reason.count(","), d.id))  # one SKU to bind
        return {"held": len(held), "dead_letter": dl.id}
    finally:
        store.close()
        erp.http.close()
        sf.http.close()


def _record_runs(store: StateStore, summaries: dict[str, Any]) -> None:
    """The run metrics the task runtime records after a run (``runtime.record_run``): the dashboard's source."""
    import datetime as dt

    from erpsync.dashboard import latency_histogram

    now = dt.datetime.now(dt.UTC)
    for flow, s in summaries.items():
        extra = {"status": "success", "dead_letters": len(s.dead_letters), "read": s.read}
        if s.latencies_s:
            extra["latency"] = latency_histogram(s.latencies_s)
        store.record_run(flow, "scheduled__console", now - dt.timedelta(seconds=20), now, s.done, s.failed,
                         s.quarantined, s.skipped, extra=extra)


def _item_code(erp_adapter: Any, sku: str) -> str:
    from erpsync.connectors.registry import erp_mapping

    found = erp_adapter.find_item_by_sku(sku)
    assert found is not None, sku
    return str(erp_mapping(erp_adapter).item_code(found))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _send(req: urllib.request.Request) -> int:
    import urllib.error

    try:
        with urllib.request.build_opener(_NoRedirect).open(req, timeout=15) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _token(base: str, user: str) -> str:
    req = urllib.request.Request(f"{base}/auth/token", method="POST", data=json.dumps(
        {"username": user, "password": PASSWORD}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        return json.load(resp)["access_token"]


def _get(url: str, bearer: str | None) -> int:
    return _send(urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"} if bearer else {}))


def _post(url: str, form: dict[str, str], *, cookies: list[dict[str, Any]] | None = None,
          bearer: str | None = None) -> int:
    import urllib.parse

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return _send(urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST",
                                        headers=headers))
