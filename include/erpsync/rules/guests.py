"""Guest checkouts: which ERP customer an order without a storefront customer is booked to.

* ``create``: one ERP customer per guest e-mail (keyed ``guest:<normalised email>``);
* ``shared_account``: every guest order on one web-guest account (default ``WEB-GUEST``);
* ``hold``: the order waits in dead letters (reason ``guest_held``) for a person.
"""

from __future__ import annotations

import enum
from typing import Any

from erpsync.errors import ConfigError
from erpsync.model import Address, Customer, Order, normalise_email

DEFAULT_GUEST_ACCOUNT = "WEB-GUEST"


class GuestPolicy(enum.StrEnum):
    CREATE = "create"
    SHARED_ACCOUNT = "shared_account"
    HOLD = "hold"


def guest_policy(params: dict[str, Any]) -> GuestPolicy:
    """The policy from the flow params; a typo is a configuration error, not a silent default."""
    value = params.get("guest_policy", GuestPolicy.SHARED_ACCOUNT.value)
    try:
        return GuestPolicy(value)
    except ValueError:
        allowed = ", ".join(p.value for p in GuestPolicy)
        raise ConfigError(f"param guest_policy={value!r} is unknown; use one of: {allowed}") from None


def guest_external_id(email: str) -> str:
    return f"guest:{normalise_email(email)}"


def guest_customer(order: Order) -> Customer:
    """A canonical customer for a guest order (policy ``create``), named after its billing address."""
    billing = order.billing_address or order.shipping_address
    first, _, last = (billing.name if billing else "").strip().rpartition(" ")
    addresses: list[Address] = [a for a in (order.billing_address, order.shipping_address) if a]
    return Customer(
        external_id=guest_external_id(order.customer_email),
        email=order.customer_email,
        first_name=first,
        last_name=last,
        company=billing.company if billing else "",
        phone=billing.phone if billing else "",
        group="retail",
        currency=order.currency,
        addresses=addresses,
        is_guest=True,
    )


def shared_guest_account(customer_no: str, currency: str = "USD") -> Customer:
    """The shared web-guest account, created once in the ERP if it is missing."""
    return Customer(
        external_id=f"guest-account:{customer_no}",
        email=f"{customer_no.lower()}@guests.invalid",
        company="Web guest orders",
        group="retail",
        currency=currency,
        is_guest=True,
    )
