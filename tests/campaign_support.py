"""Builders for campaign, rendering and MIME tests: a composer without a database, and DB rows."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.campaigns.render import TemplateSource, compile_templates
from dealmail.contacts.identity import email_key, tag_key
from dealmail.coupons.tokens import new_nonce
from dealmail.deals.service import DealInput, create_deal
from dealmail.delivery import dkim
from dealmail.delivery.compose import Composer, Recipient
from dealmail.models import Customer, Deal, Tag
from dealmail.shop import ShopSettings, set_settings

SECRET = secrets.token_urlsafe(48).encode()
SHOP = ShopSettings(
    shop_name="Bäckerei Sonne",
    sender_name="Bäckerei Sonne",
    sender_email="hello@sonne.example",
    postal_address="Hauptstraße 1, 10115 Berlin",
    public_url="https://deals.sonne.example",
    timezone="Europe/Berlin",
)


def make_deal(**overrides: Any) -> Deal:
    fields: dict[str, Any] = {
        "name": "croissant",
        "kind": "percent_off",
        "value": Decimal("20"),
        "title": "20% off any pastry",
        "terms": "One per visit.",
        "valid_days": 14,
        "uses_per_coupon": 1,
    }
    fields.update(overrides)
    return Deal(**fields)


def make_key(selector: str = "s1", domain: str = "sonne.example") -> dkim.DkimKey:
    return dkim.DkimKey(
        selector=selector,
        domain=domain,
        private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def make_composer(
    source: TemplateSource | None = None,
    *,
    deal: Deal | None = None,
    with_deal: bool = True,
    key: dkim.DkimKey | None = None,
    content: dict[str, Any] | None = None,
    shop: ShopSettings = SHOP,
) -> Composer:
    source = source or TemplateSource(
        subject="{{ first_name | default('Hallo') }}, your pastry deal ☕",
        preheader="A treat for you",
        theme="classic",
        body_markdown="Hello **{{ first_name | default('there') }}**,\n\nfresh bread is waiting.",
    )
    return Composer(
        campaign_id=7,
        campaign_name="spring",
        compiled=compile_templates(source),
        shop=shop,
        deal=(deal or make_deal()) if with_deal else None,
        sender_name=shop.sender_name,
        sender_email=shop.sender_email,
        reply_to="help@sonne.example",
        content=content
        or {
            "heading": "Spring is here",
            "button_text": "Visit us",
            "button_url": "https://sonne.example/",
        },
        secret=SECRET,
        dkim_key=key,
    )


def make_recipient(n: int = 1, **overrides: Any) -> Recipient:
    fields: dict[str, Any] = {
        "message_row_id": n,
        "customer_id": 100 + n,
        "email": f"customer{n}@example.org",
        "first_name": "Jürgen",
        "last_name": "Müller",
        "attributes": {"city": "Berlin"},
        "coupon_nonce": new_nonce(),
        "coupon_expires_at": datetime(2026, 12, 31, 12, tzinfo=UTC),
    }
    fields.update(overrides)
    return Recipient(**fields)


def shop_ready(session: Session, **overrides: Any) -> None:
    """Shop settings that pass preflight."""
    values: dict[str, Any] = {
        "shop_name": "Sonne",
        "sender_email": "hello@sonne.example",
        "postal_address": "Hauptstrasse 1, 10115 Berlin",
        "public_url": "https://deals.sonne.example",
    }
    values.update(overrides)
    set_settings(session, values)


def add_customer(
    session: Session,
    email: str = "ada@example.com",
    first_name: str | None = "Ada",
    tags: tuple[str, ...] = (),
    **fields: Any,
) -> Customer:
    customer = Customer(email=email, email_key=email_key(email), first_name=first_name, **fields)
    for name in tags:
        tag = session.scalar(select(Tag).where(Tag.name_key == tag_key(name)))
        if tag is None:
            tag = Tag(name=name, name_key=tag_key(name))
        customer.tags.append(tag)
    session.add(customer)
    session.commit()
    return customer


def add_deal(session: Session, name: str = "croissant", **fields: Any) -> Deal:
    return create_deal(
        session,
        DealInput(
            name=name,
            kind=fields.pop("kind", "percent_off"),
            title=fields.pop("title", "20% off any pastry"),
            value=fields.pop("value", "20"),
            **fields,
        ),
    )
