"""Settings screen: shop identity, limits, backend choice, DKIM key and record, send a test."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from admin_support import PASSWORD, errors, submit, texts
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dealmail import accounts
from dealmail.admin.remember import SESSION_PATH
from dealmail.campaigns.service import CampaignInput, create_campaign
from dealmail.config import Settings, reset_settings_cache
from dealmail.errors import DomainError
from dealmail.shop import get_shop_settings, set_settings

Open = Callable[[str], AppTest]
Reading = Callable[[], AbstractContextManager[Session]]


def test_save_shop_identity(open_page: Open, reading: Reading) -> None:
    at = open_page("settings.py")
    at.text_input(key="set_shop_name").input("Corner Bakery")
    at.text_input(key="set_sender_email").input("Hello@Bakery.Example")
    at.text_area(key="set_postal_address").input("1 Main St, Springfield")
    at.text_input(key="set_timezone").input("Europe/Paris")
    submit(at, "Save")
    assert "Settings saved." in texts(at)
    with reading() as session:
        shop = get_shop_settings(session)
    assert (shop.shop_name, shop.sender_email, shop.timezone) == (
        "Corner Bakery",
        "Hello@bakery.example",
        "Europe/Paris",
    )
    assert shop.postal_address == "1 Main St, Springfield"


def test_bad_settings_are_refused(open_page: Open, reading: Reading) -> None:
    at = open_page("settings.py")
    at.text_input(key="set_timezone").input("Moon/Base")
    submit(at, "Save")
    assert errors(at) == [
        "timezone: Value error, unknown time zone 'Moon/Base' (try Europe/London)"
    ]
    at.text_input(key="set_timezone").input("UTC")
    at.text_input(key="set_public_url").input("shop.example")
    submit(at, "Save")
    assert errors(at)[0].startswith("public_url:")
    with reading() as session:
        assert get_shop_settings(session).public_url == "http://127.0.0.1:8000"


def test_limits_and_backend(open_page: Open, reading: Reading) -> None:
    at = open_page("settings.py")
    at.number_input(key="set_rate_per_second").set_value(5.0)
    at.number_input(key="set_rate_per_day").set_value(2000)
    submit(at, "Save limits")
    assert "Limits saved." in texts(at)
    at.selectbox(key="set_email_backend").set_value("file")
    submit(at, "Save backend")
    assert "Now sending through **file**." in texts(at)
    with reading() as session:
        shop = get_shop_settings(session)
    assert (shop.rate_per_second, shop.rate_per_day, shop.email_backend) == (5.0, 2000, "file")


def test_dkim_key_and_dns_record(open_page: Open, settings: Settings) -> None:
    at = open_page("settings.py")
    assert "Signing is off." in texts(at)
    at.text_input(key="dkim_selector").input("bad selector!")
    submit(at, "Generate key")
    assert errors(at) == ["A selector is letters, digits and -."]
    at.text_input(key="dkim_selector").input("dm2026")
    submit(at, "Generate key")
    assert (settings.resolved_data_dir / "dkim" / "dm2026.pem").exists()
    [record] = [c.value for c in at.code if "_domainkey" in c.value]
    assert record.startswith("dm2026._domainkey.<your domain>. IN TXT")
    assert '"v=DKIM1; k=rsa; p=' in record
    submit(at, "Generate key")
    assert "exists" in errors(at)[0]


def test_send_a_test_needs_a_campaign(open_page: Open) -> None:
    at = open_page("settings.py")
    at.text_input(key="bt_to").input("me@example.com")
    submit(at, "Send a test")
    assert errors(at) == ["Create a campaign first: the test sends its email."]


def test_send_a_test_through_the_backend(
    open_page: Open, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("DEALMAIL_EMAIL_BACKEND", "file")
    monkeypatch.setenv("DEALMAIL_FILE_BACKEND_DIR", str(outbox))
    reset_settings_cache()
    set_settings(session, {"postal_address": "1 Main St", "sender_email": "shop@example.com"})
    create_campaign(session, "Hello", CampaignInput(subject="Hello from the shop"))
    session.close()
    at = open_page("settings.py")
    at.text_input(key="bt_to").input("owner@example.com")
    submit(at, "Send a test")
    assert "Sent to owner@example.com through file" in texts(at)
    [sent] = list(outbox.glob("*.eml"))
    assert b"Hello from the shop" in sent.read_bytes()
    at.text_input(key="bt_to").input("nobody")
    submit(at, "Send a test")
    assert errors(at)[0].startswith("--to:")


def test_change_own_password(open_page: Open, reading: Reading) -> None:
    at = open_page("settings.py")
    fresh = "a-brand-new-passphrase"
    _change_password(at, PASSWORD, fresh, f"{fresh}-typo")
    assert errors(at) == ["The two new passwords differ."]
    _change_password(at, "not-the-password", fresh, fresh)
    assert errors(at) == ["the current password is wrong"]
    _change_password(at, PASSWORD, fresh, fresh)
    assert "Password changed." in texts(at)
    # The change revoked remembered logins; this browser is handed a ticket for a new one.
    assert [SESSION_PATH in str(element.proto.body) for element in at.get("html")] == [True]
    with reading() as session:
        assert accounts.authenticate(session, "owner", fresh)
        with pytest.raises(DomainError):
            accounts.authenticate(session, "owner", PASSWORD)


def _change_password(at: AppTest, current: str, new: str, again: str) -> None:
    at.text_input(key="pw_current").input(current)
    at.text_input(key="pw_new").input(new)
    at.text_input(key="pw_repeat").input(again)
    submit(at, "Change password")
