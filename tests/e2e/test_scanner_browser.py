"""Real Chromium against a real `dealmail web` server: pair, redeem, already redeemed, /scan camera.

The camera test feeds Chromium a y4m video (written here from a QR of the coupon URL) through its
fake capture device; /scan must decode it with the bundled zxing-wasm and open the staff view.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import segno
from PIL import Image
from sqlalchemy.orm import Session

from browser_support import CHROMIUM, CHROMIUM_ARGS, needs_chromium
from dealmail import shop
from dealmail.db import dispose_engine, make_engine, migrate, session_factory
from dealmail.locations import service as locations
from support_redeem import MadeCoupon, make_coupon, make_customer, make_deal, make_location

PHONE = {"width": 375, "height": 812}

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
]


@dataclass
class Server:
    url: str
    session: Session
    secret: bytes

    def pairing_link(self) -> str:
        return locations.create_pairing(self.session, "Main St", public_url=self.url).url

    def coupon(self, max_uses: int = 1) -> MadeCoupon:
        deal = make_deal(self.session, f"deal-{secrets.token_hex(3)}", title="Free coffee")
        return make_coupon(
            self.session, self.secret, deal, make_customer(self.session, f"{deal.name}@x.org")
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("scanner-e2e")
    url = f"sqlite:///{data_dir / 'dealmail.db'}"
    secret = secrets.token_urlsafe(48)
    migrate(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(url)
    session = session_factory(engine)()
    shop.set_settings(session, {"public_url": base, "shop_name": "Corner Café"})
    make_location(session, "Main St")
    env = os.environ | {
        "DEALMAIL_DATA_DIR": str(data_dir),
        "DEALMAIL_DATABASE_URL": url,
        "DEALMAIL_SECRET_KEY": secret,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "dealmail", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("dealmail web did not start")
            time.sleep(0.2)
        yield Server(base, session, secret.encode())
    finally:
        process.terminate()
        process.wait(timeout=10)
        session.close()
        engine.dispose()
        dispose_engine(url)


def _launch(playwright: object, *extra: str) -> object:
    return playwright.chromium.launch(  # type: ignore[attr-defined]
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra]
    )


def _pair(page: object, link: str) -> None:
    page.goto(link)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Pair this phone").click()  # type: ignore[attr-defined]
    page.wait_for_url("**/scan?paired=1")  # type: ignore[attr-defined]


def _fits_phone_width(page: object) -> bool:
    width = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    return bool(width <= PHONE["width"])


def test_pair_redeem_and_see_already_redeemed(server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    coupon = server.coupon()
    coupon_url = f"{server.url}/c/{coupon.token}"
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        staff = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
        page = staff.new_page()
        _pair(page, server.pairing_link())
        expect(page.get_by_text("Paired.")).to_be_visible()

        page.goto(coupon_url)
        verdict = page.locator(".verdict")
        expect(verdict.locator(".words")).to_have_text("VALID")
        expect(verdict).to_contain_text("Free coffee")
        assert _fits_phone_width(page)
        page.get_by_role("button", name="Redeem").click()
        expect(page.locator(".verdict .words")).to_have_text("REDEEMED")
        expect(page.get_by_role("button", name="Undo")).to_be_visible()
        assert _fits_phone_width(page)

        page.goto(coupon_url)
        expect(page.locator(".verdict .words")).to_have_text("ALREADY REDEEMED")
        when = page.locator(".verdict .when")
        expect(when).to_contain_text("at Main St by Main St phone 1")
        expect(when).to_contain_text(time.strftime("%Y"))
        expect(page.get_by_role("button", name="Redeem")).to_have_count(0)

        customer = browser.new_context(viewport=PHONE).new_page()  # type: ignore[attr-defined]
        customer.goto(coupon_url)
        expect(customer.get_by_text("Free coffee").first).to_be_visible()
        expect(customer.get_by_role("button", name="Redeem")).to_have_count(0)
        expect(customer.locator(".verdict")).to_have_count(0)
        browser.close()  # type: ignore[attr-defined]


def write_y4m(path: Path, image: Image.Image, frames: int = 15) -> None:
    """YUV4MPEG2 4:2:0: the picture as luma, neutral chroma."""
    width, height = image.size
    luma = image.convert("L").tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            handle.write(b"FRAME\n" + luma + chroma + chroma)


def qr_frame(text: str, size: tuple[int, int] = (640, 480)) -> Image.Image:
    qr = segno.make(text, error="m")
    scale = max(1, (min(size) - 80) // qr.symbol_size(border=4)[0])
    matrix = qr.matrix
    modules = len(matrix)
    side = (modules + 8) * scale
    code = Image.new("L", (side, side), 255)
    for row, line in enumerate(matrix):
        for column, dark in enumerate(line):
            if dark:
                left, top = (column + 4) * scale, (row + 4) * scale
                code.paste(0, (left, top, left + scale, top + scale))
    frame = Image.new("L", size, 200)
    frame.paste(code, ((size[0] - side) // 2, (size[1] - side) // 2))
    return frame


def test_scan_decodes_a_qr_from_the_camera(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    coupon = server.coupon()
    video = tmp_path / "qr.y4m"
    write_y4m(video, qr_frame(f"{server.url}/c/{coupon.token}"))
    with sync_playwright() as playwright:
        browser = _launch(
            playwright,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        )
        context = browser.new_context(viewport=PHONE)  # type: ignore[attr-defined]
        context.grant_permissions(["camera"], origin=server.url)
        page = context.new_page()
        _pair(page, server.pairing_link())
        page.wait_for_url("**/scan/coupon?code=*", timeout=20_000)
        expect(page.locator(".verdict .words")).to_have_text("VALID")
        expect(page.locator(".verdict")).to_contain_text("Free coffee")
        expect(page.get_by_role("button", name="Redeem")).to_be_visible()
        assert _fits_phone_width(page)
        browser.close()  # type: ignore[attr-defined]
