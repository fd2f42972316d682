"""Report queries and exports on SQLite and PostgreSQL, against a small world with known numbers."""

from __future__ import annotations

import csv
import io
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from dealmail.analytics._sql import RedemptionScope
from dealmail.analytics.campaigns import campaign_report, campaign_reports, comparison_rows
from dealmail.analytics.exports import (
    REDEMPTION_HEADER,
    redemption_rows,
    write_redemptions_csv,
    write_redemptions_xlsx,
)
from dealmail.analytics.overview import overview
from dealmail.analytics.redemptions import (
    discount_given,
    redemption_count,
    redemptions_by_device,
    redemptions_by_location,
    redemptions_over_time,
)
from dealmail.cli import app
from dealmail.config import Settings
from dealmail.errors import InvalidInput, NotFound
from dealmail.models import (
    Campaign,
    Coupon,
    Customer,
    Deal,
    Device,
    Event,
    Location,
    Message,
    Redemption,
    Tag,
)
from dealmail.shop import set_settings

PARIS = ZoneInfo("Europe/Paris")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class World:
    spring: Campaign
    summer: Campaign
    main: Location
    harbour: Location


def _coupon(session: Session, message: Message, deal: Deal, max_uses: int = 1) -> Coupon:
    coupon = Coupon(
        message_id=message.id,
        campaign_id=message.campaign_id,
        customer_id=message.customer_id,
        deal_id=deal.id,
        nonce=secrets.token_hex(8),
        token_hash=secrets.token_hex(32),
        short_code_hash=secrets.token_hex(32),
        max_uses=max_uses,
    )
    session.add(coupon)
    session.flush()
    return coupon


def _redeem(
    session: Session,
    coupon: Coupon,
    when: str,
    location: Location,
    device: Device,
    discount: str | None = None,
) -> Redemption:
    row = Redemption(
        coupon_id=coupon.id,
        campaign_id=coupon.campaign_id,
        location_id=location.id,
        device_id=device.id,
        redeemed_at=at(when),
        discount_value=Decimal(discount) if discount else None,
    )
    session.add(row)
    session.flush()
    return row


def seed(session: Session) -> World:
    """Spring: 10 recipients, 8 left us, 1 bounced, 2 live redemptions (one more voided).
    Summer: 5 recipients, 3 sent and delivered, 3 redemptions of a percent deal on 2 coupons."""
    set_settings(session, {"timezone": "Europe/Paris"})
    main = Location(name="Main St", timezone="Europe/Paris")
    harbour = Location(name="Harbour", timezone="America/New_York")
    session.add_all([main, harbour])
    session.flush()
    till = Device(name="till-1", location_id=main.id, key_hash=secrets.token_hex(32))
    phone = Device(name="@phone-2", location_id=harbour.id, key_hash=secrets.token_hex(32))
    tenoff = Deal(
        name="tenoff", kind="amount_off", value=Decimal(10), currency="EUR", title="-10 EUR"
    )
    pct = Deal(name="pct", kind="percent_off", value=Decimal(20), title="20% off")
    vip, evil = Tag(name="vip", name_key="vip"), Tag(name="=evil", name_key="=evil")
    session.add_all([till, phone, tenoff, pct, vip, evil])
    session.flush()
    customers = [
        Customer(email=f"c{i}@example.com", email_key=f"c{i}@example.com", first_name=f"C{i}")
        for i in range(10)
    ]
    customers[0].tags = [vip, evil]
    customers[1].status = "unsubscribed"
    customers[2].status = "deleted"
    session.add_all(customers)
    spring = Campaign(
        name="Spring", subject="s", deal_id=tenoff.id, status="sent", started_at=at("2026-03-01")
    )
    summer = Campaign(
        name="Summer", subject="s", deal_id=pct.id, status="sending", started_at=at("2026-06-09")
    )
    autumn = Campaign(name="Autumn", subject="s", status="scheduled", send_at=at("2026-09-01"))
    winter = Campaign(name="Winter", subject="s", status="paused", paused_reason="too many fails")
    winter.created_at = at("2026-01-01")
    session.add_all([spring, summer, autumn, winter])
    session.flush()

    spring_status = ["sent"] * 7 + ["bounced", "failed", "skipped"]
    spring_messages = [
        Message(campaign_id=spring.id, customer_id=c.id, email=c.email, status=status)
        for c, status in zip(customers, spring_status, strict=True)
    ]
    summer_status = ["sent"] * 3 + ["queued"] * 2
    summer_messages = [
        Message(campaign_id=summer.id, customer_id=c.id, email=c.email, status=status)
        for c, status in zip(customers[:5], summer_status, strict=True)
    ]
    session.add_all(spring_messages + summer_messages)
    session.flush()
    bounced = spring_messages[7]
    session.add_all(
        [
            Event(campaign_id=spring.id, message_id=bounced.id, kind="bounced"),
            Event(campaign_id=spring.id, customer_id=customers[1].id, kind="unsubscribed"),
            Event(campaign_id=spring.id, customer_id=customers[1].id, kind="unsubscribed"),
            Event(campaign_id=spring.id, customer_id=customers[2].id, kind="unsubscribed"),
            Event(campaign_id=spring.id, message_id=spring_messages[0].id, kind="opened"),
            Event(campaign_id=spring.id, message_id=spring_messages[0].id, kind="opened"),
            Event(campaign_id=spring.id, message_id=spring_messages[1].id, kind="opened"),
        ]
        + [
            Event(campaign_id=summer.id, message_id=m.id, kind="delivered")
            for m in summer_messages[:3]
        ]
    )
    spring_coupons = [_coupon(session, m, tenoff) for m in spring_messages[:8]]
    _redeem(session, spring_coupons[0], "2026-03-02 08:30", main, till)
    _redeem(session, spring_coupons[1], "2026-03-02 23:30", harbour, phone, "7.50")
    voided = _redeem(session, spring_coupons[2], "2026-03-03 10:00", main, till)
    void = _redeem(session, spring_coupons[2], "2026-03-03 10:05", main, till)
    void.voids_id = voided.id
    session.flush()
    voided.voided_by_id = void.id
    summer_coupons = [_coupon(session, summer_messages[0], pct, max_uses=2)] + [
        _coupon(session, m, pct) for m in summer_messages[1:3]
    ]
    _redeem(session, summer_coupons[0], "2026-06-10 12:10", main, till)
    _redeem(session, summer_coupons[1], "2026-06-10 12:20", main, till)
    _redeem(session, summer_coupons[0], "2026-06-11 07:00", main, till)
    session.commit()
    return World(spring=spring, summer=summer, main=main, harbour=harbour)


@pytest.fixture
def world(session: Session) -> World:
    return seed(session)


def test_campaign_funnel_counts_every_stage(session: Session, world: World) -> None:
    spring = campaign_report(session, "Spring")
    assert (spring.recipients, spring.sent, spring.pending) == (10, 8, 0)
    assert (spring.bounced, spring.failed, spring.skipped) == (1, 1, 1)
    assert (spring.delivered, spring.delivered_reported) == (7, False)
    assert (spring.unsubscribed, spring.opened, spring.clicked) == (2, 2, 0)
    # The voided redemption and its reversal row count for nothing.
    assert (spring.redemptions, spring.redeemed_coupons) == (2, 2)
    assert spring.redemption_rate == pytest.approx(2 / 8)
    [money] = spring.discounts
    assert (money.currency, money.amount, money.redemptions, money.unpriced) == (
        "EUR",
        Decimal("17.50"),
        2,
        0,
    )


def test_percent_deal_redemptions_are_counted_not_priced(session: Session, world: World) -> None:
    summer = campaign_report(session, world.summer.id)
    assert (summer.recipients, summer.sent, summer.pending) == (5, 3, 2)
    assert (summer.delivered, summer.delivered_reported) == (3, True)
    assert (summer.redemptions, summer.redeemed_coupons) == (3, 2)
    [given] = summer.discounts
    assert (given.amount, given.redemptions, given.unpriced) == (Decimal("0.00"), 3, 3)


def test_comparison_lists_every_campaign_newest_first(session: Session, world: World) -> None:
    reports = campaign_reports(session)
    names = [report.name for report in reports]
    assert names == ["Autumn", "Summer", "Spring", "Winter"]
    rows = {row["campaign"]: row for row in comparison_rows(reports)}
    assert rows["Spring"]["discount_given"] == "17.50 EUR"
    assert rows["Summer"]["discount_given"] == "3 unpriced"
    assert rows["Autumn"]["recipients"] == 0
    assert rows["Autumn"]["discount_given"] == "-"


def test_unknown_campaign_is_a_clear_error(session: Session, world: World) -> None:
    with pytest.raises(NotFound) as raised:
        campaign_report(session, "Nope")
    assert raised.value.code == "campaign_not_found"


def test_timeline_uses_the_shop_time_zone(session: Session, world: World) -> None:
    timeline = redemptions_over_time(session, RedemptionScope(), PARIS)
    by_day = {row["day"]: row["redemptions"] for row in timeline.by_day}
    assert timeline.by_day[0]["day"] == date(2026, 3, 2)
    assert timeline.by_day[-1]["day"] == date(2026, 6, 11)
    assert len(by_day) == 102  # every day between, zeros included
    assert sum(by_day.values()) == 5
    # 23:30 UTC on 2 March is 00:30 on 3 March in Paris.
    assert by_day[date(2026, 3, 2)] == 1
    assert by_day[date(2026, 3, 3)] == 1
    assert (by_day[date(2026, 6, 10)], by_day[date(2026, 6, 11)]) == (2, 1)
    by_hour = {row["hour"]: row["redemptions"] for row in timeline.by_hour}
    assert len(by_hour) == 24
    assert {hour: n for hour, n in by_hour.items() if n} == {0: 1, 9: 2, 14: 2}


def test_timeline_of_one_campaign_in_another_zone(session: Session, world: World) -> None:
    scope = RedemptionScope(campaign_id=world.spring.id)
    timeline = redemptions_over_time(session, scope, ZoneInfo("Asia/Kolkata"))
    by_hour = {row["hour"]: row["redemptions"] for row in timeline.by_hour if row["redemptions"]}
    assert by_hour == {14: 1, 5: 1}  # UTC+5:30: 08:30 → 14:00, 23:30 → 05:00


def test_breakdowns_by_location_and_device(session: Session, world: World) -> None:
    scope = RedemptionScope()
    assert redemptions_by_location(session, scope) == [
        {"location": "Main St", "redemptions": 4},
        {"location": "Harbour", "redemptions": 1},
    ]
    assert redemptions_by_device(session, RedemptionScope(campaign_id=world.spring.id)) == [
        {"device": "@phone-2", "location": "Harbour", "redemptions": 1},
        {"device": "till-1", "location": "Main St", "redemptions": 1},
    ]
    harbour_only = RedemptionScope(location_id=world.harbour.id)
    assert redemption_count(session, harbour_only) == 1
    june = RedemptionScope(start=at("2026-06-01"), end=at("2026-07-01"))
    assert redemption_count(session, june) == 3


def test_discount_given_across_campaigns(session: Session, world: World) -> None:
    given = {item.currency: item for item in discount_given(session, RedemptionScope())}
    assert given["EUR"].amount == Decimal("17.50")
    assert (given[None].redemptions, given[None].unpriced) == (3, 3)


def test_overview_for_the_home_screen(session: Session, world: World, settings: Settings) -> None:
    home = overview(session, settings, now=at("2026-06-11 10:00"))
    assert (home.customers, home.subscribed) == (9, 8)
    assert home.redemptions_today == 1
    assert home.last_campaign is not None
    assert home.last_campaign.name == "Summer"
    assert [item.name for item in home.next_scheduled] == ["Autumn"]
    text = " ".join(home.attention)
    assert "postal address" in text
    assert "DKIM" in text
    assert "'Winter' is paused: too many fails" in text
    assert "no worker is running" in text


def test_redemption_export_rows_in_local_time(session: Session, world: World) -> None:
    rows = list(redemption_rows(session, date(2026, 3, 1), date(2026, 3, 3)))
    assert [(r.date, r.time, r.location, r.voided) for r in rows] == [
        (date(2026, 3, 2), "09:30:00", "Main St", False),
        # The Harbour row shows New York time, where it happened.
        (date(2026, 3, 2), "18:30:00", "Harbour", False),
        (date(2026, 3, 3), "11:00:00", "Main St", True),
    ]
    assert [r.discount_value for r in rows] == [Decimal("10.00"), Decimal("7.50"), Decimal("10.00")]
    assert [r.customer for r in rows] == ["c0@example.com", "c1@example.com", "(deleted customer)"]
    assert {r.campaign for r in rows} == {"Spring"}
    # A location's dates are that location's: 2 March in New York.
    harbour = list(redemption_rows(session, date(2026, 3, 2), date(2026, 3, 2), "Harbour"))
    assert [r.customer for r in harbour] == ["c1@example.com"]


def test_redemption_export_refuses_bad_input(session: Session, world: World) -> None:
    with pytest.raises(InvalidInput):
        list(redemption_rows(session, date(2026, 3, 3), date(2026, 3, 1)))
    with pytest.raises(NotFound):
        list(redemption_rows(session, date(2026, 3, 1), date(2026, 3, 3), "Nowhere"))


def test_csv_and_xlsx_exports_are_neutralised(
    session: Session, world: World, tmp_path: Path
) -> None:
    rows = list(redemption_rows(session, date(2026, 3, 1), date(2026, 6, 30)))
    text = io.StringIO()
    assert write_redemptions_csv(rows, text) == 6
    parsed = list(csv.reader(io.StringIO(text.getvalue())))
    assert tuple(parsed[0]) == REDEMPTION_HEADER
    assert parsed[1][5] == "'-10 EUR"
    assert parsed[2][3] == "'@phone-2"
    assert [line[8] for line in parsed[1:]] == ["no", "no", "yes", "no", "no", "no"]
    assert parsed[4][6] == ""  # percent deal without an order amount: no value invented
    target = tmp_path / "r.xlsx"
    assert write_redemptions_xlsx(rows, target) == 6
    sheet = load_workbook(target, read_only=True).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert tuple(values[0]) == REDEMPTION_HEADER
    assert values[1][0] == datetime(2026, 3, 2)
    assert values[1][5] == "'-10 EUR"
    assert values[2][6] == 7.5
    assert values[3][8] == "yes"


def test_report_and_export_commands(
    session: Session, world: World, settings: Settings, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["report", "campaign", "Spring", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["sent"], data["redemptions"], data["redemption_rate"]) == (8, 2, 0.25)
    assert data["discounts"][0]["amount"] == "17.50"
    result = runner.invoke(app, ["report", "campaign", "Spring"])
    assert "redemption rate" in result.output
    assert "25.0% of sent" in result.output
    result = runner.invoke(app, ["report", "campaigns"])
    assert result.exit_code == 0
    assert "Summer" in result.output
    result = runner.invoke(app, ["report", "campaign", "Nope"])
    assert result.exit_code == 2
    assert "no campaign named 'Nope'" in result.output

    out = tmp_path / "r.xlsx"
    args = ["export", "redemptions", "--from", "2026-03-01", "--to", "2026-03-31"]
    result = runner.invoke(app, [*args, "--format", "xlsx", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 redemptions written" in result.output
    sheet = load_workbook(out, read_only=True).active
    assert sheet is not None
    assert len(list(sheet.iter_rows(values_only=True))) == 4
    out_csv = tmp_path / "r.csv"
    result = runner.invoke(
        app, [*args, "--location", "Harbour", "--format", "csv", "--out", str(out_csv)]
    )
    assert result.exit_code == 0, result.output
    assert len(out_csv.read_text(encoding="utf-8").splitlines()) == 2
    result = runner.invoke(
        app, [*args, "--location", "Nowhere", "--format", "csv", "--out", str(out_csv)]
    )
    assert result.exit_code == 2
    assert "no location named 'Nowhere'" in result.output
    result = runner.invoke(app, [*args, "--format", "pdf", "--out", str(out_csv)])
    assert result.exit_code == 2
    result = runner.invoke(
        app, ["export", "redemptions", "--from", "March", "--to", "2026-03-31", "--out", "x"]
    )
    assert result.exit_code == 2
