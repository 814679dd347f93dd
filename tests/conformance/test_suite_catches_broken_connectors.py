"""The conformance suite tested itself (issue 18): each check fails for a connector that breaks
its contract. Deliberately broken sandbox adapters (a subclass each, here, never in production
code) run through the same check functions as the real connectors and must fail them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from erpsync.connectors.sandbox_erp import SandboxErpAdapter
from erpsync.connectors.sandbox_storefront import SandboxStorefrontAdapter
from erpsync.errors import AuthError, ErpsyncError, PermanentError, UnknownOutcomeError
from tests.conformance import checks
from tests.conformance.conftest import PAGE
from tests.conformance.drivers import SandboxErpDriver, SandboxStoreDriver
from tests.fixtures.sandbox import TEST_RETRY, TEST_TIMEOUT

pytestmark = pytest.mark.integration

Raw = dict[str, Any]


class SkipsLastPage(SandboxErpAdapter):
    """Stops at the first page shorter than a full one, and drops it."""

    def list_sales_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        rows = list(super().list_sales_orders(updated_since))
        return iter(rows[: len(rows) - (len(rows) % self.page_size or self.page_size)])


class ExclusiveSince(SandboxErpAdapter):
    """Reads (since, ...]: a record changed at ``since`` itself is lost."""

    def list_sales_orders(self, updated_since: dt.datetime | None = None) -> Iterator[Raw]:
        return super().list_sales_orders(None if updated_since is None else updated_since + dt.timedelta(seconds=1))


class ResendsBlindly(SandboxErpAdapter):
    """Sends a write again when its answer was lost (a duplicate when the remote ignores keys)."""

    def create_sales_order(self, payload: Raw, *, idempotency_key: str) -> Raw:
        try:
            return super().create_sales_order(payload, idempotency_key=idempotency_key)
        except UnknownOutcomeError:
            return super().create_sales_order({**payload}, idempotency_key=idempotency_key + "-again")


class NoRelogin(SandboxErpAdapter):
    """Keeps its first session for ever."""

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        sid = self._session_id or self.login()
        return self.http.request(method, path, headers={"X-Session-Id": sid}, **kwargs)


class HidesTheMessage(SandboxErpAdapter):
    """Replaces the ERP's words with its own (and so never names the SKU either)."""

    def create_sales_order(self, payload: Raw, *, idempotency_key: str) -> Raw:
        try:
            return super().create_sales_order(payload, idempotency_key=idempotency_key)
        except PermanentError:
            raise PermanentError("the ERP refused the order", system="erp") from None


class RoundsPrices(SandboxErpAdapter):
    """Sends unit prices through a float and one decimal."""

    def create_sales_order(self, payload: Raw, *, idempotency_key: str) -> Raw:
        lines = [{**ln, "unit_price": f"{float(ln['unit_price']):.1f}"} for ln in payload["lines"]]
        return super().create_sales_order({**payload, "lines": lines}, idempotency_key=idempotency_key)


class StoreIgnoresRetryAfter(SandboxStorefrontAdapter):
    """Retries a 429 at once, whatever Retry-After says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http.retry = dataclasses.replace(self.http.retry, max_retry_after=0.0)


class StoreOffsetPagesByChangeTime(SandboxStorefrontAdapter):
    """Pages its orders as the Vendure adapter did before keyset paging: by offset over a sort on
    the change time, the sort re-done for each page as a server sorting by ``updatedAt`` does,
    so an order changed mid-read moves to the end and the unread ones shift one place left."""

    def list_orders(
        self, updated_since: dt.datetime | None = None, updated_before: dt.datetime | None = None
    ) -> Iterator[Raw]:
        size, skip = self.page_size, 0
        while True:
            self.page_size = 250  # the sort over the whole listing, in a few requests
            try:
                rows = sorted(super().list_orders(updated_since, updated_before), key=lambda r: r["updated_at"])
            finally:
                self.page_size = size
            page = rows[skip: skip + size]
            yield from page
            skip += len(page)
            if len(page) < size:
                return


class StoreDropsAnswersSku(SandboxStorefrontAdapter):
    """Turns the store's refusal of an unknown SKU into an anonymous error."""

    def set_inventory(self, items: list[Raw], *, idempotency_key: str) -> Raw:
        try:
            return super().set_inventory(items, idempotency_key=idempotency_key)
        except PermanentError:
            raise PermanentError("inventory write refused", system="storefront") from None


ERP_CASES: list[tuple[type, Callable[[Any], None]]] = [
    (SkipsLastPage, checks.check_paging_reads_every_record_once),
    (ExclusiveSince, checks.check_erp_updated_since_is_inclusive),
    (ResendsBlindly, checks.check_erp_lost_order_answer_is_found_by_reference),
    (NoRelogin, checks.check_session_expiry_mid_run_is_recovered),
    (HidesTheMessage, checks.check_refusal_is_permanent_with_the_systems_message),
    (HidesTheMessage, checks.check_erp_unknown_sku_is_named),
    (RoundsPrices, checks.check_erp_money_quantities_round_trip),
]
STORE_CASES: list[tuple[type, Callable[[Any], None]]] = [
    (StoreIgnoresRetryAfter, checks.check_throttle_retry_after_is_honoured),
    (StoreDropsAnswersSku, checks.check_store_unknown_sku_is_named),
    (StoreOffsetPagesByChangeTime, checks.check_paging_survives_a_record_changing_mid_read),
]


def _fails(check: Callable[[Any], None], driver: Any) -> BaseException:
    with pytest.raises((AssertionError, pytest.fail.Exception, ErpsyncError)) as info:
        check(driver)
    return info.value


@pytest.mark.parametrize(("broken", "check"), ERP_CASES, ids=[f"{b.__name__}-{c.__name__}" for b, c in ERP_CASES])
def test_a_broken_erp_connector_fails_the_check(conformance_sandbox: Any, broken: type, check: Any) -> None:
    sb = conformance_sandbox
    adapter = broken(sb.erp_url, sb.erp_user, sb.erp_password, timeout=TEST_TIMEOUT, page_size=PAGE, retry=TEST_RETRY)
    good = SandboxErpAdapter(sb.erp_url, sb.erp_user, sb.erp_password, timeout=TEST_TIMEOUT, page_size=PAGE,
                             retry=TEST_RETRY)
    try:
        check(SandboxErpDriver(good, sb))  # the sound adapter passes the same check ...
        failure = _fails(check, SandboxErpDriver(adapter, sb))  # ... the broken one does not
        if broken is NoRelogin:
            assert isinstance(failure, AuthError), failure
    finally:
        sb.clear_faults()
        adapter.http.close()
        good.http.close()


@pytest.mark.parametrize(("broken", "check"), STORE_CASES, ids=[f"{b.__name__}-{c.__name__}" for b, c in STORE_CASES])
def test_a_broken_store_connector_fails_the_check(conformance_sandbox: Any, broken: type, check: Any) -> None:
    sb = conformance_sandbox
    adapter = broken(sb.storefront_url, sb.token, timeout=TEST_TIMEOUT, page_size=PAGE, retry=TEST_RETRY)
    try:
        _fails(check, SandboxStoreDriver(adapter, sb))
    finally:
        sb.clear_faults()
        adapter.http.close()
