"""The unsubscribe page's service: who a signed link names, unsubscribe, resubscribe with proof.

A GET only reads (`load_page`); `unsubscribe` is the RFC 8058 one-click POST and the page's
button alike; `resubscribe` records fresh consent (source, IP, the wording shown). The signed
links themselves (`sign_unsubscribe`, `verify_unsubscribe`...) live in `unsubscribe_links`, a
pure module the composer imports without the database layer; they are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.contacts.consent import ConsentProof, apply_resubscribe, apply_withdrawal
from dealmail.engagement.unsubscribe_links import (
    TEST_CUSTOMER_ID,
    UnsubscribeTarget,
    sign_unsubscribe,
    unsubscribe_mailto,
    unsubscribe_url,
    verify_unsubscribe,
)
from dealmail.errors import Conflict, NotFound
from dealmail.models import Campaign, Customer, CustomerStatus, Event, EventKind, Message, utcnow
from dealmail.shop import get_shop_settings

__all__ = [
    "UnsubscribePage",
    "UnsubscribeTarget",
    "load_page",
    "resubscribe",
    "sign_unsubscribe",
    "unsubscribe",
    "unsubscribe_mailto",
    "unsubscribe_url",
    "verify_unsubscribe",
]

RESUBSCRIBE_SOURCE = "unsubscribe-page"
UNSUBSCRIBE_SOURCE = "unsubscribe-link"
ONE_CLICK_SOURCE = "list-unsubscribe-one-click"


def resubscribe_wording(shop_name: str) -> str:
    """Shown beside the button and stored as the consent's wording: one text for both."""
    return f"Yes, I want {shop_name}'s emails with personal deals again."


@dataclass(frozen=True)
class UnsubscribePage:
    shop_name: str
    postal_address: str | None
    masked_email: str | None
    subscribed: bool
    is_test: bool
    known: bool  # False when the customer no longer exists
    can_resubscribe: bool
    wording: str
    changed: bool = False


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'*' * max(1, min(len(local) - 1, 6))}@{domain}"


def _target(secret: bytes, signed: str) -> UnsubscribeTarget:
    target = verify_unsubscribe(secret, signed)
    if target is None:
        raise NotFound("this unsubscribe link is not valid", code="invalid_link")
    return target


def _page(session: Session, target: UnsubscribeTarget, changed: bool = False) -> UnsubscribePage:
    shop = get_shop_settings(session)
    customer = (
        session.get(Customer, target.customer_id)
        if target.customer_id != TEST_CUSTOMER_ID
        else None
    )
    subscribed = customer is not None and customer.status == CustomerStatus.SUBSCRIBED
    return UnsubscribePage(
        shop_name=shop.shop_name,
        postal_address=shop.postal_address,
        masked_email=mask_email(customer.email) if customer else None,
        subscribed=subscribed,
        is_test=target.customer_id == TEST_CUSTOMER_ID,
        known=customer is not None,
        can_resubscribe=customer is not None and customer.status == CustomerStatus.UNSUBSCRIBED,
        wording=resubscribe_wording(shop.shop_name),
        changed=changed,
    )


def _customer(session: Session, target: UnsubscribeTarget) -> Customer | None:
    """The link's customer; a test send's link names nobody."""
    if target.customer_id == TEST_CUSTOMER_ID:
        return None
    return session.get(Customer, target.customer_id)


def load_page(session: Session, secret: bytes, signed: str) -> UnsubscribePage:
    return _page(session, _target(secret, signed))


def unsubscribe(
    session: Session,
    secret: bytes,
    signed: str,
    *,
    one_click: bool,
    ip: str | None = None,
    now: datetime | None = None,
) -> UnsubscribePage:
    """Idempotent: a second POST (providers retry) changes and records nothing more."""
    target = _target(secret, signed)
    customer = _customer(session, target)
    if customer is None:
        return _page(session, target)
    campaign_id = target.campaign_id if session.get(Campaign, target.campaign_id) else None
    source = ONE_CLICK_SOURCE if one_click else UNSUBSCRIBE_SOURCE
    changed = apply_withdrawal(
        session,
        customer,
        "unsubscribe",
        source=source,
        ip=ip,
        detail={"campaign_id": campaign_id},
    )
    if changed:
        message_id = None
        if campaign_id is not None:
            message_id = session.scalar(
                select(Message.id).where(
                    Message.campaign_id == campaign_id, Message.customer_id == customer.id
                )
            )
        session.add(
            Event(
                message_id=message_id,
                campaign_id=campaign_id,
                customer_id=customer.id,
                kind=EventKind.UNSUBSCRIBED,
                at=now or utcnow(),
                detail={"source": source, "ip": ip},
            )
        )
    session.commit()
    return _page(session, target, changed=changed)


def resubscribe(
    session: Session,
    secret: bytes,
    signed: str,
    *,
    ip: str | None = None,
    now: datetime | None = None,
) -> UnsubscribePage:
    target = _target(secret, signed)
    customer = _customer(session, target)
    if customer is None:
        raise NotFound("there is no customer to resubscribe", code="customer_not_found")
    if customer.status == CustomerStatus.SUBSCRIBED:
        return _page(session, target)
    if customer.status != CustomerStatus.UNSUBSCRIBED:
        raise Conflict(
            "this address cannot be resubscribed here (it bounced or complained); "
            "please contact the shop",
            code="cannot_resubscribe",
        )
    shop = get_shop_settings(session)
    apply_resubscribe(
        session,
        customer,
        ConsentProof(
            source=RESUBSCRIBE_SOURCE, at=now, ip=ip, wording=resubscribe_wording(shop.shop_name)
        ),
    )
    session.commit()
    return _page(session, target, changed=True)
