"""Read-only views the dashboard needs beside the contacts queries: a customer's coupons and
redemptions, and the live size of a segment rule set that is not saved yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from dealmail.contacts.audience import mailable_clause
from dealmail.contacts.rules import rules_clause
from dealmail.models import Campaign, Coupon, Customer, Deal, Device, Location, Redemption

COUPONS_SHOWN = 200


@dataclass(frozen=True)
class RuleCount:
    members: int  # customers matching the rules, whatever their status
    mailable: int  # of whom subscribed and not suppressed


def count_matching(session: Session, rules: dict[str, Any]) -> RuleCount:
    """How many customers a rule set matches, before it is saved (rules as contacts.rules)."""
    where = rules_clause(rules)
    members, mailable = session.execute(
        select(func.count(Customer.id), func.count(Customer.id).filter(mailable_clause())).where(
            where
        )
    ).one()
    return RuleCount(members=members or 0, mailable=mailable or 0)


def customer_coupons(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """The customer's coupons, newest first: campaign, deal, uses, expiry, state."""
    rows = session.execute(
        select(
            Coupon.id,
            Campaign.name,
            Deal.title,
            Coupon.uses,
            Coupon.max_uses,
            Coupon.expires_at,
            Coupon.revoked_at,
            Coupon.is_test,
            Coupon.created_at,
        )
        .join(Deal, Deal.id == Coupon.deal_id)
        .outerjoin(Campaign, Campaign.id == Coupon.campaign_id)
        .where(Coupon.customer_id == customer_id)
        .order_by(Coupon.created_at.desc(), Coupon.id.desc())
        .limit(COUPONS_SHOWN)
    )
    return [
        {
            "coupon": coupon_id,
            "campaign": campaign or "",
            "deal": deal,
            "used": f"{uses} of {max_uses}",
            "expires": expires_at,
            "state": "test" if is_test else "revoked" if revoked_at else "",
            "issued": created_at,
        }
        for (coupon_id, campaign, deal, uses, max_uses, expires_at, revoked_at, is_test,
             created_at) in rows
    ]  # fmt: skip


def customer_redemptions(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """Every redemption of the customer's coupons (voided ones marked), newest first."""
    reversal = aliased(Redemption)
    rows = session.execute(
        select(
            Redemption.redeemed_at,
            Campaign.name,
            Location.name,
            Device.name,
            Redemption.discount_value,
            Redemption.voided_by_id,
            reversal.reason,
        )
        .join(Coupon, Coupon.id == Redemption.coupon_id)
        .outerjoin(Campaign, Campaign.id == Redemption.campaign_id)
        .outerjoin(Location, Location.id == Redemption.location_id)
        .outerjoin(Device, Device.id == Redemption.device_id)
        .outerjoin(reversal, reversal.id == Redemption.voided_by_id)
        .where(Coupon.customer_id == customer_id, Redemption.voids_id.is_(None))
        .order_by(Redemption.redeemed_at.desc(), Redemption.id.desc())
        .limit(COUPONS_SHOWN)
    )
    return [
        {
            "when": at,
            "campaign": campaign or "",
            "location": location or "",
            "device": device or "",
            "discount": "" if value is None else str(value),
            "voided": ("yes" + (f" ({reason})" if reason else "")) if voided_by else "",
        }
        for at, campaign, location, device, value, voided_by, reason in rows
    ]
