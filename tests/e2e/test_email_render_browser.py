"""A composed email in real Chromium at phone and desktop widths: the QR in the screenshot decodes.

The HTML comes from the sent MIME itself: parsed back with the stdlib, its `cid:` reference is
resolved to the image part found by Content-ID (served to the browser as a `data:` URI only
here, as a mail client would resolve it), then rendered at 375 and 800 px and screenshotted into
test-artifacts/.
"""

from __future__ import annotations

import base64
import email
import email.policy
import io
import re
from email.message import EmailMessage

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy.orm import Session

from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, needs_chromium
from campaign_support import SECRET, make_composer, make_recipient
from dealmail.campaigns.render import TemplateSource
from dealmail.config import Settings
from dealmail.coupons.tokens import derive_token

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
]


def html_with_cid_resolved(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    parts = {part.get("Content-ID", "").strip("<>"): part for part in message.walk()}
    html_part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    html: str = html_part.get_content()

    def resolve(match: re.Match[str]) -> str:
        image = parts[match.group(1)]  # KeyError here would mean a dangling cid: reference
        data = base64.b64encode(image.get_content()).decode("ascii")
        return f'src="data:{image.get_content_type()};base64,{data}"'

    resolved, count = re.subn(r'src="cid:([^"]+)"', resolve, html)
    assert count == 1
    return resolved


@pytest.mark.parametrize("theme", ["classic", "spotlight"])
def test_email_renders_and_its_qr_decodes_at_phone_and_desktop_width(theme: str) -> None:
    from playwright.sync_api import sync_playwright

    composer = make_composer(
        TemplateSource(
            subject="Spring treats",
            theme=theme,
            body_markdown="Hello **{{ first_name | default('there') }}**, "
            "our spring pastries are back. Show the code below at the till.",
        )
    )
    recipient = make_recipient()
    assert recipient.coupon_nonce is not None
    expected = f"https://deals.sonne.example/c/{derive_token(SECRET, recipient.coupon_nonce)}"
    html = html_with_cid_resolved(composer.compose(recipient).raw)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for width in (375, 800):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_content(html, wait_until="load")
                # Responsive: nothing forces a sideways scroll on a phone.
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                qr_box = page.locator("img.qr").bounding_box()
                assert qr_box is not None
                assert qr_box["width"] >= 150  # big enough for a till scanner
                assert qr_box["x"] >= 0
                assert qr_box["x"] + qr_box["width"] <= width
                shot = ARTIFACTS / f"email-{theme}-{width}px.png"
                page.screenshot(path=str(shot), full_page=True)
                page.close()
                decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(shot.read_bytes())))
                assert decoded is not None, f"no QR found in {shot}"
                assert decoded.text == expected
        finally:
            browser.close()


def test_public_pages_fit_a_phone_and_the_button_unsubscribes(
    session: Session, settings: Settings
) -> None:
    """The coupon page and the unsubscribe page in Chromium at 375 px, served by the real app
    (Playwright routes every request to it in-process): no sideways scroll, no external
    requests, the QR decodes from the screenshot, the button unsubscribes."""
    from fastapi.testclient import TestClient
    from playwright.sync_api import Route, sync_playwright

    from campaign_support import add_customer, add_deal, shop_ready
    from dealmail.campaigns.service import CampaignInput, create_campaign
    from dealmail.coupons.issue import issue_coupon
    from dealmail.engagement.unsubscribe_links import sign_unsubscribe
    from dealmail.models import Customer
    from dealmail.web.app import create_app

    shop_ready(session)
    customer = add_customer(session, "ada@example.com")
    deal = add_deal(session, "pastry", valid_days=10, terms="One per visit.")
    campaign = create_campaign(session, "spring", CampaignInput(subject="Hi", deal="pastry"))
    issued = issue_coupon(
        session,
        settings.secret_key_bytes(),
        deal,
        campaign_id=campaign.id,
        customer_id=customer.id,
    )
    session.commit()
    signed = sign_unsubscribe(settings.secret_key_bytes(), customer.id, campaign.id)
    base = "https://deals.sonne.example"
    client = TestClient(create_app(settings), follow_redirects=False)
    foreign: list[str] = []

    def serve(route: Route) -> None:
        request = route.request
        if not request.url.startswith(base):
            foreign.append(request.url)
            route.abort()
            return
        answer = client.request(
            request.method,
            request.url[len(base) :],
            content=request.post_data_buffer,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.content)

    session.rollback()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812})
            page.route("**/*", serve)
            page.goto(f"{base}/c/{issued.token}")
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            assert page.locator("img.qr").evaluate("img => img.naturalWidth") > 0
            assert issued.short_code in page.inner_text(".code")
            shot = ARTIFACTS / "coupon-page-375px.png"
            page.screenshot(path=str(shot), full_page=True)
            decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(shot.read_bytes())))
            assert decoded is not None
            assert decoded.text == f"{base}/c/{issued.token}"

            page.goto(f"{base}/u/{signed}")
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.screenshot(path=str(ARTIFACTS / "unsubscribe-page-375px.png"), full_page=True)
            page.get_by_role("button", name="Unsubscribe").click()
            page.wait_for_selector("text=You are unsubscribed")
            page.screenshot(path=str(ARTIFACTS / "unsubscribed-page-375px.png"), full_page=True)
        finally:
            browser.close()
    assert foreign == []  # no CDN, no external fonts or scripts
    session.expire_all()
    refreshed = session.get(Customer, customer.id)
    assert refreshed is not None
    assert refreshed.status == "unsubscribed"
