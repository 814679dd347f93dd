"""The e-mail that lists held price changes: what a person needs to decide, and how."""

from __future__ import annotations

from decimal import Decimal as D

from erpsync.flows.pricing import Held, render_held


def test_held_list_names_each_change_and_the_commands() -> None:
    held = [Held(7, "variant|SKU-000001|1", "LIST", D("100.00"), D("10.00"), "USD",
                 "change_over_threshold: -90.0% from 100.00 (limit 20%)")]
    subject, body = render_held(held, total=1, pending_total=3)
    assert subject == "[erpsync] pricing_sync held 1 price change for approval"
    assert "#7" in body and "variant|SKU-000001|1" in body and "100.00" in body and "10.00" in body
    assert "erpsync approvals approve ID" in body and "erpsync approvals reject ID" in body
    assert "Pending approvals of pricing_sync in all: 3." in body


def test_a_long_list_is_cut_and_counted() -> None:
    held = [Held(i, f"variant|SKU-{i:06d}|1", "LIST", None, D("0"), "USD", "zero_price") for i in range(5)]
    subject, body = render_held(held[:2], total=300_000, limit=2)
    assert "held 300000 price changes" in subject
    assert "... and 299998 more" in body and body.count("zero_price") == 2
