"""Campaign status changes the worker makes (start when due, finish, pause itself), race-safe."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from dealmail.campaigns.lifecycle import InvalidTransition, transition
from dealmail.models import Campaign, CampaignStatus, Message, MessageStatus, utcnow

OPEN = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.DEFERRED)


def _locked(session: Session, campaign_id: int) -> Campaign | None:
    return session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def move(
    session: Session,
    campaign_id: int,
    expected: str,
    to: str,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> bool:
    """`expected` → `to` through the lifecycle table, only if still `expected`; commits."""
    campaign = _locked(session, campaign_id)
    if campaign is None or campaign.status != expected:
        session.rollback()
        return False
    try:
        transition(campaign, to, now=now)
    except InvalidTransition:
        session.rollback()
        return False
    if reason is not None:
        campaign.paused_reason = reason
    session.commit()
    return True


def start_due(
    session: Session, now: datetime | None = None, reader: Session | None = None
) -> list[int]:
    """Scheduled campaigns whose time has come start sending (the first worker to look wins).

    `reader` (a read-only session) does the looking, so an idle check takes no write lock.
    """
    now = now or utcnow()
    looking = reader or session
    due = looking.scalars(
        select(Campaign.id).where(
            Campaign.status == CampaignStatus.SCHEDULED, Campaign.send_at <= now
        )
    ).all()
    looking.rollback()
    return [
        cid
        for cid in due
        if move(session, cid, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, now=now)
    ]


def unmaterialised(session: Session) -> list[int]:
    ids = session.scalars(
        select(Campaign.id).where(
            Campaign.status == CampaignStatus.SENDING, Campaign.materialised_at.is_(None)
        )
    ).all()
    session.rollback()
    return list(ids)


def finish_done(
    session: Session, now: datetime | None = None, reader: Session | None = None
) -> list[int]:
    """Sending campaigns with every message settled become sent."""
    looking = reader or session
    open_messages = exists().where(Message.campaign_id == Campaign.id, Message.status.in_(OPEN))
    done = looking.scalars(
        select(Campaign.id).where(
            Campaign.status == CampaignStatus.SENDING,
            Campaign.materialised_at.is_not(None),
            ~open_messages,
        )
    ).all()
    looking.rollback()
    finished = []
    for cid in done:
        campaign = _locked(session, cid)
        still_open = session.scalar(
            select(Message.id).where(Message.campaign_id == cid, Message.status.in_(OPEN)).limit(1)
        )
        if campaign is None or campaign.status != CampaignStatus.SENDING or still_open:
            session.rollback()
            continue
        transition(campaign, CampaignStatus.SENT, now=now)
        session.commit()
        finished.append(cid)
    return finished


def statuses(session: Session, campaign_ids: list[int]) -> dict[int, str]:
    rows = session.execute(
        select(Campaign.id, Campaign.status).where(Campaign.id.in_(campaign_ids))
    ).all()
    session.rollback()
    return {int(cid): str(status) for cid, status in rows}
