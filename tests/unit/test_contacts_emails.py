"""The fast address check agrees with email-validator's own verdict and normalised form."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dealmail.contacts.emails import (
    EmailNormaliser,
    InvalidEmail,
    clean_address,
    full_validation,
)
from dealmail.contacts.identity import email_key

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
TRICKY = ATEXT + '.."@ <>()[]\\,;:\u00e9\u00fc\u0301\u200b\t'

local_parts = st.one_of(
    st.text(alphabet=ATEXT + ".", min_size=0, max_size=20),
    st.text(alphabet=TRICKY, min_size=0, max_size=12),
    st.sampled_from(["info", "INFO", "Sales", "postmaster", "ana.maria", "x" * 70, "x" * 250]),
    st.text(max_size=8),
)
domains = st.one_of(
    st.sampled_from(
        [
            "example.com",
            "Example.COM",
            "gmail.com",
            "bücher.de",
            "BÜCHER.de",
            "xn--bcher-kva.de",
            "b\u0308cher.de",
            "x.test",
            "localhost",
            "a..b.com",
            "-a.com",
            "a-.com",
            "[127.0.0.1]",
            "x.org>",
            "<x.org>",
            "mail." + "a" * 63 + ".com",
            "mail." + "a" * 64 + ".com",
            ("a" * 60 + ".") * 4 + "com",
            "123.com",
            "ex ample.com",
        ]
    ),
    st.text(alphabet=string.ascii_lowercase + string.digits + ".-", min_size=1, max_size=30),
    st.text(max_size=10),
)


def _outcome(check: object, address: str) -> tuple[str, str] | str:
    try:
        return check(address)  # type: ignore[operator,no-any-return]
    except InvalidEmail:
        return "invalid"


@settings(max_examples=600, deadline=None)
@given(local=local_parts, at=st.sampled_from(["@", "@", "@", "", "@@"]), domain=domains)
def test_fast_path_agrees_with_email_validator(local: str, at: str, domain: str) -> None:
    address = clean_address(local + at + domain)
    fast = EmailNormaliser()
    # Twice through the same normaliser: the cached domain must give the same answer.
    assert _outcome(fast.normalise, address) == _outcome(full_validation, address)
    assert _outcome(fast.normalise, address) == _outcome(full_validation, address)
    # The hot loop's shortcut, once the domain is cached: the same answer, or none.
    quick = fast.quick()(address)
    assert quick is None or quick == _outcome(full_validation, address)


@settings(max_examples=200, deadline=None)
@given(st.emails())
def test_generated_valid_addresses_agree(address: str) -> None:
    assert _outcome(EmailNormaliser().normalise, address) == _outcome(full_validation, address)


@pytest.mark.parametrize(
    ("raw", "stored", "key"),
    [
        ("  Ana@Example.COM ", "Ana@example.com", "ana@example.com"),
        ("INFO@shop.fr", "info@shop.fr", "info@shop.fr"),
        ("jörg@BÜCHER.de", "jörg@bücher.de", "jörg@bücher.de"),
        ("bob@xn--bcher-kva.de", "bob@bücher.de", "bob@bücher.de"),
        ("j\u006f\u0308rg@example.com", "j\u00f6rg@example.com", "j\u00f6rg@example.com"),
    ],
)
def test_normalised_form_and_key(raw: str, stored: str, key: str) -> None:
    assert EmailNormaliser().normalise(clean_address(raw)) == (stored, key)
    assert email_key(stored) == key


@pytest.mark.parametrize(
    "raw", ["", "plainaddress", "a@b", "a..b@example.com", "a b@example.com", "a@x.test", "@x.org"]
)
def test_invalid_addresses_say_why(raw: str) -> None:
    with pytest.raises(InvalidEmail) as caught:
        EmailNormaliser().normalise(clean_address(raw))
    assert str(caught.value)


def test_the_shortcut_answers_for_cached_domains_only() -> None:
    normaliser = EmailNormaliser()
    quick = normaliser.quick()
    assert quick("Ann.Lee@Example.COM") is None  # domain not seen yet
    assert normaliser.normalise("Ann.Lee@Example.COM") == (
        "Ann.Lee@example.com",
        "ann.lee@example.com",
    )
    assert quick("Bo@Example.COM") == ("Bo@example.com", "bo@example.com")
    assert quick("Postmaster@Example.COM") == ("postmaster@example.com", "postmaster@example.com")
    assert quick('"quoted"@Example.COM') is None  # left to email-validator
