"""Turning a campaign's audience into message rows (resumably) and giving each its coupon.

Materialisation pages through the audience by customer id with one `INSERT … SELECT` per batch
and moves `Campaign.materialise_cursor` in the same transaction, so a crash neither loses nor
duplicates anyone (`UNIQUE(campaign_id, customer_id)` backs that up). No Python object per
recipient: a million rows take seconds.

Coupons are issued when a message is claimed for its first send, in the claim's transaction
(see `issue_coupons`): random-keyed unique indexes (token and short-code hashes) insert at a
fraction of the speed of the id-ordered message rows, so doing them up front would turn seconds
into minutes; issued at claim time they cost nothing noticeable per message, recipients skipped
before sending never hold a coupon, and a re-sent message keeps its coupon (same nonce).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.contacts.audience import audience_select
from dealmail.coupons.tokens import derive_short_code, derive_token, new_nonce, short_code_hash
from dealmail.coupons.tokens import token_hash as hash_token
from dealmail.deals import coupon_validity
from dealmail.errors import NotFound
from dealmail.models import (
    Campaign,
    Coupon,
    Customer,
    Deal,
    Message,
    MessageStatus,
    UTCDateTime,
    utcnow,
)

DEFAULT_BATCH = 20_000


def materialise_batch(
    session: Session, campaign_id: int, batch_size: int = DEFAULT_BATCH, now: datetime | None = None
) -> int | None:
    """Insert the next batch of message rows; commits. Rows added, or None once complete."""
    now = now or utcnow()
    campaign = session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id}", code="campaign_not_found")
    if campaign.materialised_at is not None:
        session.commit()
        return None
    cursor = campaign.materialise_cursor
    page = (
        audience_select(session, campaign.audience)
        .where(Customer.id > cursor)
        .order_by(Customer.id)
        .limit(batch_size)
        .subquery()
    )
    last = session.scalar(select(func.max(page.c.id)))
    if last is None:
        campaign.materialised_at = now
        session.commit()
        return None
    chosen = (
        audience_select(session, campaign.audience)
        .order_by(None)
        .add_columns(Customer.email)
        .where(Customer.id > cursor, Customer.id <= last)
        .subquery()
    )
    at = literal(now, UTCDateTime())
    source = select(
        literal(campaign_id),
        chosen.c.id,
        chosen.c.email,
        literal(MessageStatus.QUEUED.value),
        literal(0),
        at,
        at,
        at,
    ).where(chosen.c.id > cursor)  # SQLite needs a WHERE before ON CONFLICT here
    columns = [
        "campaign_id",
        "customer_id",
        "email",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
        "updated_at",
    ]
    dialect = session.get_bind().dialect.name
    maker = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        maker(Message)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
    )
    session.execute(statement)
    added = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.campaign_id == campaign_id,
            Message.customer_id > cursor,
            Message.customer_id <= last,
        )
    )
    campaign.materialise_cursor = last
    session.commit()
    return added or 0


def materialise(
    session: Session,
    campaign_id: int,
    *,
    batch_size: int = DEFAULT_BATCH,
    now: datetime | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """All remaining batches; safe to call again after a crash or from several workers."""
    total = 0
    while (added := materialise_batch(session, campaign_id, batch_size, now)) is not None:
        total += added
        if on_batch is not None:
            on_batch(added)
    return total


def issue_coupons(
    session: Session, message_ids: Sequence[int], settings: Settings, now: datetime | None = None
) -> int:
    """Give every listed message of a campaign with a deal its coupon, if it has none yet.

    Runs inside the caller's transaction (the claim); does not commit.
    """
    if not message_ids:
        return 0
    now = now or utcnow()
    rows = session.execute(
        select(Message.id, Message.campaign_id, Message.customer_id, Campaign.deal_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(
            Message.id.in_(list(message_ids)),
            Campaign.deal_id.is_not(None),
            ~select(Coupon.id).where(Coupon.message_id == Message.id).exists(),
        )
    ).all()
    if not rows:
        return 0
    key = settings.secret_key_bytes()
    deal_ids = {row[3] for row in rows if row[3] is not None}
    deals = {deal.id: deal for deal in session.scalars(select(Deal).where(Deal.id.in_(deal_ids)))}
    coupons = []
    for message_id, campaign_id, customer_id, deal_id in rows:
        deal = deals.get(deal_id or 0)
        if deal is None:
            continue
        valid_from, expires_at = coupon_validity(deal, now)
        nonce = new_nonce()
        coupons.append(
            {
                "message_id": message_id,
                "campaign_id": campaign_id,
                "customer_id": customer_id,
                "deal_id": deal_id,
                "nonce": nonce,
                "token_hash": hash_token(derive_token(key, nonce)),
                "short_code_hash": short_code_hash(key, derive_short_code(key, nonce)),
                "uses": 0,
                "max_uses": deal.uses_per_coupon,
                "valid_from": valid_from,
                "expires_at": expires_at,
                "is_test": False,
                "short_code_misses": 0,
                "created_at": now,
            }
        )
    session.execute(insert(Coupon), coupons)
    return len(coupons)
