"""Builders for redemption tests: a deal, customer, location, device and coupons made directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from dealmail.coupons.tokens import (
    derive_short_code,
    derive_token,
    new_nonce,
    short_code_hash,
    token_hash,
)
from dealmail.locations import service as locations
from dealmail.models import Coupon, Customer, Deal, Location, deal_locations


@dataclass(frozen=True)
class MadeCoupon:
    id: int
    token: str
    short_code: str


def make_deal(
    session: Session, name: str = "Spring", title: str = "10% off everything", **fields: object
) -> Deal:
    deal = Deal(name=name, kind=fields.pop("kind", "percent_off"), title=title, **fields)
    session.add(deal)
    session.commit()
    return deal


def limit_deal_to(session: Session, deal: Deal, *location_names: str) -> None:
    for name in location_names:
        location = locations.get_location(session, name)
        session.execute(deal_locations.insert().values(deal_id=deal.id, location_id=location.id))
    session.commit()


def make_customer(session: Session, email: str = "ada@example.com", first: str = "Ada") -> Customer:
    customer = Customer(email=email, email_key=email.lower(), first_name=first)
    session.add(customer)
    session.commit()
    return customer


def make_coupon(
    session: Session,
    secret: bytes,
    deal: Deal,
    customer: Customer | None = None,
    max_uses: int = 1,
    valid_from: datetime | None = None,
    expires_at: datetime | None = None,
    is_test: bool = False,
    revoked_at: datetime | None = None,
) -> MadeCoupon:
    nonce = new_nonce()
    token = derive_token(secret, nonce)
    short = derive_short_code(secret, nonce)
    coupon = Coupon(
        deal_id=deal.id,
        customer_id=customer.id if customer else None,
        nonce=nonce,
        token_hash=token_hash(token),
        short_code_hash=short_code_hash(secret, short),
        max_uses=max_uses,
        valid_from=valid_from,
        expires_at=expires_at,
        is_test=is_test,
        revoked_at=revoked_at,
    )
    session.add(coupon)
    session.commit()
    return MadeCoupon(coupon.id, token, short)


def make_location(session: Session, name: str = "Main St", timezone: str = "UTC") -> Location:
    return locations.add_location(session, name, address="1 High St", timezone=timezone)


def make_device(
    session: Session, name: str = "Till 1", location: str = "Main St"
) -> locations.NewDevice:
    return locations.add_device(session, name, location)
