"""Materialisation: one message per mailable recipient, in batches, resumable, never duplicated."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.contacts.consent import add_suppression, apply_withdrawal
from dealmail.coupons.tokens import derive_token, token_hash
from dealmail.delivery.materialise import issue_coupons, materialise, materialise_batch
from dealmail.models import Campaign, Coupon, Customer, Message
from delivery_support import add_campaign, add_customers, add_deal


def _unsubscribe(session: Session, customer_id: int) -> None:
    customer = session.get(Customer, customer_id)
    assert customer is not None
    apply_withdrawal(session, customer, "unsubscribe", source="test")
    session.commit()


def test_every_mailable_customer_gets_exactly_one_message(session: Session) -> None:
    ids = add_customers(session, 250)
    _unsubscribe(session, ids[3])
    add_suppression(session, "c000007@example.com", "manual", "test")
    session.commit()
    campaign = add_campaign(session)
    batches: list[int] = []
    total = materialise(session, campaign.id, batch_size=100, on_batch=batches.append)
    assert total == 248
    assert batches == [100, 100, 48]
    rows = session.execute(select(Message.customer_id, Message.email, Message.status)).all()
    assert len(rows) == 248
    assert {r.customer_id for r in rows} == set(ids) - {ids[3], ids[7]}
    assert {r.status for r in rows} == {"queued"}
    session.expire_all()
    refreshed = session.get(Campaign, campaign.id)
    assert refreshed is not None
    assert refreshed.materialised_at is not None
    assert refreshed.materialise_cursor == ids[-1]
    assert materialise(session, campaign.id) == 0


def test_a_crash_between_batches_neither_loses_nor_duplicates(session: Session, engine) -> None:
    ids = add_customers(session, 300)
    campaign = add_campaign(session)
    assert materialise_batch(session, campaign.id, batch_size=120) == 120
    session.close()  # the process dies here; a new one carries on from the cursor
    from dealmail.db import session_factory

    with session_factory(engine)() as fresh:
        assert materialise(fresh, campaign.id, batch_size=50) == 180
        customers = fresh.scalars(select(Message.customer_id).order_by(Message.customer_id)).all()
    assert customers == ids


def test_the_audience_rule_is_applied(session: Session) -> None:
    add_customers(session, 20, prefix="a")
    from dealmail.models import Tag, customer_tags

    tag = Tag(name="VIP", name_key="vip")
    session.add(tag)
    session.commit()
    vip = session.scalars(select(Customer.id).order_by(Customer.id).limit(5)).all()
    session.execute(customer_tags.insert(), [{"customer_id": c, "tag_id": tag.id} for c in vip])
    session.commit()
    campaign = add_campaign(session, audience={"tags": ["vip"]})
    assert materialise(session, campaign.id) == 5


def test_coupons_are_issued_once_per_message_with_a_deal(
    session: Session, settings: Settings
) -> None:
    add_customers(session, 10)
    deal = add_deal(session)
    campaign = add_campaign(session, deal=deal)
    materialise(session, campaign.id)
    message_ids = session.scalars(select(Message.id).order_by(Message.id)).all()
    assert issue_coupons(session, message_ids[:4], settings) == 4
    session.commit()
    assert issue_coupons(session, message_ids, settings) == 6
    assert issue_coupons(session, message_ids, settings) == 0
    session.commit()
    coupons = session.scalars(select(Coupon)).all()
    assert len(coupons) == 10
    assert {c.message_id for c in coupons} == set(message_ids)
    key = settings.secret_key_bytes()
    for coupon in coupons:
        assert coupon.token_hash == token_hash(derive_token(key, coupon.nonce))
        assert coupon.max_uses == deal.uses_per_coupon
        assert coupon.expires_at is not None
        assert coupon.deal_id == deal.id
        assert not coupon.is_test


def test_a_campaign_without_a_deal_gets_no_coupons(session: Session, settings: Settings) -> None:
    add_customers(session, 3)
    campaign = add_campaign(session)
    materialise(session, campaign.id)
    ids = session.scalars(select(Message.id)).all()
    assert issue_coupons(session, ids, settings) == 0
    assert session.scalar(select(func.count()).select_from(Coupon)) == 0
