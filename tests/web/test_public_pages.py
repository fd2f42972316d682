"""Public pages: unsubscribe (GET confirms, POST one-click in both encodings), resubscribe with
fresh consent, the customer's coupon page and its QR image."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign_support import add_customer, add_deal, shop_ready
from dealmail.campaigns.service import CampaignInput, create_campaign
from dealmail.config import Settings
from dealmail.coupons.issue import issue_coupon
from dealmail.engagement.unsubscribe_links import sign_unsubscribe
from dealmail.models import (
    Campaign,
    ConsentEvent,
    Coupon,
    Customer,
    Deal,
    Event,
    Message,
    Suppression,
    utcnow,
)
from dealmail.web.app import create_app


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False)


def setup_link(session: Session, settings: Settings) -> tuple[Customer, Campaign, str]:
    shop_ready(session)
    customer = add_customer(session, "ada@example.com")
    campaign = create_campaign(session, "spring", CampaignInput(subject="Hi"))
    session.add(Message(campaign_id=campaign.id, customer_id=customer.id, email=customer.email))
    session.commit()
    return (
        customer,
        campaign,
        sign_unsubscribe(settings.secret_key_bytes(), customer.id, campaign.id),
    )


def status_of(session: Session, customer: Customer) -> str:
    session.expire_all()
    refreshed = session.get(Customer, customer.id)
    assert refreshed is not None
    status = refreshed.status
    session.rollback()  # SQLite: release the test's transaction before the app writes
    return status


def test_get_shows_a_confirm_page_and_changes_nothing(
    session: Session, settings: Settings, client: TestClient
) -> None:
    customer, _campaign, signed = setup_link(session, settings)
    for _ in range(3):  # link scanners prefetch, sometimes repeatedly
        response = client.get(f"/u/{signed}")
        assert response.status_code == 200
    assert "Unsubscribe" in response.text
    assert 'method="post"' in response.text
    assert "a**@example.com" in response.text
    assert "ada@example.com" not in response.text
    assert status_of(session, customer) == "subscribed"
    assert session.scalar(select(Suppression.id)) is None
    assert session.scalar(select(Event.id)) is None


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes(
    session: Session, settings: Settings, client: TestClient, encoding: str
) -> None:
    customer, campaign, signed = setup_link(session, settings)
    if encoding == "urlencoded":
        response = client.post(
            f"/u/{signed}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = client.post(f"/u/{signed}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200  # no redirect, no cookie needed
    assert "set-cookie" not in response.headers
    assert status_of(session, customer) == "unsubscribed"
    assert session.scalar(select(Suppression.reason)) == "unsubscribe"
    event = session.scalars(select(Event)).one()
    assert event.kind == "unsubscribed"
    assert event.campaign_id == campaign.id
    assert event.customer_id == customer.id
    assert event.message_id is not None
    consent = session.scalars(select(ConsentEvent)).one()
    assert consent.kind == "unsubscribe"
    assert consent.source == "list-unsubscribe-one-click"
    # A provider's retry changes nothing more.
    session.rollback()
    again = client.post(f"/u/{signed}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    session.expire_all()
    assert len(session.scalars(select(Event)).all()) == 1


def test_page_button_unsubscribes_then_resubscribe_records_fresh_consent(
    session: Session, settings: Settings, client: TestClient
) -> None:
    customer, _campaign, signed = setup_link(session, settings)
    done = client.post(f"/u/{signed}", data={"action": "unsubscribe"})
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text
    assert status_of(session, customer) == "unsubscribed"
    assert "Subscribe again" in done.text
    wording = "Yes, I want Sonne's emails with personal deals again."
    assert wording.replace("'", "&#39;") in done.text
    back = client.post(f"/u/{signed}", data={"action": "resubscribe"})
    assert back.status_code == 200
    assert "subscribed again" in back.text
    assert status_of(session, customer) == "subscribed"
    assert session.scalar(select(Suppression.id)) is None
    proof = session.scalars(select(ConsentEvent).where(ConsentEvent.kind == "resubscribe")).one()
    assert proof.source == "unsubscribe-page"
    assert proof.wording == wording
    assert proof.ip == "testclient"
    refreshed = session.get(Customer, customer.id)
    assert refreshed is not None
    assert refreshed.consent_source == "unsubscribe-page"


@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_or_tampered_links_are_404_pages(
    session: Session, settings: Settings, client: TestClient, method: str
) -> None:
    customer, campaign, signed = setup_link(session, settings)
    forged = sign_unsubscribe(b"x" * 48, customer.id, campaign.id)
    other = signed.replace(f"{customer.id}-", f"{customer.id + 1}-", 1)
    for link in (forged, other, "1-1-aaaaaaaaaaaaaaaaaaaaaaaa", "garbage"):
        response = getattr(client, method)(f"/u/{link}")
        assert response.status_code == 404
        assert "not valid" in response.text
    assert status_of(session, customer) == "subscribed"


def test_test_message_link_unsubscribes_nobody(
    session: Session, settings: Settings, client: TestClient
) -> None:
    customer, campaign, _signed = setup_link(session, settings)
    test_link = sign_unsubscribe(settings.secret_key_bytes(), None, campaign.id)
    response = client.post(f"/u/{test_link}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "test message" in response.text
    assert status_of(session, customer) == "subscribed"


def make_coupon(session: Session, settings: Settings, **fields: object) -> tuple[Coupon, str]:
    shop_ready(session)
    deal = add_deal(session, "pastry", valid_days=10, terms="One per visit.")
    issued = issue_coupon(
        session, settings.secret_key_bytes(), deal, campaign_id=None, customer_id=None
    )
    for key, value in fields.items():
        setattr(issued.coupon, key, value)
    session.commit()
    return issued.coupon, issued.token


def test_coupon_page_shows_deal_code_terms_expiry_and_never_redeems(
    session: Session, settings: Settings, client: TestClient
) -> None:
    coupon, token = make_coupon(session, settings)
    page = client.get(f"/c/{token}")
    assert page.status_code == 200
    assert "20% off" in page.text
    assert "20% off any pastry" in page.text
    assert 'data-status="valid"' in page.text
    assert "One per visit." in page.text
    assert "Valid until" in page.text
    assert f'src="/q/{token}.png"' in page.text
    from dealmail.coupons.tokens import derive_short_code, format_short_code

    short = format_short_code(derive_short_code(settings.secret_key_bytes(), coupon.nonce))
    assert short in page.text
    session.expire_all()
    refreshed = session.get(Coupon, coupon.id)
    assert refreshed is not None
    assert refreshed.uses == 0
    session.rollback()
    image = client.get(f"/q/{token}.png")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(image.content)))
    assert decoded is not None
    assert decoded.text == f"https://deals.sonne.example/c/{token}"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"uses": 1}, "used"),
        ({"expires_at": utcnow() - timedelta(days=1)}, "expired"),
        ({"revoked_at": utcnow()}, "revoked"),
        ({"is_test": True}, "test"),
    ],
)
def test_coupon_page_status(
    session: Session, settings: Settings, client: TestClient, fields: dict[str, object], status: str
) -> None:
    _coupon, token = make_coupon(session, settings, **fields)
    page = client.get(f"/c/{token}")
    assert page.status_code == 200
    assert f'data-status="{status}"' in page.text


def test_unknown_coupon_and_qr_are_404(
    session: Session, settings: Settings, client: TestClient
) -> None:
    shop_ready(session)
    assert client.get("/c/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert client.get("/c/not-a-token").status_code == 404
    assert client.get("/q/AAAAAAAAAAAAAAAAAAAAAA.png").status_code == 404
    assert session.scalar(select(Deal.id)) is None
