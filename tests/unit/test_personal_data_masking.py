"""Personal data stays out of task logs and dead-letter reasons (issue 7, security): e-mails and
phone numbers are masked in free text; the dead letter's payload keeps what a replay needs."""

from __future__ import annotations

import logging

import pytest

from erpsync.flows.base import FlowContext, RunSummary, dead_letter
from erpsync.state import StateStore
from erpsync.state.redact import mask_text


@pytest.mark.parametrize(("text", "masked"), [
    ("customer_unresolved: guest Jane.Doe+x@example.co.uk: two matches",
     "customer_unresolved: guest ***@example.co.uk: two matches"),
    ("bad_phone: +44 20 7946 0958 (too short?)", "bad_phone: +*** (too short?)"),
    ("two: a@shop.de, b@shop.de", "two: ***@shop.de, ***@shop.de"),
])
def test_emails_and_phones_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", [
    "order 2025-01-01T10:00:00+00:00 SO-123 total 19.99 EUR",
    "unknown_sku: ABC-123, qty -4, id 1234567890",
    "field_too_long: name (70000 chars)",
    "not an address: a@b",
])
def test_ids_dates_and_amounts_are_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_flow_log_and_dead_letter_reason_hold_no_email_but_the_payload_does(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    with StateStore.from_url(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.migrate()
        ctx = FlowContext.for_run(flow="orders_sync", run_id="r1", store=store, erp=None, storefront=None,  # type: ignore[arg-type]
                                  params={}, log=logging.getLogger("test.pii.orders_sync"))
        summary = RunSummary(flow="orders_sync", run_id="r1")
        payload = {"id": "O1", "email": "jane.doe@example.com"}
        with caplog.at_level(logging.INFO, logger="test.pii.orders_sync"):
            ctx.log.info("matching %s by e-mail", "jane.doe@example.com")  # any line of any flow code
            dl = dead_letter(ctx, summary, "order", "O1", payload,
                             "customer_unresolved: guest jane.doe@example.com: two customers match")
            ctx.log.info("%s", summary.render())
        text = caplog.text
        assert "jane.doe@example.com" not in text
        assert "matching ***@example.com by e-mail" in text and "dead letter #" in text
        stored = store.get_dead_letter(dl)
        assert stored is not None
        assert stored.reason == "customer_unresolved: guest ***@example.com: two customers match"
        assert stored.payload == payload  # the replay still has the address
