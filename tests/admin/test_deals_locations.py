"""Deals and Locations & devices screens: forms, their refusals, the pairing QR, revoking."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date

from admin_support import errors, image_captions, submit, texts
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dealmail.deals.service import get_deal
from dealmail.locations.service import list_devices, list_locations
from dealmail.models import Location

Open = Callable[[str], AppTest]
Reading = Callable[[], AbstractContextManager[Session]]


def _new_deal(at: AppTest, name: str, kind: str, value: str, title: str) -> AppTest:
    at.text_input(key="deal_name").input(name)
    at.selectbox(key="deal_kind").set_value(kind)
    at.text_input(key="deal_value").input(value)
    at.text_input(key="deal_title").input(title)
    return at


def test_create_a_deal(open_page: Open, reading: Reading) -> None:
    at = open_page("deals.py")
    _new_deal(at, "spring-10", "percent_off", "10", "10% off everything")
    at.radio(key="deal_validity").set_value("N days after sending")
    at.number_input(key="deal_days").set_value(14)
    submit(at, "Create deal")
    assert "Deal 'spring-10' created." in texts(at)
    with reading() as session:
        deal = get_deal(session, "spring-10")
        assert (deal.kind, str(deal.value), deal.valid_days) == ("percent_off", "10.00", 14)
    rows = at.dataframe[0].value
    assert list(rows["offer"]) == ["10% off"]


def test_deal_errors_are_shown(open_page: Open) -> None:
    at = open_page("deals.py")
    _new_deal(at, "tenner", "amount_off", "10", "Ten off")
    submit(at, "Create deal")
    assert errors(at) == ["an amount_off deal needs --currency (e.g. EUR)"]
    at.text_input(key="deal_currency").input("EUR")
    submit(at, "Create deal")
    assert "Deal 'tenner' created." in texts(at)
    _new_deal(at, "tenner", "amount_off", "10", "Ten off")
    at.text_input(key="deal_currency").input("EUR")
    submit(at, "Create deal")
    assert errors(at) == ["a deal named 'tenner' already exists"]
    _new_deal(at, "dated", "free_item", "", "A free coffee")
    at.radio(key="deal_validity").set_value("Until a date")
    submit(at, "Create deal")
    assert errors(at) == ["Choose the last valid day."]


def test_deal_until_a_day_at_one_location(
    open_page: Open, session: Session, reading: Reading
) -> None:
    session.add(Location(name="Harbour", timezone="UTC"))
    session.commit()
    session.close()
    at = open_page("deals.py")
    _new_deal(at, "harbour-coffee", "free_item", "", "A free coffee")
    at.radio(key="deal_validity").set_value("Until a date")
    at.date_input(key="deal_until").set_value(date(date.today().year + 1, 3, 31))
    [places] = [m for m in at.multiselect if m.label.startswith("Valid only at")]
    places.set_value(["Harbour"])
    submit(at, "Create deal")
    assert "Deal 'harbour-coffee' created." in texts(at)
    assert list(at.dataframe[0].value["locations"]) == ["Harbour"]
    with reading() as check:
        deal = get_deal(check, "harbour-coffee")
        assert [place.name for place in deal.locations] == ["Harbour"]
        assert deal.valid_until is not None
        assert deal.valid_until.date() == date(date.today().year + 1, 3, 31)


def test_add_location_and_refuse_a_duplicate(open_page: Open, reading: Reading) -> None:
    at = open_page("locations.py")
    at.text_input(key="location_name").input("Main Street")
    at.text_input(key="location_timezone").input("Europe/Paris")
    submit(at, "Add location")
    assert "Location 'Main Street' added." in texts(at)
    with reading() as session:
        found = [(loc.name, loc.timezone) for loc in list_locations(session)]
    assert found == [("Main Street", "Europe/Paris")]
    at.text_input(key="location_name").input("Main Street")
    submit(at, "Add location")
    assert errors(at) == ["location 'Main Street' already exists"]
    at.text_input(key="location_name").input("Harbour")
    at.text_input(key="location_timezone").input("Mars/Olympus")
    submit(at, "Add location")
    assert "unknown time zone 'Mars/Olympus'" in errors(at)[0]


def test_pairing_qr_api_key_and_revoke(open_page: Open, reading: Reading) -> None:
    at = open_page("locations.py")
    submit(at, "Show pairing QR")
    assert errors(at) == ["Add a location first."]
    at.text_input(key="location_name").input("Main Street")
    submit(at, "Add location")
    submit(at, "Show pairing QR")
    [link] = [c.value for c in at.code if "/pair/" in c.value]
    assert link.startswith("http://127.0.0.1:8000/pair/")
    assert image_captions(at) == ["Pairs one phone with Main Street"]
    assert "Valid once, until" in texts(at)
    at.text_input(key="api_device_name").input("till-1")
    submit(at, "Create API key")
    assert any(c.value.startswith("dmk_") for c in at.code)
    with reading() as session:
        [device] = list_devices(session)
    assert (device.name, device.kind, device.revoked_at) == ("till-1", "api", None)
    submit(at, "Revoke")
    assert errors(at) == ["Tick the box to confirm."]
    at.checkbox(key="revoke_sure").check()
    submit(at, "Revoke")
    assert "Device revoked." in texts(at)
    with reading() as session:
        assert list_devices(session)[0].revoked_at is not None


def test_edit_a_deal(open_page: Open, reading: Reading) -> None:
    at = open_page("deals.py")
    assert "No deals to edit yet." in texts(at)
    _new_deal(at, "spring-10", "percent_off", "10", "10% off everything")
    at.radio(key="deal_validity").set_value("N days after sending")
    at.number_input(key="deal_days").set_value(14)
    submit(at, "Create deal")
    at.selectbox(key="deal_edit_choice").set_value("spring-10")
    assert at.text_input(key="edit_title:spring-10").value == "10% off everything"
    at.text_input(key="edit_title:spring-10").input("15% off all bread")
    at.text_input(key="edit_value:spring-10").input("15")
    at.number_input(key="edit_days:spring-10").set_value(21)
    at.text_area(key="edit_terms:spring-10").input("One per visit")
    submit(at, "Save deal")
    assert "Deal 'spring-10' saved." in texts(at)
    assert list(at.dataframe[0].value["offer"]) == ["15% off"]
    with reading() as session:
        deal = get_deal(session, "spring-10")
        assert (deal.title, str(deal.value), deal.valid_days, deal.terms) == (
            "15% off all bread",
            "15.00",
            21,
            "One per visit",
        )


def test_deal_edit_errors_are_shown(open_page: Open, session: Session, reading: Reading) -> None:
    from dealmail.deals.service import DealInput, create_deal
    from dealmail.models import Campaign

    deal = create_deal(
        session,
        DealInput(name="tenner", kind="amount_off", title="Ten off", value="10", currency="EUR"),
    )
    session.add(Campaign(name="sent-one", subject="Hi", status="sent", deal_id=deal.id))
    session.commit()
    session.close()
    at = open_page("deals.py")
    at.selectbox(key="deal_edit_choice").set_value("tenner")
    at.text_input(key="edit_title:tenner").input(" ")
    submit(at, "Save deal")
    assert errors(at) == ["a deal needs a title"]
    at.text_input(key="edit_title:tenner").input("Ten euros off")
    at.text_input(key="edit_value:tenner").input("20")
    submit(at, "Save deal")
    assert errors(at) == ["deal 'tenner' is already on issued coupons; cannot change value"]
    at.text_input(key="edit_value:tenner").input("10")
    at.radio(key="edit_validity:tenner").set_value("Until a date")
    submit(at, "Save deal")
    assert errors(at) == ["Choose the last valid day."]
    at.radio(key="edit_validity:tenner").set_value("No end date")
    submit(at, "Save deal")
    assert "Deal 'tenner' saved." in texts(at)
    with reading() as check:
        saved = get_deal(check, "tenner")
        assert (saved.title, str(saved.value), saved.valid_until) == (
            "Ten euros off",
            "10.00",
            None,
        )
