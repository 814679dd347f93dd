"""Which ERP customer is this storefront customer? Duplicate matching, strongest evidence first.

1. the normalised e-mail (trimmed, lower case);
2. the normalised full name together with a normalised postcode of any of the addresses.

An ERP customer already bound to a *different* storefront customer (its ``external_ref``) is never
a match: it belongs to someone else. More than one candidate at the same level is ambiguous and
is not guessed; the flow dead-letters it for a person to decide.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from erpsync.model import Customer, normalise_email

__all__ = ["Match", "match_customer", "normalise_email", "normalise_name", "normalise_postcode"]


def normalise_name(*parts: str) -> str:
    """Case, accents, punctuation and spacing do not tell two people apart: ``José  O'Neil`` ==
    ``jose oneil``."""
    joined = " ".join(p for p in parts if p)
    decomposed = unicodedata.normalize("NFKD", joined)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    cleaned = re.sub(r"[^\w\s]", "", ascii_only.casefold())
    return " ".join(cleaned.split())


def normalise_postcode(postcode: str) -> str:
    """``sw1a 1aa`` == ``SW1A1AA``; ``12345-6789`` == ``123456789``."""
    return re.sub(r"[\s\-]", "", (postcode or "").upper())


def full_name(c: Customer) -> str:
    return normalise_name(c.first_name, c.last_name)


def postcodes(c: Customer) -> set[str]:
    return {p for p in (normalise_postcode(a.postcode) for a in c.addresses) if p}


@dataclass(frozen=True, slots=True)
class Match:
    """Outcome of matching: ``customer`` when exactly one candidate matched at ``level``."""

    level: str  # "email" | "name_postcode" | "none"
    customer: Customer | None = None
    ambiguous: tuple[str, ...] = field(default_factory=tuple)  # ids of the tied candidates

    @property
    def found(self) -> bool:
        return self.customer is not None


def match_customer(
    candidate: Customer,
    existing: Iterable[Customer],
    *,
    bound_to: dict[str, str | None] | None = None,
) -> Match:
    """Find ``candidate`` among ``existing`` ERP customers.

    ``bound_to`` maps an ERP id to the storefront id it is already bound to (its external ref);
    those bound to another storefront id are left out.
    """
    bound_to = bound_to or {}
    pool = [e for e in existing if bound_to.get(e.external_id) in (None, "", candidate.external_id)]
    # A customer already carrying our storefront id is ours, whatever else changed.
    ours = [e for e in pool if bound_to.get(e.external_id) == candidate.external_id]
    if len(ours) == 1:
        return Match("external_ref", ours[0])

    email = candidate.normalised_email
    if email:
        by_email = [e for e in pool if e.normalised_email == email]
        if len(by_email) == 1:
            return Match("email", by_email[0])
        if len(by_email) > 1:
            return Match("email", None, tuple(e.external_id for e in by_email))

    name, codes = full_name(candidate), postcodes(candidate)
    if name and codes:
        by_name = [e for e in pool if full_name(e) == name and postcodes(e) & codes]
        if len(by_name) == 1:
            return Match("name_postcode", by_name[0])
        if len(by_name) > 1:
            return Match("name_postcode", None, tuple(e.external_id for e in by_name))
    return Match("none")
