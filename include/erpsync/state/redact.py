"""Mask secrets and personal data before a payload is written to the audit log.

The audit log is kept for weeks and read by people debugging a sync, so it must never hold a
credential or a customer's personal data; masking by key name keeps the shape of the payload
(which fields were sent) without the values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# Matched anywhere in the normalised key: "access_token", "X-Api-Key", "client_secret", "cardNumber".
SECRET_FRAGMENTS: frozenset[str] = frozenset(
    {"password", "passwd", "secret", "token", "authorization", "apikey", "cardnumber", "cvv", "cvc", "iban"}
)

# Matched as the whole normalised key only: "name" masks a person's name but not "filename".
SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "card",
        "cvv",
        "cvc",
        "iban",
        "email",
        "phone",
        "mobile",
        "firstname",
        "lastname",
        "fullname",
        "name",
        "address1",
        "address2",
        "street",
        "street2",
        "line1",
        "line2",
        "zip",
        "zipcode",
        "postalcode",
        "postcode",
    }
)

# Matched as the end of the normalised key: "contact_email", "billing_phone".
SENSITIVE_SUFFIXES: tuple[str, ...] = ("email", "phone")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def normalise_key(key: str) -> str:
    """`"Card-Number"`, `"card_number"` and `"cardNumber"` all become `"cardnumber"`."""
    return _NON_ALNUM.sub("", _CAMEL.sub("_", key).lower())


class Redactor:
    """Masks values whose key looks secret or personal, recursively through dicts and lists."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self.extra_keys = frozenset(normalise_key(k) for k in extra_keys)

    def is_sensitive(self, key: str) -> bool:
        norm = normalise_key(key)
        if not norm:
            return False
        return (
            norm in SENSITIVE_KEYS
            or norm in self.extra_keys
            or any(fragment in norm for fragment in SECRET_FRAGMENTS)
            or norm.endswith(SENSITIVE_SUFFIXES)
        )

    def redact(self, value: Any) -> Any:
        """A copy of `value` with sensitive values masked; None and "" stay so absence is visible."""
        if isinstance(value, Mapping):
            return {
                k: self._mask(v) if isinstance(k, str) and self.is_sensitive(k) else self.redact(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.redact(v) for v in value]
        return value

    @staticmethod
    def _mask(value: Any) -> Any:
        return value if value is None or value == "" else MASK


def redact(value: Any, extra_keys: Iterable[str] = ()) -> Any:
    """Shortcut for one-off use: `Redactor(extra_keys).redact(value)`."""
    return Redactor(extra_keys).redact(value)


# Personal data inside free text (reasons, log lines): e-mail addresses and international phone
# numbers. Ids, dates, amounts and SKUs are left alone (a phone needs its leading "+").
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+\d[\d ()./-]{6,}\d")


def mask_text(text: str) -> str:
    """``text`` with e-mail addresses and ``+``-phone numbers masked: ``***@example.com``, ``+***``.
    The domain stays (it tells a typo from a real address); the person does not."""
    if "@" not in text and "+" not in text:
        return text
    text = _EMAIL.sub(lambda m: MASK + m.group(0)[m.group(0).index("@"):], text)
    return _PHONE.sub("+" + MASK, text)


class PersonalDataFilter(logging.Filter):
    """A logging filter that masks personal data (``mask_text``) in every record of its logger:
    each flow's task logger has one (``FlowContext.for_run`` adds it), so a log line never shows a customer's
    e-mail or phone, whatever code wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_personal_data_in(logger: logging.Logger) -> logging.Logger:
    """Install one ``PersonalDataFilter`` on ``logger`` (a second call adds nothing)."""
    if not any(isinstance(f, PersonalDataFilter) for f in logger.filters):
        logger.addFilter(PersonalDataFilter())
    return logger
