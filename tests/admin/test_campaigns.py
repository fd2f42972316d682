"""Campaigns screen: create and edit, preview, checklist, test send, send now or schedule,
pause / resume / cancel, progress."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, time
from pathlib import Path

import pytest
from admin_support import errors, submit, texts
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dealmail.campaigns.service import describe_campaign, get_campaign
from dealmail.config import reset_settings_cache
from dealmail.deals.service import DealInput, create_deal
from dealmail.models import Customer
from dealmail.shop import set_settings

Open = Callable[[str], AppTest]
Reading = Callable[[], AbstractContextManager[Session]]


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Test sends go to .eml files (the `file` backend)."""
    folder = tmp_path / "outbox"
    monkeypatch.setenv("DEALMAIL_EMAIL_BACKEND", "file")
    monkeypatch.setenv("DEALMAIL_FILE_BACKEND_DIR", str(folder))
    reset_settings_cache()
    return folder


@pytest.fixture
def shop(session: Session, outbox: Path) -> None:
    set_settings(
        session,
        {"postal_address": "1 Main St", "sender_email": "shop@example.com", "timezone": "UTC"},
    )
    create_deal(session, DealInput(name="spring", kind="percent_off", value="10", title="10% off"))
    session.add_all(
        [Customer(email=f"c{i}@example.com", email_key=f"c{i}@example.com") for i in range(3)]
    )
    session.commit()
    session.close()


def _create(at: AppTest, name: str = "Spring sale", subject: str = "Spring is here") -> AppTest:
    at.text_input(key="c_name").input(name)
    at.text_input(key="c_subject").input(subject)
    at.selectbox(key="c_deal").set_value("spring")
    at.text_input(key="c_heading").input("Hello {{ first_name | default('there') }}")
    at.text_area(key="c_body").input("Ten percent off **everything**.")
    return submit(at, "Create campaign")


def test_create_then_edit(open_page: Open, shop: None, reading: Reading) -> None:
    at = _create(open_page("campaigns.py"))
    assert "Campaign 'Spring sale' created." in texts(at)
    assert at.selectbox(key="campaign_choice").value == "Spring sale"
    assert "Status: **draft**" in texts(at)
    at.text_input(key="c_subject:Spring sale").input("Spring is really here")
    submit(at, "Save changes")
    assert "Saved." in texts(at)
    with reading() as session:
        described = describe_campaign(session, get_campaign(session, "Spring sale"))
    assert (described["subject"], described["deal"], described["template"]) == (
        "Spring is really here",
        "spring",
        "classic",
    )


def test_create_errors(open_page: Open, shop: None) -> None:
    at = _create(open_page("campaigns.py"), subject="")
    assert errors(at) == ["a campaign needs a subject"]
    at = _create(at, name="  ")
    assert "a campaign name is 1-100 letters" in errors(at)[0]
    at.selectbox(key="campaign_choice").set_value("➕ New campaign")
    at = _create(at)
    at.selectbox(key="campaign_choice").set_value("➕ New campaign")
    at.run()
    at = _create(at)
    assert errors(at) == ["a campaign named 'Spring sale' already exists"]


def test_custom_html_without_unsubscribe_is_refused(open_page: Open, shop: None) -> None:
    at = open_page("campaigns.py")
    at.text_input(key="c_name").input("Custom")
    at.text_input(key="c_subject").input("Hi")
    at.selectbox(key="c_template").set_value("Custom HTML")
    at.text_area(key="c_html").input("<p>Hello {{ first_name }}</p>")
    submit(at, "Create campaign")
    assert "unsubscribe" in errors(at)[0]


def test_checklist_preview_and_test_send(
    open_page: Open, shop: None, session: Session, outbox: Path
) -> None:
    at = _create(open_page("campaigns.py"))
    assert "Audience: **3** subscribed customers." in texts(at)
    assert "Ready to send." in texts(at)
    at.text_input(key="preview_customer:Spring sale").input("nobody@example.com")
    at.run()
    assert errors(at) == ["no customer with address 'nobody@example.com'"]
    at.text_input(key="preview_customer:Spring sale").input("c1@example.com")
    at.run()
    assert not errors(at)
    at.text_input(key="test_to:Spring sale").input("not an address")
    submit(at, "Send test")
    assert errors(at)[0].startswith("--to:")
    at.text_input(key="test_to:Spring sale").input("owner@example.com")
    submit(at, "Send test")
    assert "Test sent to owner@example.com through file." in texts(at)
    [sent] = list(outbox.glob("*.eml"))
    assert b"Spring is here" in sent.read_bytes()


def test_missing_postal_address_blocks_sending(
    open_page: Open, shop: None, session: Session
) -> None:
    set_settings(session, {"postal_address": None})
    session.close()
    at = _create(open_page("campaigns.py"))
    assert any("no postal address" in e for e in errors(at))
    assert next(b for b in at.button if b.label == "Send").disabled


def test_send_now_pause_resume_cancel(open_page: Open, shop: None, reading: Reading) -> None:
    at = _create(open_page("campaigns.py"))
    submit(at, "Send")
    assert errors(at) == ["Tick the box to confirm: sending cannot be undone."]
    at.checkbox(key="send_sure:Spring sale").check()
    submit(at, "Send")
    assert "Sending started." in texts(at)
    assert "Status: **sending**" in texts(at)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Queued"] == "3"
    submit(at, "Pause")
    assert "Status: **paused**" in texts(at)
    submit(at, "Resume")
    assert "Status: **sending**" in texts(at)
    assert next(b for b in at.button if b.label == "Cancel campaign").disabled
    at.checkbox(key="cancel_sure:Spring sale").check()
    at.run()
    submit(at, "Cancel campaign")
    assert "Status: **cancelled**" in texts(at)
    with reading() as session:
        described = describe_campaign(session, get_campaign(session, "Spring sale"))
    assert described["messages"] == {"skipped": 3}


def test_schedule_for_later(open_page: Open, shop: None, reading: Reading) -> None:
    at = _create(open_page("campaigns.py"))
    at.radio(key="send_when:Spring sale").set_value("At a time")
    next_year = date.today().year + 1
    at.date_input(key="send_day:Spring sale").set_value(date(next_year, 1, 1))
    at.time_input(key="send_time:Spring sale").set_value(time(9, 30))
    at.checkbox(key="send_sure:Spring sale").check()
    submit(at, "Send")
    assert "Scheduled." in texts(at)
    assert f"Scheduled for {next_year}-01-01 09:30" in texts(at)
    with reading() as session:
        assert get_campaign(session, "Spring sale").status == "scheduled"


def test_each_campaign_shows_its_own_values(open_page: Open, shop: None) -> None:
    at = _create(open_page("campaigns.py"), name="First", subject="First subject")
    at.selectbox(key="campaign_choice").set_value("➕ New campaign")
    at.run()
    at = _create(at, name="Second", subject="Second subject")
    assert at.text_input(key="c_subject:Second").value == "Second subject"
    at.checkbox(key="send_sure:Second").check()
    at.selectbox(key="campaign_choice").set_value("First")
    at.run()
    assert at.text_input(key="c_subject:First").value == "First subject"
    assert not at.checkbox(key="send_sure:First").value
