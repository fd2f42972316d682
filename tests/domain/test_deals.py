"""Deals: every kind, validation with clear codes, list/show, and coupon validity windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from campaign_support import add_deal
from dealmail.deals import coupon_validity
from dealmail.deals.service import (
    DealInput,
    create_deal,
    describe,
    get_deal,
    list_deals,
    parse_day_or_moment,
)
from dealmail.errors import DomainError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "value", "currency", "headline"),
    [
        ("percent_off", "15", None, "15% off"),
        ("amount_off", "5", "EUR", "€5 off"),
        ("amount_off", "2.50", "GBP", "£2.50 off"),
        ("bogo", None, None, "Buy one, get one free"),
        ("free_item", None, None, "Free item"),
        ("custom", None, None, "A surprise"),
    ],
)
def test_create_each_kind(
    session: Session, kind: str, value: str | None, currency: str | None, headline: str
) -> None:
    deal = create_deal(
        session,
        DealInput(name=f"d-{kind}", kind=kind, title="A surprise", value=value, currency=currency),
        now=NOW,
    )
    assert describe(get_deal(session, deal.name))["headline"] == headline


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"kind": "half_off"}, "invalid_kind"),
        ({"kind": "percent_off", "value": None}, "missing_value"),
        ({"kind": "percent_off", "value": "150"}, "invalid_value"),
        ({"kind": "percent_off", "value": "-3"}, "invalid_value"),
        ({"kind": "percent_off", "value": "abc"}, "invalid_value"),
        ({"kind": "amount_off", "value": "5"}, "missing_currency"),
        ({"kind": "amount_off", "value": "5", "currency": "EURO"}, "invalid_currency"),
        ({"title": "  "}, "missing_title"),
        ({"name": "bad/name"}, "invalid_name"),
        ({"valid_days": 0}, "invalid_validity"),
        ({"valid_days": 5, "valid_until": NOW + timedelta(days=3)}, "conflicting_validity"),
        ({"valid_until": NOW - timedelta(days=1)}, "invalid_validity"),
        ({"uses_per_coupon": 0}, "invalid_uses"),
    ],
)
def test_invalid_deals_are_refused_with_a_code(
    session: Session, fields: dict[str, object], code: str
) -> None:
    data: dict[str, object] = {"name": "x", "kind": "percent_off", "title": "T", "value": "10"}
    data.update(fields)
    with pytest.raises(DomainError) as caught:
        create_deal(session, DealInput(**data), now=NOW)  # type: ignore[arg-type]
    assert caught.value.code == code


def test_duplicate_names_and_unknown_deals(session: Session) -> None:
    add_deal(session, "spring")
    with pytest.raises(DomainError) as caught:
        add_deal(session, "spring")
    assert caught.value.code == "deal_exists"
    with pytest.raises(DomainError) as missing:
        get_deal(session, "autumn")
    assert missing.value.code == "deal_not_found"
    assert missing.value.http_status == 404
    assert [d.name for d in list_deals(session)] == ["spring"]


def test_coupon_validity_fixed_date_or_days_after_issue(session: Session) -> None:
    fixed = add_deal(session, "fixed", valid_until=datetime(2030, 1, 31, 23, 59, 59, tzinfo=UTC))
    rolling = add_deal(session, "rolling", valid_days=14)
    open_ended = add_deal(session, "open")
    assert coupon_validity(fixed, NOW) == (None, datetime(2030, 1, 31, 23, 59, 59, tzinfo=UTC))
    assert coupon_validity(rolling, NOW) == (None, NOW + timedelta(days=14))
    assert coupon_validity(open_ended, NOW) == (None, None)


def test_days_are_whole_days_in_the_shops_time_zone(session: Session) -> None:
    from datetime import date

    from dealmail.shop import set_settings

    set_settings(session, {"timezone": "Europe/Berlin"})
    assert parse_day_or_moment("2030-12-31") == date(2030, 12, 31)
    assert parse_day_or_moment("2030-12-31T10:00") == datetime(2030, 12, 31, 10, tzinfo=UTC)
    deal = add_deal(session, "dated", valid_from=date(2030, 12, 1), valid_until=date(2030, 12, 31))
    assert deal.valid_from == datetime(2030, 11, 30, 23, 0, tzinfo=UTC)  # 00:00 in Berlin
    assert deal.valid_until == datetime(2030, 12, 31, 22, 59, 59, tzinfo=UTC)  # 23:59:59 there
    with pytest.raises(DomainError) as caught:
        parse_day_or_moment("31/12/2030")
    assert caught.value.code == "invalid_date"


def test_deal_limited_to_locations(session: Session) -> None:
    from dealmail.locations.service import add_location

    add_location(session, "Main St")
    add_location(session, "Station")
    deal = add_deal(session, "local", locations=("Station", "Station"))
    assert describe(get_deal(session, "local"))["locations"] == ["Station"]
    assert describe(add_deal(session, "everywhere"))["locations"] == []
    with pytest.raises(DomainError) as caught:
        add_deal(session, "nowhere", locations=("Airport",))
    assert caught.value.code == "unknown_location"
    assert deal.id is not None
