"""Segments screen (rules with a live count, save, delete) and the Inbox screen."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from email.message import EmailMessage

from admin_support import errors, submit, texts
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dealmail.config import Settings
from dealmail.contacts.segments import list_segments
from dealmail.contacts.service import tag_customers
from dealmail.delivery.devinbox import store
from dealmail.models import Customer

Open = Callable[[str], AppTest]
Reading = Callable[[], AbstractContextManager[Session]]


def _customers(session: Session) -> None:
    session.add_all(
        [Customer(email=f"p{i}@example.com", email_key=f"p{i}@example.com") for i in range(5)]
    )
    session.commit()
    tag_customers(session, "vip", emails=["p0@example.com", "p1@example.com"])
    tag_customers(session, "local", emails=["p1@example.com", "p2@example.com"])
    session.close()


def _counts(at: AppTest) -> tuple[str, str]:
    shown = {m.label: m.value for m in at.metric}
    return shown["Customers matching"], shown["Of whom a campaign would reach"]


def test_live_count_then_save_and_delete(
    open_page: Open, session: Session, reading: Reading
) -> None:
    _customers(session)
    at = open_page("segments.py")
    assert _counts(at) == ("5", "5")
    at.multiselect(key="seg_tags_any").set_value(["vip"])
    at.run()
    assert _counts(at) == ("2", "2")
    at.multiselect(key="seg_tags_none").set_value(["local"])
    at.run()
    assert _counts(at) == ("1", "1")
    at.text_input(key="seg_name").input("vip-not-local")
    submit(at, "Save segment")
    assert "Segment 'vip-not-local' saved." in texts(at)
    with reading() as check:
        [saved] = list_segments(check)
    assert (saved.rules, saved.members) == ({"tags_any": ["vip"], "tags_none": ["local"]}, 1)
    at.text_input(key="seg_name").input("vip-not-local")
    submit(at, "Save segment")
    assert errors(at) == ["a segment named 'vip-not-local' exists"]
    # Loading it back fills the builder; widening it and saving replaces it.
    at.multiselect(key="seg_tags_any").set_value([])
    at.multiselect(key="seg_tags_none").set_value([])
    at.run()
    assert _counts(at) == ("5", "5")
    submit(at, "Load its rules")
    assert at.multiselect(key="seg_tags_any").value == ["vip"]
    assert at.multiselect(key="seg_tags_none").value == ["local"]
    assert _counts(at) == ("1", "1")
    at.multiselect(key="seg_tags_none").set_value([])
    submit(at, "Save segment")
    assert "Segment 'vip-not-local' saved." in texts(at)
    with reading() as check:
        assert [s.members for s in list_segments(check)] == [2]
    submit(at, "Delete segment")
    assert errors(at) == ["Tick the box to confirm."]
    at.checkbox(key="seg_delete_sure").check()
    submit(at, "Delete segment")
    assert "Segment deleted." in texts(at)


def test_unnamed_segment_is_refused(open_page: Open) -> None:
    at = open_page("segments.py")
    submit(at, "Save segment")
    assert errors(at) == ["a segment needs a name of 1 to 100 characters"]


def test_inbox_lists_and_renders_a_message(open_page: Open, settings: Settings) -> None:
    at = open_page("inbox.py")
    assert "No email yet." in texts(at)
    mail = EmailMessage()
    mail["Subject"] = "Your spring deal"
    mail["From"] = "shop@example.com"
    mail["To"] = "anna@example.com"
    mail.set_content("Hello Anna")
    mail.add_alternative("<p>Hello <b>Anna</b></p>", subtype="html")
    store(settings, "shop@example.com", ["anna@example.com"], mail.as_bytes())
    submit(at, "Refresh")
    rows = at.dataframe[0].value
    assert list(rows["subject"]) == ["Your spring deal"]
    assert at.selectbox(key="inbox_message").value is not None
    assert "**Your spring deal** — to anna@example.com" in texts(at)
    assert [c.value for c in at.code] == ["Hello Anna"]
