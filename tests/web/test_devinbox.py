"""The dev inbox end to end: the worker sends to the real aiosmtpd dev inbox; /dev/inbox shows it.

The message page is opened in real Chromium when it is installed, and the QR in its screenshot
must decode to the coupon URL.
"""

from __future__ import annotations

import html
import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from browser_support import CHROMIUM, CHROMIUM_ARGS
from dealmail.config import Settings
from dealmail.delivery import devinbox
from dealmail.delivery.materialise import materialise
from dealmail.delivery.worker import Worker
from dealmail.shop import set_settings
from dealmail.web.app import create_app
from delivery_support import add_campaign, add_customers, add_deal, free_port, ready_shop


@pytest.fixture
def inbox_settings(settings: Settings) -> Iterator[Settings]:
    """The dev inbox server running on a free port, with settings pointing the backend at it."""
    configured = settings.model_copy(
        update={"email_backend": "devinbox", "devinbox_port": free_port()}
    )
    stop = threading.Event()
    server = threading.Thread(target=devinbox.serve, args=(configured, stop), daemon=True)
    server.start()
    import socket
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", configured.devinbox_port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield configured
    stop.set()
    server.join(timeout=10)


def _send_two(session: Session, settings: Settings) -> None:
    ready_shop(session)
    add_customers(session, 2)
    campaign = add_campaign(session, deal=add_deal(session), subject="Spring deals for you")
    materialise(session, campaign.id)
    assert Worker(settings, until_idle=True).run() == 2


def test_sent_mail_lands_in_the_dev_inbox_and_its_pages(
    session: Session, inbox_settings: Settings
) -> None:
    _send_two(session, inbox_settings)
    listed = devinbox.list_messages(inbox_settings)
    assert sorted(r for m in listed for r in m.recipients) == [
        "c000000@example.com",
        "c000001@example.com",
    ]
    assert all(m.subject == "Spring deals for you" for m in listed)
    assert len(list(devinbox.inbox_dir(inbox_settings).glob("*.eml"))) == 2
    with TestClient(create_app(inbox_settings)) as client:
        page = client.get("/dev/inbox")
        assert page.status_code == 200
        assert "Spring deals for you" in page.text
        assert f"/dev/inbox/{listed[0].id}" in page.text
        message = client.get(f"/dev/inbox/{listed[0].id}")
        assert message.status_code == 200
        srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', message.text).group(1))  # type: ignore[union-attr]
        assert "data:image/png;base64," in srcdoc
        assert "cid:" not in srcdoc
        assert "List-Unsubscribe-Post" in message.text
        raw = client.get(f"/dev/inbox/{listed[0].id}/raw")
        assert raw.headers["content-type"].startswith("message/rfc822")
        assert (
            raw.content == (devinbox.inbox_dir(inbox_settings) / f"{listed[0].id}.eml").read_bytes()
        )
        assert client.get("/dev/inbox/../../secret_key").status_code == 404
        assert client.get("/dev/inbox/0000000000000000000-abcdef").status_code == 404


def test_the_inbox_pages_exist_only_with_the_devinbox_backend(
    session: Session, settings: Settings
) -> None:
    set_settings(session, {"email_backend": "smtp"})
    with TestClient(create_app(settings)) as client:
        response = client.get("/dev/inbox")
    assert response.status_code == 404
    assert response.json()["code"] == "devinbox_off"


@pytest.mark.browser
def test_the_message_page_shows_the_qr_in_a_real_browser(
    session: Session, inbox_settings: Settings, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    _send_two(session, inbox_settings)
    first = devinbox.list_messages(inbox_settings)[0]
    with TestClient(create_app(inbox_settings)) as client:
        page_html = client.get(f"/dev/inbox/{first.id}").text
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1400})
            page.set_content(page_html, wait_until="load")
            frame = page.frame_locator("iframe")
            frame.locator("img[src^='data:image/png']").first.wait_for()
            shot = frame.locator("img[src^='data:image/png']").first.screenshot()
        finally:
            browser.close()
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    assert decoded
    assert decoded[0].text.startswith("https://shop.example/c/")
