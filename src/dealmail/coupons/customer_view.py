"""What a customer sees at /c/<token>: deal, code, expiry, status. Reads only; never redeems."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.coupons.tokens import (
    derive_short_code,
    format_short_code,
    looks_like_token,
    token_hash,
)
from dealmail.deals.validity import value_text
from dealmail.models import Coupon, Deal, utcnow
from dealmail.shop import get_shop_settings

STATUS_TEXT = {
    "valid": "Valid",
    "used": "Already used",
    "expired": "Expired",
    "not_yet_valid": "Not valid yet",
    "revoked": "No longer valid",
    "test": "Test coupon: cannot be redeemed",
}


@dataclass(frozen=True)
class CustomerCoupon:
    token: str
    shop_name: str
    postal_address: str | None
    headline: str
    title: str
    terms: str | None
    short_code: str
    valid_from: str | None
    expires: str | None
    status: str  # valid, used, expired, not_yet_valid, revoked, test
    status_text: str
    uses: int
    max_uses: int
    qr_path: str


def coupon_status(coupon: Coupon, now: datetime) -> str:
    if coupon.is_test:
        return "test"
    if coupon.revoked_at is not None:
        return "revoked"
    if coupon.uses >= coupon.max_uses:
        return "used"
    if coupon.expires_at is not None and coupon.expires_at <= now:
        return "expired"
    if coupon.valid_from is not None and coupon.valid_from > now:
        return "not_yet_valid"
    return "valid"


def find_by_token(session: Session, token: str) -> Coupon | None:
    if not looks_like_token(token):
        return None
    return session.scalar(select(Coupon).where(Coupon.token_hash == token_hash(token)))


def customer_coupon(
    session: Session, secret: bytes, token: str, *, now: datetime | None = None
) -> CustomerCoupon | None:
    coupon = find_by_token(session, token)
    if coupon is None:
        return None
    deal = session.get(Deal, coupon.deal_id)
    if deal is None:
        return None
    shop = get_shop_settings(session)
    status = coupon_status(coupon, now or utcnow())

    def local(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        day = moment.astimezone(shop.zone).date()
        return f"{day.day} {day:%B %Y}"

    return CustomerCoupon(
        token=token,
        shop_name=shop.shop_name,
        postal_address=shop.postal_address,
        headline=value_text(deal),
        title=deal.title,
        terms=deal.terms,
        short_code=format_short_code(derive_short_code(secret, coupon.nonce)),
        valid_from=local(coupon.valid_from),
        expires=local(coupon.expires_at),
        status=status,
        status_text=STATUS_TEXT[status],
        uses=coupon.uses,
        max_uses=coupon.max_uses,
        qr_path=f"/q/{token}.png",
    )


def coupon_url(session: Session, token: str) -> str:
    return f"{get_shop_settings(session).public_url.rstrip('/')}/c/{token}"
