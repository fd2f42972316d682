"""The worker in this process against a real aiosmtpd server: send, record, finish, pause."""

from __future__ import annotations

import email
import io
from email import policy

import zxingcpp
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.delivery import control
from dealmail.delivery.materialise import materialise
from dealmail.delivery.worker import Worker
from dealmail.models import AttemptLog, Campaign, Coupon, Message
from delivery_support import (
    Sink,
    add_campaign,
    add_customers,
    add_deal,
    ready_shop,
    smtp_settings,
)


def _statuses(session: Session) -> dict[str, int]:
    rows = session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
    return {str(status): int(count) for status, count in rows}


def test_a_campaign_is_delivered_and_finished(session: Session, settings: Settings) -> None:
    ready_shop(session)
    add_customers(session, 40)
    deal = add_deal(session)
    campaign = add_campaign(session, deal=deal)
    materialise(session, campaign.id)
    with Sink() as sink:
        worker = Worker(smtp_settings(settings, sink.port), until_idle=True, connections=2)
        assert worker.run() == 40
    session.expire_all()
    assert _statuses(session) == {"sent": 40}
    refreshed = session.get(Campaign, campaign.id)
    assert refreshed is not None
    assert refreshed.status == "sent"
    assert refreshed.finished_at is not None
    received = sink.handler.by_recipient()
    assert len(received) == 40
    assert all(len(copies) == 1 for copies in received.values())
    assert session.scalar(select(func.count()).select_from(Coupon)) == 40
    assert session.scalar(select(func.count()).select_from(AttemptLog)) == 40
    # The QR in a delivered message decodes to the coupon URL of that very message.
    raw = sink.handler.received[0].data
    parsed = email.message_from_bytes(raw, policy=policy.default)
    png = next(p for p in parsed.walk() if p.get_content_type() == "image/png")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.get_content())))
    assert decoded
    assert decoded[0].text.startswith("https://shop.example/c/")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_status_and_resend_failed(session: Session, settings: Settings) -> None:
    ready_shop(session)
    add_customers(session, 5)
    campaign = add_campaign(session)
    materialise(session, campaign.id)
    session.execute(
        Message.__table__.update()
        .where(Message.id.in_([1, 2]))
        .values(status="failed", last_error="550 5.7.1 policy")
    )
    session.commit()
    status = control.campaign_status(session, campaign.name)
    assert (status["queued"], status["failed"], status["total"]) == (3, 2, 5)
    assert status["failures_by_kind"] == {"unknown": 2}
    with Sink() as sink:
        Worker(smtp_settings(settings, sink.port), until_idle=True).run()
        assert len(sink.handler.received) == 3
        session.expire_all()
        assert session.get(Campaign, campaign.id).status == "sent"  # type: ignore[union-attr]
        assert control.resend_failed(session, campaign.name)["requeued"] == 2
        Worker(smtp_settings(settings, sink.port), until_idle=True).run()
        assert len(sink.handler.received) == 5
    status = control.campaign_status(session, campaign.name)
    assert (status["sent"], status["failed"], status["status"]) == (5, 0, "sent")


def test_a_worker_pauses_a_campaign_when_the_server_refuses_us(
    session: Session, settings: Settings
) -> None:
    class Refusing:
        async def handle_MAIL(self, server, session_, envelope, address, options):
            return "550 5.7.26 Unauthenticated email from shop.example is not accepted"

    ready_shop(session)
    add_customers(session, 120)
    campaign = add_campaign(session)
    materialise(session, campaign.id)
    with Sink(Refusing()) as sink:
        Worker(smtp_settings(settings, sink.port), until_idle=True, batch_size=20).run()
    session.expire_all()
    paused = session.get(Campaign, campaign.id)
    assert paused is not None
    assert paused.status == "paused"
    assert "5.7.26" in (paused.paused_reason or "")
    statuses = _statuses(session)
    assert statuses["failed"] >= 50
    assert statuses.get("queued", 0) >= 120 - 100  # it stopped instead of burning the list
    customers_status = session.execute(select(func.count()).where(Message.status == "bounced"))
    assert customers_status.scalar() == 0


def test_a_daily_limit_stops_sending_until_the_window_frees(
    session: Session, settings: Settings
) -> None:
    from dealmail.shop import set_settings

    ready_shop(session)
    set_settings(session, {"rate_per_day": 3})
    add_customers(session, 8)
    campaign = add_campaign(session)
    materialise(session, campaign.id)
    with Sink() as sink:
        Worker(smtp_settings(settings, sink.port), until_idle=True).run()
        assert len(sink.handler.received) == 3
    session.expire_all()
    assert _statuses(session) == {"sent": 3, "queued": 5}
    waiting = session.scalars(select(Message.next_attempt_at).where(Message.status == "queued"))
    tomorrow = min(waiting)
    from datetime import timedelta

    from dealmail.models import utcnow

    assert tomorrow > utcnow() + timedelta(hours=23)
    assert session.get(Campaign, campaign.id).status == "sending"  # type: ignore[union-attr]


def test_max_connections_are_shared_between_live_workers(
    session: Session, settings: Settings
) -> None:
    from dealmail.shop import get_shop_settings, set_settings

    set_settings(session, {"max_connections": 4})
    workers = [Worker(settings, name=f"w{n}", connections=4) for n in range(3)]
    for worker in workers:
        worker._heartbeat(session)
    shop = get_shop_settings(session)
    shares = [w._connection_share(session, shop) for w in workers]
    session.rollback()
    assert shares == [2, 1, 1]
    assert sum(shares) == 4
