"""Guest checkout policy."""

from __future__ import annotations

import pytest
from test_mappings_storefront import SF_ORDER

from erpsync.errors import ConfigError
from erpsync.mappings.storefront_sandbox import order_from_storefront
from erpsync.rules.guests import GuestPolicy, guest_customer, guest_policy, shared_guest_account


def test_default_policy_is_shared_account() -> None:
    assert guest_policy({}) is GuestPolicy.SHARED_ACCOUNT
    assert guest_policy({"guest_policy": "hold"}) is GuestPolicy.HOLD


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="guest_policy='holdd'"):
        guest_policy({"guest_policy": "holdd"})


def test_guest_customer_is_keyed_by_normalised_email() -> None:
    order = order_from_storefront({**SF_ORDER, "customer": None, "email": " Guest.7@Example.org"})
    c = guest_customer(order)
    assert c.external_id == "guest:guest.7@example.org"
    assert (c.first_name, c.last_name, c.is_guest, c.currency) == ("Anna", "Müller", True, "GBP")
    assert [a.kind for a in c.addresses] == ["billing", "shipping"]


def test_shared_account() -> None:
    acc = shared_guest_account("WEB-GUEST")
    assert acc.external_id == "guest-account:WEB-GUEST"
    assert acc.email == "web-guest@guests.invalid"
