"""Issue coupons: a random nonce per coupon; the token and short code are stored only hashed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from dealmail.coupons.tokens import (
    derive_short_code,
    derive_token,
    format_short_code,
    new_nonce,
    short_code_hash,
    token_hash,
)
from dealmail.deals.validity import coupon_validity
from dealmail.models import Coupon, Deal, utcnow


@dataclass(frozen=True)
class IssuedCoupon:
    coupon: Coupon
    token: str
    short_code: str  # formatted, K7QM-2XPA-9D


def coupon_row(
    secret: bytes,
    deal: Deal,
    *,
    campaign_id: int | None,
    customer_id: int | None,
    message_id: int | None,
    is_test: bool,
    issued_at: datetime,
    nonce: str | None = None,
) -> Coupon:
    """A new Coupon (not yet added to a session) with its hashes and validity filled in."""
    nonce = nonce or new_nonce()
    valid_from, expires_at = coupon_validity(deal, issued_at)
    return Coupon(
        message_id=message_id,
        campaign_id=campaign_id,
        customer_id=customer_id,
        deal_id=deal.id,
        nonce=nonce,
        token_hash=token_hash(derive_token(secret, nonce)),
        short_code_hash=short_code_hash(secret, derive_short_code(secret, nonce)),
        max_uses=deal.uses_per_coupon,
        valid_from=valid_from,
        expires_at=expires_at,
        is_test=is_test,
        created_at=issued_at,
    )


def issue_coupon(
    session: Session,
    secret: bytes,
    deal: Deal,
    *,
    campaign_id: int | None,
    customer_id: int | None,
    message_id: int | None = None,
    is_test: bool = False,
    now: datetime | None = None,
) -> IssuedCoupon:
    """Add one coupon to the session (flushed, not committed): the caller commits once."""
    coupon = coupon_row(
        secret,
        deal,
        campaign_id=campaign_id,
        customer_id=customer_id,
        message_id=message_id,
        is_test=is_test,
        issued_at=now or utcnow(),
    )
    session.add(coupon)
    session.flush()
    return IssuedCoupon(
        coupon=coupon,
        token=derive_token(secret, coupon.nonce),
        short_code=format_short_code(derive_short_code(secret, coupon.nonce)),
    )
