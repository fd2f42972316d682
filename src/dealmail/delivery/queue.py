"""The messages table as a queue: claim with a lease, re-check consent, record, renew, release.

Every function here is one short transaction and commits. A claim takes due messages of
campaigns that are sending (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so workers never wait on each
other; SQLite: the engine's BEGIN IMMEDIATE serialises claims), then skips at once any whose
customer is no longer mailable: an unsubscribe takes effect even mid-campaign.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, insert, literal, select, update
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.contacts.audience import mailable_clause
from dealmail.contacts.consent import apply_withdrawal
from dealmail.delivery.backends.base import FailureKind, SendError, SendResult
from dealmail.delivery.materialise import issue_coupons
from dealmail.delivery.retry import next_attempt
from dealmail.models import (
    AttemptLog,
    Campaign,
    CampaignStatus,
    Customer,
    Message,
    MessageStatus,
    UTCDateTime,
    utcnow,
)

WAITING = (MessageStatus.QUEUED, MessageStatus.DEFERRED)
OPEN = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.DEFERRED)


def status_is(*statuses: MessageStatus) -> ColumnElement[bool]:
    """The status filter with its values inlined in the SQL, so PostgreSQL's planner can match
    the partial indexes (`ix_messages_due`, `ix_messages_leased`) even in a generic plan."""
    return Message.status.in_([literal(s.value, literal_execute=True) for s in statuses])


@dataclass(frozen=True)
class Claimed:
    id: int
    campaign_id: int
    customer_id: int | None
    email: str
    attempts: int
    first_attempt_at: datetime | None


def requeue_expired(session: Session, now: datetime | None = None) -> int:
    """Messages whose worker died holding them go back to the queue; commits."""
    now = now or utcnow()
    result = session.execute(
        update(Message)
        .where(status_is(MessageStatus.SENDING), Message.lease_expires_at < now)
        .values(status=MessageStatus.QUEUED, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def claim(
    session: Session,
    worker: str,
    limit: int,
    lease_seconds: float,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> list[Claimed]:
    """Lease up to `limit` due messages of sending campaigns; skip the no-longer-mailable; commits.

    Returns only the messages to send now; with `settings` (the coupon key), those of a campaign
    with a deal get their coupon in the same transaction.
    """
    now = now or utcnow()
    campaigns = list(
        session.scalars(select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING))
    )
    # One campaign at a time, starting at a random one so workers spread over campaigns; by
    # campaign so the (campaign_id, status) index finds due rows at once, however many rows a
    # paused campaign keeps queued.
    random.shuffle(campaigns)
    rows: list[Any] = []
    for campaign_id in campaigns:
        if len(rows) >= limit:
            break
        due = (
            select(Message.id)
            .where(
                Message.campaign_id == campaign_id,
                status_is(*WAITING),
                Message.next_attempt_at <= now,
            )
            .limit(limit - len(rows))
            .with_for_update(skip_locked=True)
        )
        rows += session.execute(
            update(Message)
            .where(Message.id.in_(due.scalar_subquery()))
            .values(
                status=MessageStatus.SENDING,
                lease_owner=worker,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .returning(
                Message.id,
                Message.campaign_id,
                Message.customer_id,
                Message.email,
                Message.attempts,
                Message.first_attempt_at,
            )
            .execution_options(synchronize_session=False)
        ).all()
    claimed = [Claimed(*row) for row in rows]
    if not claimed:
        session.commit()
        return []
    customer_ids = [c.customer_id for c in claimed if c.customer_id is not None]
    mailable = set(
        session.scalars(select(Customer.id).where(Customer.id.in_(customer_ids), mailable_clause()))
    )
    refused = [c.id for c in claimed if c.customer_id not in mailable]
    if refused:
        session.execute(
            update(Message)
            .where(Message.id.in_(refused))
            .values(
                status=MessageStatus.SKIPPED,
                last_error="not mailable at send time (unsubscribed, bounced or suppressed)",
                error_kind="not_mailable",
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        session.execute(
            insert(AttemptLog),
            [
                {
                    "message_id": mid,
                    "at": now,
                    "outcome": "skipped",
                    "code": "not_mailable",
                    "detail": None,
                    "worker": worker,
                }
                for mid in refused
            ],
        )
    skipped = set(refused)
    to_send = [c for c in claimed if c.id not in skipped]
    if settings is not None:
        issue_coupons(session, [c.id for c in to_send], settings, now)
    session.commit()
    return to_send


def renew(session: Session, worker: str, lease_seconds: float, now: datetime | None = None) -> int:
    """Extend every lease this worker holds; commits."""
    now = now or utcnow()
    result = session.execute(
        update(Message)
        .where(status_is(MessageStatus.SENDING), Message.lease_owner == worker)
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def release(
    session: Session, worker: str, ids: Sequence[int], not_before: datetime | None = None
) -> int:
    """Give back claimed but unsent messages (shutdown, rate limit reached); commits."""
    if not ids:
        return 0
    values: dict[str, object] = {
        "status": MessageStatus.QUEUED,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if not_before is not None:
        values["next_attempt_at"] = not_before
    result = session.execute(
        update(Message)
        .where(
            Message.id.in_(list(ids)),
            Message.status == MessageStatus.SENDING,
            Message.lease_owner == worker,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def _attempt(
    message_id: int, now: datetime, outcome: str, worker: str, code: str | None, detail: str | None
) -> AttemptLog:
    return AttemptLog(
        message_id=message_id, at=now, outcome=outcome, code=code, detail=detail, worker=worker
    )


def record_sent(
    session: Session,
    message: Claimed,
    worker: str,
    result: SendResult,
    message_id_header: str | None,
    now: datetime | None = None,
    *,
    commit: bool = True,
) -> None:
    """The backend accepted the message. Recorded even if the lease was lost meanwhile."""
    now = now or utcnow()
    session.execute(
        update(Message)
        .where(Message.id == message.id)
        .values(
            status=MessageStatus.SENT,
            attempts=Message.attempts + 1,
            first_attempt_at=message.first_attempt_at or now,
            sent_at=now,
            provider_message_id=result.provider_message_id,
            message_id_header=message_id_header,
            last_error=None,
            error_kind=None,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.add(_attempt(message.id, now, MessageStatus.SENT, worker, None, None))
    if commit:
        session.commit()


@dataclass(frozen=True)
class Delivered:
    message: Claimed
    result: SendResult
    message_id_header: str | None
    at: datetime


_SENT = (
    update(Message)
    .where(Message.id == bindparam("mid"))
    .values(
        status=MessageStatus.SENT.value,
        attempts=Message.attempts + 1,
        first_attempt_at=func.coalesce(
            Message.first_attempt_at, bindparam("at", type_=UTCDateTime())
        ),
        sent_at=bindparam("at", type_=UTCDateTime()),
        provider_message_id=bindparam("pid"),
        message_id_header=bindparam("mh"),
        last_error=None,
        error_kind=None,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("at", type_=UTCDateTime()),
    )
)


def record_sent_many(session: Session, delivered: Sequence[Delivered], worker: str) -> None:
    """Several accepted messages in two statements (no commit): the worker's group commit."""
    if not delivered:
        return
    connection = session.connection()
    connection.execute(
        _SENT,
        [
            {
                "mid": d.message.id,
                "at": d.at,
                "pid": d.result.provider_message_id,
                "mh": d.message_id_header,
            }
            for d in delivered
        ],
    )
    connection.execute(
        insert(AttemptLog),
        [
            {
                "message_id": d.message.id,
                "at": d.at,
                "outcome": MessageStatus.SENT.value,
                "code": None,
                "detail": None,
                "worker": worker,
            }
            for d in delivered
        ],
    )


def record_failure(
    session: Session,
    message: Claimed,
    worker: str,
    error: SendError,
    *,
    horizon: timedelta,
    retry_base: float,
    now: datetime | None = None,
    commit: bool = True,
) -> str:
    """Defer, bounce (and suppress), or fail the message. Returns the new status."""
    now = now or utcnow()
    first = message.first_attempt_at or now
    attempts = message.attempts + 1
    status: str
    next_at: datetime | None = None
    if error.kind is FailureKind.TEMPORARY:
        next_at = next_attempt(
            now, first, attempts, horizon, base=retry_base, retry_after=error.retry_after
        )
        status = MessageStatus.DEFERRED if next_at is not None else MessageStatus.FAILED
    elif error.kind is FailureKind.HARD_BOUNCE:
        status = MessageStatus.BOUNCED
    else:
        status = MessageStatus.FAILED
    detail = str(error)[:2000]
    if status == MessageStatus.FAILED and error.kind is FailureKind.TEMPORARY:
        detail = f"gave up after {attempts} attempts: {detail}"
    values: dict[str, object] = {
        "status": status,
        "attempts": attempts,
        "first_attempt_at": first,
        "last_error": detail,
        "error_kind": error.kind.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    if next_at is not None:
        values["next_attempt_at"] = next_at
    updated = session.execute(
        update(Message)
        .where(
            Message.id == message.id,
            # A lost lease (another worker took over) must not undo its newer outcome.
            and_(Message.status == MessageStatus.SENDING, Message.lease_owner == worker),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not getattr(updated, "rowcount", 1):
        if commit:
            session.rollback()
        return MessageStatus.SENDING  # nothing changed: the message is someone else's now
    session.add(_attempt(message.id, now, status, worker, error.code, detail))
    if status == MessageStatus.BOUNCED and message.customer_id is not None:
        customer = session.get(Customer, message.customer_id)
        if customer is not None:
            apply_withdrawal(
                session,
                customer,
                "bounce",
                source=f"delivery:{error.code or 'bounce'}",
                detail={"message_id": message.id, "reply": detail[:500]},
            )
    if commit:
        session.commit()
    return status
