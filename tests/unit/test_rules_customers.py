"""Duplicate matching: e-mail first, then name + postcode; bound and ambiguous candidates."""

from __future__ import annotations

import pytest

from erpsync.model import Address, Customer
from erpsync.rules.customers import match_customer, normalise_name, normalise_postcode


def cust(cid: str, email: str = "", first: str = "", last: str = "", postcode: str = "") -> Customer:
    addresses = [Address(line1="1 Main St", city="X", postcode=postcode, country="GB")] if postcode else []
    return Customer(external_id=cid, email=email, first_name=first, last_name=last, addresses=addresses)


SF = cust("C1", " Anna.Muller@Example.com", "Anna", "Müller", "sw1a 1aa")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("José", "O'Neil"), ("jose", "oneil")),
        (("  Anna ", "MÜLLER"), ("anna", "muller")),
        (("Jean-Luc", "Picard"), ("jeanluc", "picard")),
    ],
)
def test_normalise_name(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert normalise_name(*a) == normalise_name(*b)


def test_normalise_postcode() -> None:
    assert normalise_postcode("sw1a 1aa") == normalise_postcode("SW1A1AA") == "SW1A1AA"
    assert normalise_postcode("12345-6789") == "123456789"


def test_email_match_ignores_case_and_spaces() -> None:
    erp = [cust("CUST-1", "other@example.com"), cust("CUST-2", "anna.muller@example.COM ")]
    m = match_customer(SF, erp)
    assert (m.level, m.customer.external_id if m.customer else None) == ("email", "CUST-2")


def test_name_and_postcode_when_no_email_matches() -> None:
    erp = [
        cust("CUST-1", "a@old-mail.test", "ANNA", "Muller", "SW1A 1AA"),
        cust("CUST-2", "b@x.test", "Anna", "Müller", "10115"),  # same name, other postcode
    ]
    m = match_customer(SF, erp)
    assert (m.level, m.customer.external_id if m.customer else None) == ("name_postcode", "CUST-1")


def test_same_name_other_postcode_is_no_match() -> None:
    m = match_customer(SF, [cust("CUST-2", "b@x.test", "Anna", "Müller", "10115")])
    assert (m.level, m.found) == ("none", False)


def test_email_beats_name() -> None:
    erp = [cust("CUST-1", "x@y.test", "Anna", "Müller", "SW1A1AA"), cust("CUST-2", "anna.muller@example.com")]
    assert match_customer(SF, erp).customer.external_id == "CUST-2"  # type: ignore[union-attr]


def test_ambiguous_is_not_guessed() -> None:
    erp = [cust("CUST-1", "anna.muller@example.com"), cust("CUST-2", "ANNA.MULLER@example.com")]
    m = match_customer(SF, erp)
    assert (m.found, m.level, m.ambiguous) == (False, "email", ("CUST-1", "CUST-2"))


def test_customer_bound_to_another_storefront_customer_is_not_a_match() -> None:
    erp = [cust("CUST-1", "anna.muller@example.com"), cust("CUST-2", "anna.muller@example.com")]
    m = match_customer(SF, erp, bound_to={"CUST-1": "C999", "CUST-2": None})
    assert m.customer.external_id == "CUST-2"  # type: ignore[union-attr]


def test_customer_already_carrying_our_id_wins() -> None:
    erp = [cust("CUST-1", "anna.muller@example.com"), cust("CUST-2", "new@example.com")]
    m = match_customer(SF, erp, bound_to={"CUST-2": "C1"})
    assert (m.level, m.customer.external_id if m.customer else None) == ("external_ref", "CUST-2")


def test_no_name_no_match() -> None:
    assert not match_customer(cust("C2", "z@z.test"), [cust("CUST-1", "", "", "", "SW1A1AA")]).found
