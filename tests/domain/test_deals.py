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


def test_update_deal_changes_only_what_is_given(session: Session) -> None:
    from dealmail.deals.service import DealChanges, update_deal
    from dealmail.locations.service import add_location

    add_location(session, "Station")
    add_deal(session, "spring", terms="Not with other offers", valid_days=14)
    update_deal(session, "spring", DealChanges(title="15% off all bread", value="15"), now=NOW)
    row = describe(get_deal(session, "spring"))
    assert (row["title"], row["headline"], row["terms"]) == (
        "15% off all bread",
        "15% off",
        "Not with other offers",
    )
    assert row["valid_days"] == 14
    until = datetime(2030, 6, 30, 12, tzinfo=UTC)
    update_deal(
        session,
        "spring",
        DealChanges(
            kind="amount_off", currency="eur", valid_until=until, terms="", locations=("Station",)
        ),
        now=NOW,
    )
    row = describe(get_deal(session, "spring"))
    assert row["headline"] == "€15 off"
    assert (row["valid_until"], row["valid_days"], row["terms"]) == (until.isoformat(), None, None)
    assert row["locations"] == ["Station"]
    update_deal(session, "spring", DealChanges(no_end=True, locations=()), now=NOW)
    row = describe(get_deal(session, "spring"))
    assert (row["valid_until"], row["valid_days"], row["locations"]) == (None, None, [])


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"title": " "}, "missing_title"),
        ({"value": "120"}, "invalid_value"),
        ({"kind": "amount_off"}, "missing_currency"),
        ({"valid_days": 3, "valid_until": NOW + timedelta(days=3)}, "conflicting_validity"),
        ({"valid_until": NOW - timedelta(days=1)}, "invalid_validity"),
        ({"uses_per_coupon": 0}, "invalid_uses"),
        ({"locations": ("Airport",)}, "unknown_location"),
    ],
)
def test_update_deal_refuses_what_create_refuses(
    session: Session, changes: dict[str, object], code: str
) -> None:
    from dealmail.deals.service import DealChanges, update_deal

    add_deal(session, "spring")
    with pytest.raises(DomainError) as caught:
        update_deal(session, "spring", DealChanges(**changes), now=NOW)  # type: ignore[arg-type]
    assert caught.value.code == code
    assert describe(get_deal(session, "spring"))["headline"] == "20% off"
    with pytest.raises(DomainError) as missing:
        update_deal(session, "autumn", DealChanges(title="x"), now=NOW)
    assert missing.value.code == "deal_not_found"


def test_an_expired_deal_can_still_have_its_wording_fixed(session: Session) -> None:
    from dealmail.deals.service import DealChanges, update_deal

    create_deal(
        session,
        DealInput(
            name="old", kind="bogo", title="Two for one", valid_until=NOW + timedelta(days=1)
        ),
        now=NOW,
    )
    later = NOW + timedelta(days=30)
    update_deal(session, "old", DealChanges(title="Was 20% off"), now=later)
    assert describe(get_deal(session, "old"), later)["title"] == "Was 20% off"


@pytest.mark.parametrize("in_use", ["sent", "sending", "paused", "coupon"])
def test_a_deal_in_use_keeps_what_its_coupons_promise(session: Session, in_use: str) -> None:
    from dealmail.coupons.issue import issue_coupon
    from dealmail.deals.service import DealChanges, update_deal
    from dealmail.models import Campaign

    deal = create_deal(
        session,
        DealInput(
            name="spring",
            kind="percent_off",
            title="20% off any pastry",
            value="20",
            valid_until=NOW + timedelta(days=10),
        ),
        now=NOW,
    )
    if in_use == "coupon":
        issue_coupon(session, b"k" * 32, deal, campaign_id=None, customer_id=None, now=NOW)
    else:
        session.add(Campaign(name="c", subject="s", status=in_use, deal_id=deal.id))
    session.commit()
    for refused in (
        {"value": "30"},
        {"kind": "bogo"},
        {"uses_per_coupon": 2},
        {"valid_until": NOW + timedelta(days=5)},
        {"valid_days": 30},
        {"no_end": False, "valid_from": NOW + timedelta(days=1)},
    ):
        with pytest.raises(DomainError) as caught:
            update_deal(session, "spring", DealChanges(**refused), now=NOW)  # type: ignore[arg-type]
        assert caught.value.code == "deal_in_use", refused
        assert caught.value.http_status == 409
    # Same value written again, new wording and a later end are all fine.
    update_deal(
        session,
        "spring",
        DealChanges(value="20.00", title="20% off, now on bread too", terms="One per visit"),
        now=NOW,
    )
    update_deal(session, "spring", DealChanges(valid_until=NOW + timedelta(days=20)), now=NOW)
    row = describe(get_deal(session, "spring"))
    assert (row["title"], row["terms"], row["headline"]) == (
        "20% off, now on bread too",
        "One per visit",
        "20% off",
    )
    assert row["valid_until"] == (NOW + timedelta(days=20)).isoformat()


def test_a_draft_campaign_or_a_test_coupon_does_not_lock_the_deal(session: Session) -> None:
    from dealmail.coupons.issue import issue_coupon
    from dealmail.deals.service import DealChanges, update_deal
    from dealmail.models import Campaign

    deal = add_deal(session, "spring")
    session.add(Campaign(name="c", subject="s", status="draft", deal_id=deal.id))
    issue_coupon(session, b"k" * 32, deal, campaign_id=None, customer_id=None, is_test=True)
    session.commit()
    update_deal(session, "spring", DealChanges(value="25", uses_per_coupon=3), now=NOW)
    assert describe(get_deal(session, "spring"))["headline"] == "25% off"


def test_deals_edit_cli(settings: object) -> None:
    import json

    from typer.testing import CliRunner

    from dealmail.cli import app

    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    code, out = run(
        "deals",
        "create",
        "spring",
        "--kind",
        "percent_off",
        "--value",
        "10",
        "--title",
        "10% off",
        "--terms",
        "One per visit",
        "--valid-days",
        "14",
    )
    assert code == 0, out
    code, out = run(
        "deals",
        "edit",
        "spring",
        "--title",
        "12% off bread",
        "--value",
        "12",
        "--valid-until",
        "2099-12-31",
    )
    assert code == 0, out
    assert "12% off" in out
    code, out = run("deals", "show", "spring", "--json")
    shown = json.loads(out)
    assert (shown["title"], shown["headline"], shown["terms"]) == (
        "12% off bread",
        "12% off",
        "One per visit",
    )
    assert shown["valid_days"] is None
    assert shown["valid_until"].startswith("2099-12-31")
    code, out = run("deals", "edit", "spring", "--value", "150")
    assert code == 2
    assert "invalid_value" in out
    code, out = run("deals", "edit", "spring", "--no-end", "--valid-days", "3")
    assert code == 2
    assert "conflicting_validity" in out
    code, out = run("deals", "edit", "autumn", "--title", "x")
    assert code == 2
    assert "deal_not_found" in out
