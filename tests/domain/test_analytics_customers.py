"""A customer's coupons and redemptions, the live count of unsaved segment rules, and the home
screen's failing-backend warning, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from dealmail.analytics.customers import (
    RuleCount,
    count_matching,
    customer_coupons,
    customer_redemptions,
)
from dealmail.analytics.overview import overview
from dealmail.config import Settings
from dealmail.contacts.consent import add_suppression
from dealmail.contacts.service import tag_customers
from dealmail.models import (
    AttemptLog,
    Campaign,
    Coupon,
    Customer,
    Deal,
    Device,
    Location,
    Message,
    Redemption,
)

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def _customers(session: Session) -> list[Customer]:
    people = [
        Customer(email=f"p{i}@example.com", email_key=f"p{i}@example.com", status=status)
        for i, status in enumerate(["subscribed", "subscribed", "unsubscribed", "subscribed"])
    ]
    session.add_all(people)
    session.commit()
    return people


def test_count_matching_unsaved_rules(session: Session) -> None:
    _customers(session)
    tag_customers(session, "vip", emails=["p0@example.com", "p2@example.com", "p3@example.com"])
    add_suppression(session, "p3@example.com", "bounce", "test")
    session.commit()
    assert count_matching(session, {}) == RuleCount(members=4, mailable=2)
    counted = count_matching(session, {"tags_any": ["VIP"]})
    assert (counted.members, counted.mailable) == (3, 1)  # p2 unsubscribed, p3 suppressed
    counted = count_matching(session, {"tags_none": ["vip"], "status": ["subscribed"]})
    assert (counted.members, counted.mailable) == (1, 1)


def test_customer_coupons_and_redemptions(session: Session) -> None:
    anna, ben, *_ = _customers(session)
    place = Location(name="Main St")
    deal = Deal(name="five", kind="amount_off", value=Decimal(5), currency="EUR", title="5 off")
    session.add_all([place, deal])
    session.flush()
    till = Device(name="till", location_id=place.id, key_hash=secrets.token_hex(32))
    spring = Campaign(name="Spring", subject="s", deal_id=deal.id)
    session.add_all([till, spring])
    session.flush()
    coupons = []
    for customer, is_test in ((anna, False), (anna, True), (ben, False)):
        message = None
        if not is_test:
            message = Message(campaign_id=spring.id, customer_id=customer.id, email=customer.email)
            session.add(message)
            session.flush()
        coupon = Coupon(
            message_id=message.id if message else None,
            campaign_id=spring.id,
            customer_id=customer.id,
            deal_id=deal.id,
            nonce="n",
            token_hash=secrets.token_hex(32),
            short_code_hash=secrets.token_hex(32),
            is_test=is_test,
            uses=1 if customer is ben else 0,
            created_at=NOW - timedelta(hours=len(coupons)),
        )
        session.add(coupon)
        session.flush()
        coupons.append(coupon)
    first = Redemption(
        coupon_id=coupons[0].id, campaign_id=spring.id, location_id=place.id, device_id=till.id,
        redeemed_at=NOW, discount_value=Decimal(5),
    )  # fmt: skip
    session.add(first)
    session.flush()
    reversal = Redemption(
        coupon_id=coupons[0].id, campaign_id=spring.id, voids_id=first.id,
        redeemed_at=NOW + timedelta(minutes=2), reason="wrong customer",
    )  # fmt: skip
    session.add(reversal)
    session.flush()
    first.voided_by_id = reversal.id
    session.add(
        Redemption(
            coupon_id=coupons[0].id,
            campaign_id=spring.id,
            location_id=place.id,
            device_id=till.id,
            redeemed_at=NOW + timedelta(minutes=5),
            discount_value=Decimal(5),
        )
    )
    session.commit()
    listed = customer_coupons(session, anna.id)
    assert [(c["campaign"], c["deal"], c["state"]) for c in listed] == [
        ("Spring", "5 off", ""),
        ("Spring", "5 off", "test"),
    ]
    redemptions = customer_redemptions(session, anna.id)
    assert [(r["location"], r["device"], r["discount"], r["voided"]) for r in redemptions] == [
        ("Main St", "till", "5.00", ""),
        ("Main St", "till", "5.00", "yes (wrong customer)"),
    ]
    assert customer_redemptions(session, ben.id) == []


def test_home_warns_when_the_backend_fails(session: Session, settings: Settings) -> None:
    anna, *_ = _customers(session)
    spring = Campaign(name="Spring", subject="s", status="sending", started_at=NOW)
    session.add(spring)
    session.flush()
    message = Message(campaign_id=spring.id, customer_id=anna.id, email=anna.email)
    session.add(message)
    session.flush()
    outcomes = ["deferred"] * 4 + ["sent", "bounced"]
    session.add_all(
        [
            AttemptLog(message_id=message.id, at=NOW - timedelta(minutes=5), outcome=outcome)
            for outcome in outcomes
        ]
    )
    session.commit()
    warnings = " ".join(overview(session, settings, now=NOW).attention)
    assert "The email backend is failing: 4 of the last hour's 6 delivery attempts" in warnings
    later = overview(session, settings, now=NOW + timedelta(hours=2)).attention
    assert not any("backend is failing" in item for item in later)
