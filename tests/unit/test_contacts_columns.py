"""Column mapping, consent words, opt-in times and tag lists (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dealmail.contacts.columns import (
    Consent,
    consent_of,
    map_columns,
    normalise_header,
    parse_overrides,
    parse_time,
    split_tags,
)
from dealmail.errors import InvalidInput

NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            [
                "Email Address",
                "First Name",
                "Last Name",
                "Phone Number",
                "OPTIN_TIME",
                "CONFIRM_TIME",
            ],
            {
                "email": [0],
                "first_name": [1],
                "last_name": [2],
                "phone": [3],
                "opt_in_time": [4, 5],
            },
        ),
        (
            [
                "First Name",
                "Last Name",
                "Email",
                "Accepts Email Marketing",
                "Default Address Phone",
                "Phone",
                "Tags",
            ],
            {
                "email": [2],
                "first_name": [0],
                "last_name": [1],
                "consent": [3],
                "phone": [5],
                "tags": [6],
            },
        ),
        (
            ["Vorname", "Nachname", "E-Mail-Adresse", "Telefon"],
            {"email": [2], "first_name": [0], "last_name": [1], "phone": [3]},
        ),
        (
            ["Prénom", "Nom", "Adresse e-mail", "Téléphone"],
            {"email": [2], "first_name": [0], "last_name": [1], "phone": [3]},
        ),
        (["Email Address", "Email Subscription Status"], {"email": [0], "consent": [1]}),
        (["e-mail", "UNSUB_TIME"], {"email": [0], "unsubscribed_at": [1]}),
    ],
)
def test_headers_of_real_exports(header: list[str], expected: dict[str, list[int]]) -> None:
    mapped = map_columns(header)
    assert {k: list(v) for k, v in mapped.fields.items()} == expected
    assert [i for i, _name in mapped.attributes] == [
        i for i in range(len(header)) if all(i not in v for v in expected.values())
    ]


def test_overrides_and_duplicate_attribute_names() -> None:
    overrides = parse_overrides(["first_name=Rufname", "status=", "E-MAIL=Kontakt"])
    assert overrides == {"first_name": "Rufname", "consent": None, "email": "Kontakt"}
    mapped = map_columns(["Kontakt", "Rufname", "Status", "x", "x"], overrides)
    assert mapped.fields == {"email": (0,), "first_name": (1,)}
    assert mapped.attributes == ((2, "Status"), (3, "x"), (4, "x_2"))
    with pytest.raises(InvalidInput):
        parse_overrides(["colour=red"])
    with pytest.raises(InvalidInput):
        parse_overrides(["email"])
    with pytest.raises(InvalidInput):
        map_columns(["a"], {"email": "b"})


def test_header_normalisation() -> None:
    assert normalise_header(" E-Mail-Adresse ") == "emailadresse"
    assert normalise_header("Prénom") == "prenom"
    assert normalise_header("OPTIN_TIME") == "optintime"


@pytest.mark.parametrize(
    ("value", "consent"),
    [
        ("yes", Consent.OPT_IN),
        ("Subscribed", Consent.OPT_IN),
        ("ja", Consent.OPT_IN),
        ("TRUE", Consent.OPT_IN),
        ("no", Consent.NONE),
        ("", Consent.NONE),
        ("pending", Consent.NONE),
        ("Gold member", Consent.NONE),
        ("Unsubscribed", Consent.UNSUBSCRIBE),
        ("opted out", Consent.UNSUBSCRIBE),
        ("cleaned", Consent.BOUNCE),
        ("complained", Consent.COMPLAINT),
    ],
)
def test_consent_words(value: str, consent: Consent) -> None:
    assert consent_of(value) is consent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-03-04 10:11:12", datetime(2021, 3, 4, 10, 11, 12, tzinfo=UTC)),
        ("2021-03-04T10:11:12Z", datetime(2021, 3, 4, 10, 11, 12, tzinfo=UTC)),
        ("2021-03-04T12:11:12+02:00", datetime(2021, 3, 4, 10, 11, 12, tzinfo=UTC)),
        ("2021-03-04 10:11:12 -0400", datetime(2021, 3, 4, 14, 11, 12, tzinfo=UTC)),
        ("04.05.2023", datetime(2023, 5, 4, tzinfo=UTC)),
        ("13/02/2024", datetime(2024, 2, 13, tzinfo=UTC)),
        ("02/13/2024", datetime(2024, 2, 13, tzinfo=UTC)),
        ("2030-01-01", None),
        ("soon", None),
        ("", None),
    ],
)
def test_opt_in_times(value: str, expected: datetime | None) -> None:
    assert parse_time(value, not_after=NOW) == expected


def test_tag_lists() -> None:
    assert split_tags('"VIP","Newsletter"') == ["VIP", "Newsletter"]
    assert split_tags("vip, regulars;  big   spender ") == ["vip", "regulars", "big spender"]
    assert split_tags(" , ;") == []
    assert split_tags("x" * 150) == ["x" * 100]
