"""The messages table as a queue: claims, leases, the claim-time consent check, outcomes."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.contacts.consent import apply_withdrawal, is_suppressed
from dealmail.db import session_factory
from dealmail.delivery.backends.base import FailureKind, SendError, SendResult
from dealmail.delivery.materialise import materialise
from dealmail.delivery.queue import (
    claim,
    record_failure,
    record_sent,
    release,
    renew,
    requeue_expired,
)
from dealmail.models import (
    AttemptLog,
    Campaign,
    CampaignStatus,
    Coupon,
    Customer,
    Message,
    utcnow,
)
from delivery_support import add_campaign, add_customers, add_deal

HORIZON = timedelta(hours=72)


def _queue(session: Session, count: int, **campaign_fields: object) -> Campaign:
    add_customers(session, count)
    campaign = add_campaign(session, **campaign_fields)  # type: ignore[arg-type]
    materialise(session, campaign.id)
    return campaign


def _statuses(session: Session) -> dict[str, int]:
    rows = session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
    return {str(status): int(count) for status, count in rows}


def test_a_claim_leases_due_messages_once(session: Session) -> None:
    _queue(session, 30)
    first = claim(session, "w1", 20, 60)
    second = claim(session, "w2", 20, 60)
    assert len(first) == 20
    assert len(second) == 10
    assert not {m.id for m in first} & {m.id for m in second}
    assert claim(session, "w3", 20, 60) == []
    owners = session.execute(
        select(Message.lease_owner, func.count()).group_by(Message.lease_owner)
    )
    assert dict(owners.all()) == {"w1": 20, "w2": 10}


def test_only_sending_campaigns_are_claimed(session: Session) -> None:
    campaign = _queue(session, 5)
    session.execute(update(Campaign).values(status=CampaignStatus.PAUSED))
    session.commit()
    assert claim(session, "w1", 10, 60) == []
    session.execute(update(Campaign).values(status=CampaignStatus.SENDING))
    session.commit()
    assert len(claim(session, "w1", 10, 60)) == 5
    assert campaign.id


def test_an_unsubscribe_mid_campaign_takes_effect_at_claim(session: Session) -> None:
    _queue(session, 10)
    gone = session.scalars(select(Customer).order_by(Customer.id).limit(3)).all()
    for customer in gone:
        apply_withdrawal(session, customer, "unsubscribe", source="test")
    session.commit()
    claimed = claim(session, "w1", 100, 60)
    assert len(claimed) == 7
    assert {m.customer_id for m in claimed}.isdisjoint({c.id for c in gone})
    assert _statuses(session) == {"sending": 7, "skipped": 3}
    skipped = session.scalars(select(AttemptLog).where(AttemptLog.outcome == "skipped")).all()
    assert len(skipped) == 3


def test_a_deleted_customer_is_skipped(session: Session) -> None:
    _queue(session, 2)
    session.execute(update(Message).where(Message.id == 1).values(customer_id=None))
    session.commit()
    assert [m.id for m in claim(session, "w1", 10, 60)] == [2]


def test_expired_leases_are_claimed_again_and_live_ones_are_not(session: Session) -> None:
    _queue(session, 4)
    now = utcnow()
    dead = claim(session, "dead", 2, 30, now=now)
    alive = claim(session, "alive", 2, 300, now=now)
    later = now + timedelta(seconds=60)
    assert requeue_expired(session, now=later) == 2
    again = claim(session, "new", 10, 30, now=later)
    assert {m.id for m in again} == {m.id for m in dead}
    assert not {m.id for m in again} & {m.id for m in alive}


def test_renew_and_release(session: Session) -> None:
    _queue(session, 3)
    claimed = claim(session, "w1", 3, 1)
    assert renew(session, "w1", 600) == 3
    assert requeue_expired(session, now=utcnow() + timedelta(seconds=5)) == 0
    assert release(session, "w1", [claimed[0].id]) == 1
    assert release(session, "someone-else", [claimed[1].id]) == 0
    assert _statuses(session) == {"queued": 1, "sending": 2}


def test_claim_issues_coupons_for_a_deal(session: Session, settings: Settings) -> None:
    deal = add_deal(session)
    _queue(session, 5, deal=deal)
    claimed = claim(session, "w1", 3, 60, settings=settings)
    assert session.scalar(select(func.count()).select_from(Coupon)) == 3
    release(session, "w1", [m.id for m in claimed])
    claim(session, "w2", 10, 60, settings=settings)
    coupons = session.scalars(select(Coupon.message_id)).all()
    assert sorted(coupons) == sorted(session.scalars(select(Message.id)).all())


def test_outcomes_are_recorded(session: Session) -> None:
    _queue(session, 4)
    sent, deferred, bounced, policy = claim(session, "w1", 4, 60)
    record_sent(session, sent, "w1", SendResult("p-1"), "<m1@shop>")
    now = utcnow()
    status = record_failure(
        session,
        deferred,
        "w1",
        SendError(FailureKind.TEMPORARY, "451 4.3.0 try later", code="451 4.3.0", retry_after=90),
        horizon=HORIZON,
        retry_base=10,
        now=now,
    )
    assert status == "deferred"
    bounce = SendError(FailureKind.HARD_BOUNCE, "550 5.1.1 no such user", code="550 5.1.1")
    assert (
        record_failure(session, bounced, "w1", bounce, horizon=HORIZON, retry_base=10) == "bounced"
    )
    refusal = SendError(FailureKind.POLICY, "550 5.7.26 unauthenticated", code="550 5.7.26")
    assert (
        record_failure(session, policy, "w1", refusal, horizon=HORIZON, retry_base=10) == "failed"
    )
    session.expire_all()
    rows = {m.id: m for m in session.scalars(select(Message))}
    assert rows[sent.id].status == "sent"
    assert rows[sent.id].provider_message_id == "p-1"
    assert rows[sent.id].attempts == 1
    assert rows[deferred.id].status == "deferred"
    assert rows[deferred.id].next_attempt_at >= now + timedelta(seconds=90)
    assert rows[deferred.id].lease_owner is None
    assert rows[bounced.id].status == "bounced"
    bounced_customer = session.get(Customer, bounced.customer_id)
    assert bounced_customer is not None
    assert bounced_customer.status == "bounced"
    assert is_suppressed(session, bounced.email)
    policy_customer = session.get(Customer, policy.customer_id)
    assert policy_customer is not None
    assert policy_customer.status == "subscribed"
    assert not is_suppressed(session, policy.email)
    assert rows[policy.id].error_kind == "policy"
    attempts = session.execute(select(AttemptLog.outcome, AttemptLog.code)).all()
    assert sorted(attempts, key=str) == sorted(
        [
            ("sent", None),
            ("deferred", "451 4.3.0"),
            ("bounced", "550 5.1.1"),
            ("failed", "550 5.7.26"),
        ],
        key=str,
    )


def test_temporary_failures_past_the_horizon_fail(session: Session) -> None:
    _queue(session, 1)
    (message,) = claim(session, "w1", 1, 60)
    long_ago = utcnow() - timedelta(hours=80)
    session.execute(update(Message).values(first_attempt_at=long_ago))
    session.commit()
    (message,) = [m.__class__(**{**m.__dict__, "first_attempt_at": long_ago}) for m in [message]]
    error = SendError(FailureKind.TEMPORARY, "421 closing", code="421")
    assert record_failure(session, message, "w1", error, horizon=HORIZON, retry_base=10) == "failed"
    assert session.scalar(select(Message.last_error)).startswith("gave up after 1 attempts")


def test_concurrent_claims_never_share_a_message(session: Session, engine: Engine) -> None:
    _queue(session, 600)
    factory = session_factory(engine)
    seen: list[list[int]] = []
    errors: list[BaseException] = []

    def run(worker: str) -> None:
        mine: list[int] = []
        try:
            with factory() as own:
                while batch := claim(own, worker, 25, 60):
                    mine.extend(m.id for m in batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        seen.append(mine)

    threads = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    every = [mid for mine in seen for mid in mine]
    assert len(every) == len(set(every)) == 600
