"""Remembered-login tokens: signed, purpose-bound, expiring; anything else reads as no login."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dealmail.login_tokens import LIFETIMES, SESSION, TICKET, Login, issue, read

SECRET = b"k" * 48
AT = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_token_reads_back_as_its_login_to_the_microsecond() -> None:
    token = issue(SECRET, SESSION, Login("owner", AT))
    assert read(SECRET, SESSION, token, AT + timedelta(hours=1)) == Login("owner", AT)


@pytest.mark.parametrize("purpose", [TICKET, SESSION])
def test_a_token_expires_after_its_lifetime(purpose: str) -> None:
    token = issue(SECRET, purpose, Login("owner", AT))
    lifetime = LIFETIMES[purpose]
    assert read(SECRET, purpose, token, AT + lifetime - timedelta(seconds=1)) is not None
    assert read(SECRET, purpose, token, AT + lifetime) is None
    assert read(SECRET, purpose, token, AT - timedelta(seconds=1)) is None  # not yet issued


def test_a_ticket_is_not_a_session_nor_the_other_way_round() -> None:
    ticket = issue(SECRET, TICKET, Login("owner", AT))
    session = issue(SECRET, SESSION, Login("owner", AT))
    assert read(SECRET, SESSION, ticket, AT) is None
    assert read(SECRET, TICKET, session, AT) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "WyJvd25lciIsMV0.invalid-signature",
        issue(b"another-secret" * 4, SESSION, Login("owner", AT)),
    ],
)
def test_forged_or_foreign_tokens_read_as_no_login(token: str) -> None:
    assert read(SECRET, SESSION, token, AT) is None


def test_a_tampered_token_reads_as_no_login() -> None:
    token = issue(SECRET, SESSION, Login("owner", AT))
    payload, signature = token.rsplit(".", 1)
    other = issue(SECRET, SESSION, Login("admin", AT)).rsplit(".", 1)[0]
    assert read(SECRET, SESSION, f"{other}.{signature}", AT) is None
    assert read(SECRET, SESSION, f"{payload}.{signature[:-2]}xx", AT) is None
