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
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from campaign_support import SECRET, make_composer, make_recipient
from dealmail.campaigns.render import TemplateSource
from dealmail.coupons.tokens import derive_token

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium"),
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
