"""Verdicts: the outcomes, their API statuses and words, and the JSON shapes of coupons and
redemptions that the API returns and idempotency records store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from dealmail.coupons.prepared import Prepared, Runner
from dealmail.coupons.validity import WindowState, first_valid_day, last_valid_day
from dealmail.models import Device, Location, Redemption


class Outcome(StrEnum):
    VALID = "valid"
    REDEEMED = "redeemed"
    ALREADY_REDEEMED = "already_redeemed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    NOT_VALID_HERE = "not_valid_here"
    TEST_COUPON = "test_coupon"
    UNKNOWN = "unknown"


HTTP_STATUS = {
    Outcome.VALID: 200,
    Outcome.REDEEMED: 201,
    Outcome.ALREADY_REDEEMED: 409,
    Outcome.EXPIRED: 410,
    Outcome.NOT_YET_VALID: 403,
    Outcome.REVOKED: 403,
    Outcome.NOT_VALID_HERE: 403,
    Outcome.TEST_COUPON: 403,
    Outcome.UNKNOWN: 404,
}

MESSAGES = {
    Outcome.VALID: "valid: this coupon can be redeemed here now",
    Outcome.REDEEMED: "redeemed",
    Outcome.ALREADY_REDEEMED: "this coupon has already been used as often as the deal allows",
    Outcome.EXPIRED: "this coupon has expired",
    Outcome.NOT_YET_VALID: "this coupon is not valid yet",
    Outcome.REVOKED: "this coupon was revoked by the shop",
    Outcome.NOT_VALID_HERE: "this deal is not valid at this location",
    Outcome.TEST_COUPON: "this is a test coupon from a test send; it can never be redeemed",
    Outcome.UNKNOWN: "no coupon has this code",
}


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    @property
    def outcome(self) -> str:
        return str(self.body.get("status") or self.body.get("code"))


@dataclass(frozen=True)
class CouponFacts:
    id: int
    deal_id: int
    campaign_id: int | None
    uses: int
    max_uses: int
    valid_from: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    is_test: bool
    deal_title: str
    deal_kind: str
    deal_value: Decimal | None
    deal_currency: str | None
    deal_terms: str | None
    first_name: str | None
    valid_here: bool
    shop_timezone: Any
    recent_failures: int
    short_code_misses: int
    has_record: bool

    @property
    def shop_zone(self) -> ZoneInfo:
        name = self.shop_timezone.get("v") if isinstance(self.shop_timezone, dict) else None
        try:
            return ZoneInfo(name or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def classify(facts: CouponFacts, window: WindowState) -> Outcome:
    """Why a coupon can or cannot be redeemed; the first reason that applies wins."""
    if facts.is_test:
        return Outcome.TEST_COUPON
    if facts.revoked_at is not None:
        return Outcome.REVOKED
    if facts.uses >= facts.max_uses:
        return Outcome.ALREADY_REDEEMED
    if not facts.valid_here:
        return Outcome.NOT_VALID_HERE
    if window is WindowState.NOT_YET_VALID:
        return Outcome.NOT_YET_VALID
    if window is WindowState.EXPIRED:
        return Outcome.EXPIRED
    return Outcome.VALID


def coupon_view(facts: CouponFacts, zone: ZoneInfo, uses: int | None = None) -> dict[str, Any]:
    used = facts.uses if uses is None else uses
    first_day = first_valid_day(facts.valid_from, zone)
    last_day = last_valid_day(facts.expires_at, zone)
    return {
        "id": facts.id,
        "deal": {
            "title": facts.deal_title,
            "kind": facts.deal_kind,
            "value": None if facts.deal_value is None else str(facts.deal_value),
            "currency": facts.deal_currency,
            "terms": facts.deal_terms,
        },
        "customer_first_name": facts.first_name,
        "uses": used,
        "max_uses": facts.max_uses,
        "uses_left": max(facts.max_uses - used, 0),
        "valid_from": iso(facts.valid_from),
        "expires_at": iso(facts.expires_at),
        "first_day": None if first_day is None else first_day.isoformat(),
        "last_day": None if last_day is None else last_day.isoformat(),
        "revoked": facts.revoked_at is not None,
        "is_test": facts.is_test,
    }


def redemption_rows(session: Session, *conditions: Any, order: Any, limit: int) -> list[Any]:
    return list(
        session.execute(
            select(Redemption, Location.name, Device.name)
            .outerjoin(Location, Location.id == Redemption.location_id)
            .outerjoin(Device, Device.id == Redemption.device_id)
            .where(*conditions)
            .order_by(*order)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
    )


def redemption_view(row: Any, location_name: str | None, device_name: str | None) -> dict[str, Any]:
    """A `Redemption` (or a row with its attributes) as the API shows it."""
    return {
        "id": row.id,
        "kind": "void" if row.voids_id is not None else "redemption",
        "coupon_id": row.coupon_id,
        "campaign_id": row.campaign_id,
        "redeemed_at": iso(row.redeemed_at),
        "location": None
        if row.location_id is None
        else {"id": row.location_id, "name": location_name},
        "device": None if row.device_id is None else {"id": row.device_id, "name": device_name},
        "order_reference": row.order_reference,
        "discount_value": None if row.discount_value is None else str(row.discount_value),
        "voids_id": row.voids_id,
        "voided_by_id": row.voided_by_id,
        "reason": row.reason,
    }


_REDEMPTION_FIELDS = (
    "id",
    "coupon_id",
    "campaign_id",
    "location_id",
    "device_id",
    "redeemed_at",
    "discount_value",
    "order_reference",
    "voids_id",
    "voided_by_id",
    "reason",
)
_LAST_REDEMPTION = Prepared(
    select(
        *(getattr(Redemption, field) for field in _REDEMPTION_FIELDS),
        Location.name,
        Device.name,
    )
    .outerjoin(Location, Location.id == Redemption.location_id)
    .outerjoin(Device, Device.id == Redemption.device_id)
    .where(
        Redemption.coupon_id == bindparam("coupon_id"),
        Redemption.voids_id.is_(None),
        Redemption.voided_by_id.is_(None),
    )
    .order_by(Redemption.redeemed_at.desc(), Redemption.id.desc())
    .limit(1)
)


@dataclass(frozen=True)
class _RedemptionRow:
    id: int
    coupon_id: int
    campaign_id: int | None
    location_id: int | None
    device_id: int | None
    redeemed_at: datetime
    discount_value: Decimal | None
    order_reference: str | None
    voids_id: int | None
    voided_by_id: int | None
    reason: str | None


def last_redemption(source: Session | Runner, coupon_id: int) -> dict[str, Any] | None:
    """The coupon's latest redemption that still counts (not a void, not voided), or None."""
    row = Runner.of(source).first(_LAST_REDEMPTION, {"coupon_id": coupon_id})
    if row is None:
        return None
    *fields, location_name, device_name = row
    return redemption_view(_RedemptionRow(*fields), location_name, device_name)


def refusal(outcome: Outcome, coupon: dict[str, Any] | None, last: dict[str, Any] | None) -> Answer:
    body: dict[str, Any] = {"code": outcome.value, "message": MESSAGES[outcome]}
    if coupon is not None:
        body["coupon"] = coupon
        body["last_redemption"] = last
    return Answer(HTTP_STATUS[outcome], body)
