"""What the owner does to a send: start (now or at a time), pause, resume, cancel, watch, resend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dealmail.campaigns.lifecycle import transition
from dealmail.campaigns.preflight import require_ready
from dealmail.campaigns.service import get_campaign
from dealmail.config import Settings
from dealmail.delivery.materialise import materialise
from dealmail.errors import InvalidInput
from dealmail.models import (
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    WorkerHeartbeat,
    utcnow,
)
from dealmail.shop import get_shop_settings

STATUS_KEYS = tuple(status.value for status in MessageStatus)
RATE_WINDOW_SECONDS = 60.0
LIVE_WORKER_SECONDS = 30.0


def parse_send_at(text: str, zone: ZoneInfo, now: datetime | None = None) -> datetime:
    """`2026-12-01 09:00` in the shop's time zone (or with an explicit offset) → aware UTC."""
    now = now or utcnow()
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"cannot read {text!r} as a date and time; use e.g. 2026-12-01 09:00",
            code="invalid_send_at",
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    moment = moment.astimezone(UTC)
    if moment <= now:
        raise InvalidInput(
            f"{text} ({zone.key}) is in the past; give a future time or leave out --at",
            code="send_at_in_past",
        )
    return moment


def send_campaign(
    session: Session,
    name: str,
    settings: Settings,
    *,
    at: str | None = None,
    now: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Preflight, then schedule (with `at`) or start now and materialise every message."""
    now = now or utcnow()
    campaign = get_campaign(session, name)
    send_at = parse_send_at(at, get_shop_settings(session).zone, now) if at else None
    require_ready(session, campaign, settings, now=now)
    if send_at is not None:
        transition(campaign, CampaignStatus.SCHEDULED, now=now)
        campaign.send_at = send_at
        session.commit()
        return {"campaign": campaign.name, "status": campaign.status, "send_at": send_at}
    transition(campaign, CampaignStatus.SENDING, now=now)
    campaign.send_at = now
    session.commit()
    total = materialise(session, campaign.id, on_batch=on_batch)
    return {"campaign": campaign.name, "status": campaign.status, "messages": total}


def pause(session: Session, name: str, reason: str | None = None) -> Campaign:
    campaign = get_campaign(session, name)
    transition(campaign, CampaignStatus.PAUSED)
    campaign.paused_reason = reason or "paused by the owner"
    session.commit()
    return campaign


def resume(
    session: Session, name: str, settings: Settings, now: datetime | None = None
) -> Campaign:
    """Paused → sending (or back to scheduled if its time has not come); preflight again."""
    now = now or utcnow()
    campaign = get_campaign(session, name)
    if campaign.status != CampaignStatus.PAUSED:
        raise InvalidInput(f"campaign {name!r} is {campaign.status}, not paused", code="not_paused")
    require_ready(session, campaign, settings, now=now)
    future = campaign.send_at is not None and campaign.send_at > now
    transition(campaign, CampaignStatus.SCHEDULED if future else CampaignStatus.SENDING, now=now)
    session.commit()
    return campaign


def cancel(session: Session, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Cancel; every message not yet sent is skipped (one already in a send finishes)."""
    now = now or utcnow()
    campaign = get_campaign(session, name)
    transition(campaign, CampaignStatus.CANCELLED, now=now)
    result = session.execute(
        update(Message)
        .where(
            Message.campaign_id == campaign.id,
            Message.status.in_(
                (MessageStatus.QUEUED, MessageStatus.DEFERRED, MessageStatus.SENDING)
            ),
        )
        .values(
            status=MessageStatus.SKIPPED,
            error_kind="cancelled",
            last_error="campaign cancelled",
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    skipped = int(getattr(result, "rowcount", 0) or 0)
    return {"campaign": campaign.name, "status": campaign.status, "skipped": skipped}


def resend_failed(session: Session, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Queue the failed messages again (retry horizon restarts); a sent campaign sends again."""
    now = now or utcnow()
    campaign = get_campaign(session, name)
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.CANCELLED):
        raise InvalidInput(
            f"campaign {name!r} is {campaign.status}: nothing to resend", code="cannot_resend"
        )
    result = session.execute(
        update(Message)
        .where(Message.campaign_id == campaign.id, Message.status == MessageStatus.FAILED)
        .values(
            status=MessageStatus.QUEUED,
            next_attempt_at=now,
            first_attempt_at=None,
            error_kind=None,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count and campaign.status == CampaignStatus.SENT:
        transition(campaign, CampaignStatus.SENDING, now=now)
        campaign.finished_at = None
    session.commit()
    return {"campaign": campaign.name, "status": campaign.status, "requeued": count}


def campaign_status(session: Session, name: str, now: datetime | None = None) -> dict[str, Any]:
    """Counts per message status, the recent rate (messages/s over the last minute) and ETA."""
    now = now or utcnow()
    session.expire_all()  # workers change these rows: never answer from the identity map
    campaign = get_campaign(session, name)
    counts: dict[str, int] = dict.fromkeys(STATUS_KEYS, 0)
    rows = session.execute(
        select(Message.status, func.count())
        .where(Message.campaign_id == campaign.id)
        .group_by(Message.status)
    ).all()
    for status, count in rows:
        counts[str(status)] = int(count)
    recent = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.campaign_id == campaign.id,
            Message.status == MessageStatus.SENT,
            Message.sent_at >= now - timedelta(seconds=RATE_WINDOW_SECONDS),
        )
    )
    workers = session.scalar(
        select(func.count())
        .select_from(WorkerHeartbeat)
        .where(WorkerHeartbeat.seen_at >= now - timedelta(seconds=LIVE_WORKER_SECONDS))
    )
    kinds = session.execute(
        select(Message.error_kind, func.count())
        .where(
            Message.campaign_id == campaign.id,
            Message.status.in_((MessageStatus.FAILED, MessageStatus.BOUNCED)),
        )
        .group_by(Message.error_kind)
    ).all()
    rate = (recent or 0) / RATE_WINDOW_SECONDS
    remaining = counts["queued"] + counts["sending"] + counts["deferred"]
    eta = remaining / rate if rate > 0 and remaining else (0.0 if not remaining else None)
    total = sum(counts.values())
    result = {
        "campaign": campaign.name,
        "status": campaign.status,
        "paused_reason": campaign.paused_reason,
        "materialised": campaign.materialised_at is not None,
        "total": total,
        **counts,
        "rate": round(rate, 2),
        "eta": None if eta is None else round(eta, 1),
        "workers": int(workers or 0),
        # Why messages failed or bounced: hard_bounce, policy (tell the owner), permanent...
        "failures_by_kind": {str(kind or "unknown"): int(n) for kind, n in kinds},
        "send_at": campaign.send_at,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
    }
    session.rollback()  # a read: do not hold SQLite's write lock while someone watches
    return result
