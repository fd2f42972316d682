"""Contacts screen: upload → detection → mapping → dry run → import; find a customer; tag,
unsubscribe, resubscribe with proof, delete."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from admin_support import button, errors, submit, texts
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dealmail.config import Settings
from dealmail.contacts.consent import is_suppressed
from dealmail.contacts.queries import counts_by_status, customer_by_email
from dealmail.errors import NotFound

Open = Callable[[str], AppTest]
Reading = Callable[[], AbstractContextManager[Session]]

# Windows-1252, semicolons, a German header, one bad address.
CSV = (
    "E-Mail;Vorname;Nachname;Stadt\r\n"
    "anna@example.com;Anna;Müller;Köln\r\n"
    "ben@example.com;Ben;Schmidt;Bonn\r\n"
    "not-an-address;Carl;Meier;Bonn\r\n"
).encode("cp1252")


def _upload(at: AppTest, content: bytes = CSV, name: str = "kunden.csv") -> AppTest:
    at.file_uploader(key="contacts_file:0").upload(name, content, "text/csv")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_detect_dry_run_then_import(open_page: Open, reading: Reading, settings: Settings) -> None:
    at = _upload(open_page("contacts.py"))
    uploads = settings.resolved_data_dir / "uploads"
    assert [p.name for p in uploads.glob("*/*")] == ["kunden.csv"]
    shown = texts(at)
    assert "encoding **cp1252**" in shown
    assert "delimiter **semicolon**" in shown
    assert at.selectbox(key=next(k for k in _keys(at) if k.startswith("map_email_"))).value == (
        "E-Mail"
    )
    assert "Kept as customer attributes: Stadt" in shown
    assert button(at, "Import").disabled  # a dry run comes first
    submit(at, "Dry run (changes nothing)")
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Rows"], metrics["New"], metrics["Invalid"]) == ("3", "2", "1")
    invalid = at.dataframe[0].value
    assert list(invalid["line"]) == [4]
    with reading() as session:
        assert counts_by_status(session) == {}  # the dry run wrote nothing
    submit(at, "Import")
    assert "Imported: 2 new, 0 updated, 1 invalid rows." in texts(at)
    assert not list(uploads.glob("*/*"))  # the uploaded file is gone once imported
    assert at.file_uploader(key="contacts_file:1").value is None
    with reading() as session:
        anna = customer_by_email(session, "anna@example.com")
    assert (anna.first_name, anna.last_name, anna.attributes) == (
        "Anna",
        "Müller",
        {"Stadt": "Köln"},
    )
    assert anna.consent_source == "import:kunden.csv"


def _keys(at: AppTest) -> list[str]:
    return [s.key for s in at.selectbox if s.key]


def test_changing_the_mapping_and_tags(open_page: Open, reading: Reading) -> None:
    at = _upload(open_page("contacts.py"))
    last_name = next(k for k in _keys(at) if k.startswith("map_last_name_"))
    at.selectbox(key=last_name).set_value("Stadt")
    at.text_input(key="import_tags").input("from-shop, vip")
    at.run()
    assert "Kept as customer attributes: Nachname" in texts(at)
    submit(at, "Dry run (changes nothing)")
    submit(at, "Import")
    with reading() as session:
        ben = customer_by_email(session, "ben@example.com")
    assert (ben.last_name, ben.tags) == ("Bonn", ["from-shop", "vip"])


def test_a_file_without_addresses_is_refused(open_page: Open) -> None:
    at = _upload(open_page("contacts.py"), b"name,city\nAnna,Paris\n", "names.csv")
    assert len(errors(at)) == 1
    assert "email" in errors(at)[0].lower()
    assert not [b for b in at.button if b.label.startswith("Dry run")]


@pytest.fixture
def imported(open_page: Open) -> AppTest:
    at = _upload(open_page("contacts.py"))
    submit(at, "Dry run (changes nothing)")
    return submit(at, "Import")


def test_find_a_customer_and_act(imported: AppTest, reading: Reading) -> None:
    at = imported
    at.text_input(key="customer_search").input("anna")
    at.run()
    assert "1 customers match." in texts(at)
    [opened] = [s for s in at.selectbox if s.label == "Open a customer"]
    assert opened.value == "anna@example.com"
    assert "Name: **Anna Müller**" in texts(at)
    history = at.dataframe[1].value  # after the search results; no coupon yet
    assert list(history["what"]) == ["import"]
    at.text_input(key="customer_add_tag").input("regular")
    submit(at, "Tag")
    assert "Tagged 'regular'." in texts(at)
    assert "tags: regular" in texts(at)
    submit(at, "Remove tag")
    assert "Tag 'regular' removed." in texts(at)
    at.text_input(key="customer_add_tag").input("   ")
    submit(at, "Tag")
    assert errors(at) == ["a tag needs a name"]
    submit(at, "Unsubscribe")
    assert "anna@example.com unsubscribed." in texts(at)
    with reading() as session:
        assert customer_by_email(session, "anna@example.com").status == "unsubscribed"
    submit(at, "Resubscribe")
    assert errors(at) == ["resubscribing needs the source of the new consent"]
    at.text_input(key="resub_source").input("paper form at the till, 2026-11-28")
    submit(at, "Resubscribe")
    assert "anna@example.com resubscribed." in texts(at)
    submit(at, "Delete customer")
    assert errors(at) == ["Tick the box to confirm."]
    at.checkbox(key="delete_sure").check()
    submit(at, "Delete customer")
    assert "anna@example.com deleted." in texts(at)
    with reading() as session:
        with pytest.raises(NotFound):
            customer_by_email(session, "anna@example.com")
        assert is_suppressed(session, "anna@example.com")
