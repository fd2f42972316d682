"""Deal service: create, edit, list, show; every rule a deal must obey on the way in."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.deals.validity import value_text
from dealmail.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from dealmail.locations.service import get_location
from dealmail.models import Campaign, CampaignStatus, Coupon, Deal, DealKind, utcnow
from dealmail.shop import get_shop_settings

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
KINDS_NEEDING_VALUE = (DealKind.PERCENT_OFF, DealKind.AMOUNT_OFF)
MAX_VALID_DAYS = 3650
# A campaign in these states has issued (or is issuing) coupons that carry the deal.
SENT_STATUSES = (CampaignStatus.SENDING, CampaignStatus.PAUSED, CampaignStatus.SENT)
# What an issued coupon promises: these never change once a coupon is out.
PROMISED_FIELDS = ("kind", "value", "currency", "uses_per_coupon", "valid_from")


@dataclass(frozen=True)
class DealInput:
    name: str
    kind: str
    title: str
    value: str | Decimal | None = None
    currency: str | None = None
    terms: str | None = None
    # A date is a whole day in the shop's time zone; a datetime is that instant.
    valid_from: date | datetime | None = None
    valid_until: date | datetime | None = None
    valid_days: int | None = None
    uses_per_coupon: int = 1
    locations: tuple[str, ...] = ()  # names; empty means valid at every location


def parse_day_or_moment(text: str) -> date | datetime:
    """`2026-12-31` (a whole day where the shop is) or an ISO datetime (naive means UTC)."""
    try:
        if len(text.strip()) == 10:
            return date.fromisoformat(text.strip())
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"{text!r} is not a date (YYYY-MM-DD) or ISO datetime", code="invalid_date"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def as_instant(
    value: date | datetime | None, zone: ZoneInfo, *, end_of_day: bool
) -> datetime | None:
    """A day becomes its first or last second in the shop's zone, so the coupon's valid days
    read the same at the counter as the owner typed them."""
    if value is None or isinstance(value, datetime):
        return value
    moment = time(23, 59, 59) if end_of_day else time(0, 0)
    return datetime.combine(value, moment, tzinfo=zone).astimezone(UTC)


def _parse_value(value: str | Decimal | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        parsed = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"deal value {value!r} is not a number", code="invalid_value") from exc
    if not parsed.is_finite() or parsed <= 0:
        raise InvalidInput("a deal value must be a positive number", code="invalid_value")
    return parsed


def _validated(data: DealInput, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    valid_from = as_instant(data.valid_from, zone, end_of_day=False)
    valid_until = as_instant(data.valid_until, zone, end_of_day=True)
    if not NAME_RE.match(data.name):
        raise InvalidInput(
            "a deal name is 1-100 letters, digits, spaces or . _ - "
            "(starting with a letter or digit)",
            code="invalid_name",
        )
    try:
        kind = DealKind(data.kind)
    except ValueError as exc:
        known = ", ".join(k.value for k in DealKind)
        raise InvalidInput(
            f"unknown deal kind {data.kind!r}; one of {known}", code="invalid_kind"
        ) from exc
    title = data.title.strip()
    if not title:
        raise InvalidInput("a deal needs a title", code="missing_title")
    value = _parse_value(data.value)
    if kind in KINDS_NEEDING_VALUE and value is None:
        raise InvalidInput(f"a {kind.value} deal needs --value", code="missing_value")
    if kind == DealKind.PERCENT_OFF and value is not None and value > 100:
        raise InvalidInput("a percentage cannot exceed 100", code="invalid_value")
    currency = (data.currency or "").strip().upper() or None
    if kind == DealKind.AMOUNT_OFF and currency is None:
        raise InvalidInput(
            "an amount_off deal needs --currency (e.g. EUR)", code="missing_currency"
        )
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidInput("a currency is a 3-letter ISO code (EUR)", code="invalid_currency")
    if data.valid_days is not None and data.valid_until is not None:
        raise InvalidInput(
            "choose --valid-days or --valid-until, not both", code="conflicting_validity"
        )
    if data.valid_days is not None and not 1 <= data.valid_days <= MAX_VALID_DAYS:
        raise InvalidInput(
            f"--valid-days must be between 1 and {MAX_VALID_DAYS}", code="invalid_validity"
        )
    if valid_until is not None and valid_until <= now:
        raise InvalidInput("--valid-until is in the past", code="invalid_validity")
    if valid_from and valid_until and valid_from >= valid_until:
        raise InvalidInput("valid-from must be before valid-until", code="invalid_validity")
    if data.uses_per_coupon < 1:
        raise InvalidInput("uses per coupon must be at least 1", code="invalid_uses")
    return {
        "name": data.name,
        "kind": kind.value,
        "title": title,
        "value": value,
        "currency": currency,
        "terms": (data.terms or "").strip() or None,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "valid_days": data.valid_days,
        "uses_per_coupon": data.uses_per_coupon,
    }


def create_deal(session: Session, data: DealInput, *, now: datetime | None = None) -> Deal:
    fields = _validated(data, now or utcnow(), get_shop_settings(session).zone)
    if session.scalar(select(Deal.id).where(Deal.name == data.name)) is not None:
        raise AlreadyExists(f"a deal named {data.name!r} already exists", code="deal_exists")
    deal = Deal(**fields)
    deal.locations = [get_location(session, name) for name in dict.fromkeys(data.locations)]
    session.add(deal)
    session.commit()
    return deal


@dataclass(frozen=True)
class DealChanges:
    """What to change in a deal; None leaves a field as it is."""

    title: str | None = None
    terms: str | None = None  # "" clears the terms
    kind: str | None = None
    value: str | Decimal | None = None
    currency: str | None = None
    valid_from: date | datetime | None = None
    # Giving valid_until, valid_days or no_end replaces the deal's whole validity.
    valid_until: date | datetime | None = None
    valid_days: int | None = None
    no_end: bool = False
    uses_per_coupon: int | None = None
    locations: tuple[str, ...] | None = None


def is_in_use(session: Session, deal: Deal) -> bool:
    """True once a campaign with this deal has started sending or a real coupon carries it."""
    campaign = session.scalar(
        select(Campaign.id)
        .where(Campaign.deal_id == deal.id, Campaign.status.in_(SENT_STATUSES))
        .limit(1)
    )
    if campaign is not None:
        return True
    coupon = session.scalar(
        select(Coupon.id).where(Coupon.deal_id == deal.id, Coupon.is_test.is_(False)).limit(1)
    )
    return coupon is not None


def _merged(deal: Deal, changes: DealChanges) -> DealInput:
    new_validity = (
        changes.no_end or changes.valid_until is not None or changes.valid_days is not None
    )
    return DealInput(
        name=deal.name,
        kind=deal.kind if changes.kind is None else changes.kind,
        title=deal.title if changes.title is None else changes.title,
        value=deal.value if changes.value is None else changes.value,
        currency=deal.currency if changes.currency is None else changes.currency,
        terms=deal.terms if changes.terms is None else changes.terms,
        valid_from=deal.valid_from if changes.valid_from is None else changes.valid_from,
        valid_until=changes.valid_until if new_validity else deal.valid_until,
        valid_days=changes.valid_days if new_validity else deal.valid_days,
        uses_per_coupon=(
            deal.uses_per_coupon if changes.uses_per_coupon is None else changes.uses_per_coupon
        ),
        locations=tuple(loc.name for loc in deal.locations)
        if changes.locations is None
        else changes.locations,
    )


def _shortens(deal: Deal, fields: dict[str, Any]) -> bool:
    """Would the new validity end sooner than the old one (or switch how it is counted)?"""
    new_until, new_days = fields["valid_until"], fields["valid_days"]
    if new_until is None and new_days is None:
        return False  # no end at all: never shorter
    if deal.valid_until is not None:
        return new_until is None or bool(new_until < deal.valid_until)
    if deal.valid_days is not None:
        return new_days is None or bool(new_days < deal.valid_days)
    return True  # had no end; any end is shorter


def update_deal(
    session: Session, name: str, changes: DealChanges, *, now: datetime | None = None
) -> Deal:
    """Edit deal NAME with the same rules as on creation.

    Once the deal is in use (a campaign carrying it is sending, paused or sent, or a real coupon
    was issued for it), what a coupon promises is fixed: kind, value, currency, uses per coupon,
    valid-from and locations are refused with `deal_in_use`, and the validity may only be
    extended (a later last day, or more days after sending), never shortened or switched
    between the two. Coupons already issued keep the expiry they were issued with. The title
    and terms wording can always change. A deal is never renamed.
    """
    deal = get_deal(session, name)
    if changes.no_end and (changes.valid_until is not None or changes.valid_days is not None):
        raise InvalidInput(
            "choose no end, --valid-days or --valid-until, not two", code="conflicting_validity"
        )
    zone = get_shop_settings(session).zone
    data = _merged(deal, changes)
    keeps_until = data.valid_until == deal.valid_until and data.valid_until is not None
    # An unchanged last day may lie in the past (an expired deal): that alone is no error.
    checked = _validated(
        replace(data, valid_until=None) if keeps_until else data,
        now or utcnow(),
        zone,
    )
    if keeps_until:
        checked["valid_until"] = deal.valid_until
    locations = [get_location(session, loc) for loc in dict.fromkeys(data.locations)]
    if is_in_use(session, deal):
        changed = [field for field in PROMISED_FIELDS if checked[field] != getattr(deal, field)]
        if {loc.id for loc in locations} != {loc.id for loc in deal.locations}:
            changed.append("locations")
        if _shortens(deal, checked):
            changed.append("validity (it can only be extended)")
        if changed:
            raise Conflict(
                f"deal {name!r} is already on issued coupons; cannot change " + ", ".join(changed),
                code="deal_in_use",
            )
    for field, value in checked.items():
        setattr(deal, field, value)
    deal.locations = locations
    session.commit()
    return deal


def get_deal(session: Session, name: str) -> Deal:
    deal = session.scalar(select(Deal).where(Deal.name == name))
    if deal is None:
        raise NotFound(f"no deal named {name!r}", code="deal_not_found")
    return deal


def list_deals(session: Session) -> list[Deal]:
    return list(session.scalars(select(Deal).order_by(Deal.created_at, Deal.id)))


def is_expired(deal: Deal, now: datetime | None = None) -> bool:
    return deal.valid_until is not None and deal.valid_until <= (now or utcnow())


def describe(deal: Deal, now: datetime | None = None) -> dict[str, Any]:
    """A deal as plain data for `show`, `list --json` and the admin screens."""
    return {
        "name": deal.name,
        "kind": deal.kind,
        "value": None if deal.value is None else str(deal.value),
        "currency": deal.currency,
        "headline": value_text(deal),
        "title": deal.title,
        "terms": deal.terms,
        "valid_from": deal.valid_from.isoformat() if deal.valid_from else None,
        "valid_until": deal.valid_until.isoformat() if deal.valid_until else None,
        "valid_days": deal.valid_days,
        "uses_per_coupon": deal.uses_per_coupon,
        "locations": [location.name for location in deal.locations],
        "expired": is_expired(deal, now),
    }
