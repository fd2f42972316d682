"""Delivery test helpers: bulk customers, campaigns and deals written straight to the DB."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from dealmail.contacts.identity import email_hash, email_key
from dealmail.models import Campaign, CampaignStatus, Customer, Deal


def add_customers(
    session: Session, count: int, *, prefix: str = "c", domain: str = "example.com"
) -> list[int]:
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for n in range(count):
        email = f"{prefix}{n:06d}@{domain}"
        rows.append(
            {
                "email": email,
                "email_key": email_key(email),
                "email_hash": email_hash(email),
                "first_name": f"First{n}",
                "status": "subscribed",
                "attributes": {},
                "consent_at": now,
                "consent_source": "test",
                "created_at": now,
                "updated_at": now,
            }
        )
    for start in range(0, len(rows), 5000):
        session.execute(insert(Customer), rows[start : start + 5000])
    session.commit()
    return list(
        session.scalars(
            select(Customer.id)
            .where(Customer.email.like(f"{prefix}%@{domain}"))
            .order_by(Customer.id)
        )
    )


def add_deal(session: Session, name: str = "ten-off") -> Deal:
    deal = Deal(name=name, kind="percent_off", value=Decimal(10), title="10% off", valid_days=30)
    session.add(deal)
    session.commit()
    return deal


def add_campaign(
    session: Session,
    name: str = "spring",
    *,
    status: str = CampaignStatus.SENDING,
    deal: Deal | None = None,
    audience: dict[str, Any] | None = None,
    **fields: Any,
) -> Campaign:
    campaign = Campaign(
        name=name,
        status=status,
        subject=fields.pop("subject", "Spring deals"),
        from_email=fields.pop("from_email", "shop@shop.example"),
        from_name=fields.pop("from_name", "The Shop"),
        audience=audience or {},
        deal_id=deal.id if deal is not None else None,
        content=fields.pop("content", {"heading": "Hello", "body_markdown": "Spring is here."}),
        theme=fields.pop("theme", None),
        **fields,
    )
    session.add(campaign)
    session.commit()
    return campaign
