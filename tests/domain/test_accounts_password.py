"""Changing and resetting an admin's password, by service and by CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dealmail import accounts
from dealmail.cli import app
from dealmail.config import Settings
from dealmail.errors import DomainError, InvalidInput, NotFound
from dealmail.models import AdminUser, utcnow

runner = CliRunner()
OLD = "correct-horse-battery"
NEW = "staple-and-lantern-42"


def _refused(session: Session, username: str, password: str) -> str:
    with pytest.raises(DomainError) as caught:
        accounts.authenticate(session, username, password)
    return caught.value.code


def test_change_password_needs_the_current_one_and_replaces_it(session: Session) -> None:
    accounts.add_user(session, "erin", OLD)
    with pytest.raises(DomainError) as wrong:
        accounts.change_password(session, "erin", "not-my-password", NEW)
    assert wrong.value.code == "wrong_password"
    assert accounts.authenticate(session, "erin", OLD).username == "erin"  # unchanged

    accounts.change_password(session, "erin", OLD, NEW)
    assert _refused(session, "erin", OLD) == "bad_credentials"
    assert accounts.authenticate(session, "erin", NEW).username == "erin"


@pytest.mark.parametrize(("new", "code"), [("short", "weak_password"), (OLD, "same_password")])
def test_change_password_refuses_a_weak_or_unchanged_password(
    session: Session, new: str, code: str
) -> None:
    accounts.add_user(session, "finn", OLD)
    with pytest.raises(InvalidInput) as caught:
        accounts.change_password(session, "finn", OLD, new)
    assert caught.value.code == code
    assert accounts.authenticate(session, "finn", OLD).username == "finn"


def test_wrong_current_passwords_are_throttled_like_logins(session: Session) -> None:
    accounts.add_user(session, "gus", OLD)
    now = utcnow()
    for _ in range(accounts.FREE_FAILURES):
        with pytest.raises(DomainError):
            accounts.change_password(session, "gus", "guess-guess-guess", NEW, now=now)
    with pytest.raises(DomainError) as throttled:
        accounts.change_password(session, "gus", OLD, NEW, now=now)
    assert throttled.value.code == "login_throttled"


def test_reset_password_generates_one_and_lifts_a_lock(session: Session) -> None:
    accounts.add_user(session, "hana", OLD)
    for _ in range(accounts.FREE_FAILURES + 2):
        _refused(session, "hana", "wrong")
    assert _refused(session, "hana", OLD) == "login_throttled"

    reset = accounts.reset_password(session, "hana")
    assert reset.generated
    assert len(reset.password) >= accounts.MIN_PASSWORD_LENGTH
    assert accounts.authenticate(session, "hana", reset.password).username == "hana"
    user = session.query(AdminUser).filter_by(username="hana").one()
    assert (user.failed_logins, user.locked_until) == (0, None)


def test_reset_password_rules(session: Session) -> None:
    with pytest.raises(NotFound):
        accounts.reset_password(session, "nobody")
    accounts.add_user(session, "ivy", OLD)
    with pytest.raises(InvalidInput):
        accounts.reset_password(session, "ivy", "short")
    assert accounts.reset_password(session, "ivy", NEW).generated is False
    assert accounts.authenticate(session, "ivy", NEW).username == "ivy"


def test_users_passwd_prints_a_new_password_once(settings: Settings, session: Session) -> None:
    runner.invoke(app, ["init"])
    accounts.add_user(session, "jo", OLD)
    result = runner.invoke(app, ["users", "passwd", "jo"])
    assert result.exit_code == 0, result.output
    found = re.search(r"password \(shown once\): (\S+)", result.output)
    assert found is not None, result.output
    session.expire_all()
    assert accounts.authenticate(session, "jo", found.group(1)).username == "jo"

    typed = runner.invoke(app, ["users", "passwd", "jo", "--password"], input=f"{NEW}\n{NEW}\n")
    assert typed.exit_code == 0, typed.output
    assert "shown once" not in typed.output
    session.expire_all()
    assert accounts.authenticate(session, "jo", NEW).username == "jo"

    unknown = runner.invoke(app, ["users", "passwd", "nobody"])
    assert unknown.exit_code == 2
    assert "[user_not_found]" in unknown.output
