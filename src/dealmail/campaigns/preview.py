"""Preview and test send: exactly what a customer would get, shown locally or mailed to staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.campaigns.checks import sample_recipients
from dealmail.campaigns.service import get_campaign
from dealmail.config import Settings
from dealmail.contacts.identity import email_key
from dealmail.coupons.issue import issue_coupon
from dealmail.coupons.tokens import new_nonce
from dealmail.deals.validity import coupon_validity
from dealmail.delivery.backends import SendError, get_backend
from dealmail.delivery.compose import Composer, Recipient
from dealmail.errors import DomainError, InvalidInput, NotFound
from dealmail.models import Customer, Deal, utcnow
from dealmail.shop import get_shop_settings


@dataclass(frozen=True)
class TestSendResult:
    to: str
    message_id: str
    backend: str
    short_code: str | None
    coupon_url: str | None


def _customer(session: Session, email: str) -> Customer:
    customer = session.scalar(select(Customer).where(Customer.email_key == email_key(email)))
    if customer is None:
        raise NotFound(f"no customer with address {email!r}", code="customer_not_found")
    return customer


def _recipient_from(
    customer: Customer | None,
    *,
    email: str | None,
    nonce: str | None,
    expires_at: datetime | None,
    customer_id: int | None,
    is_test: bool,
) -> Recipient:
    if customer is None:
        sample = sample_recipients()[0]
        return Recipient(
            message_row_id=None,
            customer_id=customer_id,
            email=email or sample.email,
            first_name=sample.first_name,
            last_name=sample.last_name,
            attributes=sample.attributes,
            coupon_nonce=nonce,
            coupon_expires_at=expires_at,
            coupon_is_test=is_test,
        )
    return Recipient(
        message_row_id=None,
        customer_id=customer_id,
        email=email or customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        attributes=dict(customer.attributes or {}),
        coupon_nonce=nonce,
        coupon_expires_at=expires_at,
        coupon_is_test=is_test,
    )


def preview_html(
    session: Session,
    name: str,
    settings: Settings,
    *,
    customer_email: str | None = None,
    now: datetime | None = None,
) -> str:
    """The HTML that customer (or a sample one) would get, the QR inlined as a `data:` image.

    The preview's coupon is drawn from a fresh nonce and saved nowhere: its QR opens no page.
    """
    campaign = get_campaign(session, name)
    customer = _customer(session, customer_email) if customer_email else None
    deal = session.get(Deal, campaign.deal_id) if campaign.deal_id is not None else None
    expires_at = coupon_validity(deal, now or utcnow())[1] if deal else None
    composer = Composer.from_campaign(session, campaign, settings)
    recipient = _recipient_from(
        customer,
        email=None,
        nonce=new_nonce() if deal else None,
        expires_at=expires_at,
        customer_id=customer.id if customer else None,
        is_test=False,
    )
    return composer.preview_html(recipient)


def send_test(
    session: Session,
    name: str,
    to: str,
    settings: Settings,
    *,
    customer_email: str | None = None,
    now: datetime | None = None,
) -> TestSendResult:
    """Mail the campaign to `to` with a test coupon (never redeemable) through the backend."""
    try:
        address = validate_email(to, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"--to: {exc}", code="invalid_email") from None
    campaign = get_campaign(session, name)
    customer = _customer(session, customer_email) if customer_email else None
    deal = session.get(Deal, campaign.deal_id) if campaign.deal_id is not None else None
    nonce = expires_at = None
    short_code = coupon_link = None
    if deal is not None:
        issued = issue_coupon(
            session,
            settings.secret_key_bytes(),
            deal,
            campaign_id=campaign.id,
            customer_id=customer.id if customer else None,
            is_test=True,
            now=now,
        )
        nonce, expires_at = issued.coupon.nonce, issued.coupon.expires_at
        short_code = issued.short_code
        coupon_link = f"{get_shop_settings(session).public_url}/c/{issued.token}"
    session.commit()
    composer = Composer.for_campaign(session, campaign.id, settings)
    # A test message's unsubscribe link names no customer: a click there unsubscribes nobody.
    recipient = _recipient_from(
        customer, email=address, nonce=nonce, expires_at=expires_at, customer_id=None, is_test=True
    )
    message = composer.compose(recipient)
    backend = get_backend(settings, get_shop_settings(session).email_backend)
    try:
        backend.send(message)
    except SendError as exc:
        raise DomainError(
            f"the {backend.name} backend refused the test message: {exc}", code="send_failed"
        ) from None
    finally:
        backend.close()
    return TestSendResult(
        to=address,
        message_id=message.message_id,
        backend=backend.name,
        short_code=short_code,
        coupon_url=coupon_link,
    )
