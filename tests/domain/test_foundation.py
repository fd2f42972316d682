"""init, admin users, shop settings and the CLI's error contract, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dealmail import accounts, shop
from dealmail.bootstrap import initialise
from dealmail.cli import app
from dealmail.config import Settings
from dealmail.errors import AlreadyExists, DomainError, InvalidInput
from dealmail.models import AdminUser, utcnow

runner = CliRunner()


def test_init_is_idempotent_and_prints_the_password_once(settings: Settings) -> None:
    first = runner.invoke(app, ["init"])
    assert first.exit_code == 0, first.output
    assert "password (shown once)" in first.output
    second = runner.invoke(app, ["init"])
    assert second.exit_code == 0, second.output
    assert "password" not in second.output


def test_init_refuses_a_placeholder_secret(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALMAIL_SECRET_KEY", "changeme")
    from dealmail.config import reset_settings_cache

    reset_settings_cache()
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 2
    assert "placeholder" in result.output
    assert "Traceback" not in result.output


def test_initialise_creates_first_admin_who_can_log_in(
    settings: Settings, session: Session
) -> None:
    result = initialise(settings)
    assert result.admin_username == "admin"
    assert result.admin_password
    user = accounts.authenticate(session, "admin", result.admin_password)
    assert user.username == "admin"
    assert user.password_hash.startswith("$argon2")


def test_users_add_generates_and_refuses_duplicates(settings: Settings) -> None:
    runner.invoke(app, ["init"])
    result = runner.invoke(app, ["users", "add", "alice"])
    assert result.exit_code == 0, result.output
    assert "password (shown once)" in result.output
    again = runner.invoke(app, ["users", "add", "alice"])
    assert again.exit_code == 2
    assert again.output.strip().startswith("error:")
    assert "[user_exists]" in again.output


def test_users_add_with_typed_password(settings: Settings, session: Session) -> None:
    runner.invoke(app, ["init"])
    result = runner.invoke(
        app, ["users", "add", "bob", "--password"], input="a-long-password\na-long-password\n"
    )
    assert result.exit_code == 0, result.output
    assert accounts.authenticate(session, "bob", "a-long-password").username == "bob"


def test_failed_logins_slow_down(session: Session) -> None:
    accounts.add_user(session, "carol", "correct-horse-battery")
    now = utcnow()
    for _ in range(accounts.FREE_FAILURES):
        with pytest.raises(DomainError) as caught:
            accounts.authenticate(session, "carol", "wrong", now=now)
        assert caught.value.code == "bad_credentials"
    with pytest.raises(DomainError) as throttled:
        accounts.authenticate(session, "carol", "correct-horse-battery", now=now)
    assert throttled.value.code == "login_throttled"
    later = now + timedelta(minutes=20)
    assert accounts.authenticate(session, "carol", "correct-horse-battery", now=later)
    user = session.query(AdminUser).filter_by(username="carol").one()
    assert user.failed_logins == 0


def test_add_user_rules(session: Session) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user(session, "bad name!")
    with pytest.raises(InvalidInput):
        accounts.add_user(session, "dave", "short")
    accounts.add_user(session, "dave")
    with pytest.raises(AlreadyExists):
        accounts.add_user(session, "dave")


def test_shop_settings_validate_and_persist(session: Session) -> None:
    assert shop.get_shop_settings(session).timezone == "UTC"
    shop.set_settings(
        session,
        {
            "timezone": "Europe/Berlin",
            "public_url": "https://shop.example/",
            "sender_email": "A@Example.com",
        },
    )
    stored = shop.get_shop_settings(session)
    assert stored.timezone == "Europe/Berlin"
    assert stored.public_url == "https://shop.example"
    assert stored.sender_email == "A@example.com"
    for bad in ({"timezone": "Mars/Base"}, {"public_url": "ftp://x"}, {"nope": 1}):
        with pytest.raises(InvalidInput):
            shop.set_settings(session, bad)
    assert shop.get_shop_settings(session).timezone == "Europe/Berlin"


def test_settings_cli(settings: Settings) -> None:
    runner.invoke(app, ["init"])
    ok = runner.invoke(app, ["settings", "set", "postal_address", "1 High St, Springfield"])
    assert ok.exit_code == 0, ok.output
    shown = runner.invoke(app, ["settings", "show", "--json"])
    assert '"postal_address": "1 High St, Springfield"' in shown.output
    bad = runner.invoke(app, ["settings", "set", "timezone", "Nowhere"])
    assert bad.exit_code == 2
    assert "unknown time zone" in bad.output


def test_db_upgrade_and_current(settings: Settings) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "revision" in result.output
