"""The home screen's numbers: customers, today's redemptions, last and next campaigns, attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.analytics._sql import RedemptionScope, local_day_bounds
from dealmail.analytics.campaigns import CampaignReport, campaign_report
from dealmail.analytics.redemptions import redemption_count
from dealmail.config import Settings
from dealmail.contacts.queries import counts_by_status
from dealmail.models import (
    AttemptLog,
    Campaign,
    CampaignStatus,
    CustomerStatus,
    WorkerHeartbeat,
    utcnow,
)
from dealmail.shop import get_shop_settings

FAILING_WINDOW = timedelta(hours=1)
FAILING_SHARE = 0.5
FAILING_MIN_ATTEMPTS = 5
WORKER_SILENCE = timedelta(minutes=2)
# Attempt outcomes are message statuses; a bounce is the recipient's problem, not the backend's.
FAILED_OUTCOMES = ("deferred", "failed")


@dataclass(frozen=True)
class Scheduled:
    name: str
    send_at: datetime | None


@dataclass(frozen=True)
class Overview:
    customers: int
    subscribed: int
    by_status: dict[str, int]
    redemptions_today: int
    last_campaign: CampaignReport | None
    next_scheduled: list[Scheduled]
    attention: list[str] = field(default_factory=list)


def _last_campaign_id(session: Session) -> int | None:
    return session.scalar(
        select(Campaign.id)
        .where(Campaign.started_at.is_not(None))
        .order_by(Campaign.started_at.desc(), Campaign.id.desc())
        .limit(1)
    )


def _attention(session: Session, settings: Settings, now: datetime) -> list[str]:
    items = []
    shop = get_shop_settings(session)
    if not shop.postal_address:
        items.append("No postal address: campaigns cannot be sent until you add one in Settings.")
    if not shop.sender_email:
        items.append("No sender address: set the sender's email in Settings.")
    if not (settings.dkim_selector and settings.dkim_domain and settings.dkim_private_key_file):
        items.append(
            "No DKIM key: mail is not signed, so Gmail and Yahoo may refuse it. "
            "Generate one in Settings and publish its DNS record."
        )
    for name, reason in session.execute(
        select(Campaign.name, Campaign.paused_reason).where(
            Campaign.status == CampaignStatus.PAUSED
        )
    ):
        items.append(f"Campaign {name!r} is paused" + (f": {reason}" if reason else "."))
    attempts, failures = session.execute(
        select(
            func.count(),
            func.count().filter(AttemptLog.outcome.in_(FAILED_OUTCOMES)),
        ).where(AttemptLog.at >= now - FAILING_WINDOW)
    ).one()
    if attempts >= FAILING_MIN_ATTEMPTS and failures / attempts >= FAILING_SHARE:
        items.append(
            f"The email backend is failing: {failures} of the last hour's {attempts} delivery "
            "attempts did not go through. Check its settings and send a test."
        )
    busy = session.scalar(
        select(func.count()).select_from(Campaign).where(Campaign.status == CampaignStatus.SENDING)
    )
    alive = session.scalar(
        select(func.count())
        .select_from(WorkerHeartbeat)
        .where(WorkerHeartbeat.seen_at >= now - WORKER_SILENCE)
    )
    if busy and not alive:
        items.append("A campaign is sending but no worker is running: start `dealmail worker`.")
    return items


def overview(session: Session, settings: Settings, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    zone = get_shop_settings(session).zone
    today = now.astimezone(zone).date()
    start, end = local_day_bounds(today, today, zone)
    by_status = counts_by_status(session)
    last_id = _last_campaign_id(session)
    scheduled = session.execute(
        select(Campaign.name, Campaign.send_at)
        .where(Campaign.status == CampaignStatus.SCHEDULED)
        .order_by(Campaign.send_at)
        .limit(3)
    )
    return Overview(
        customers=sum(n for s, n in by_status.items() if s != CustomerStatus.DELETED),
        subscribed=by_status.get(CustomerStatus.SUBSCRIBED, 0),
        by_status=by_status,
        redemptions_today=redemption_count(session, RedemptionScope(start=start, end=end)),
        last_campaign=campaign_report(session, last_id) if last_id is not None else None,
        next_scheduled=[Scheduled(name, send_at) for name, send_at in scheduled],
        attention=_attention(session, settings, now),
    )
