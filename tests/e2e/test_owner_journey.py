"""The owner's whole journey in a real Chromium, on a fresh data directory with the real processes.

`dealmail init`, then `dealmail web`, `worker`, `devinbox` and `admin` as subprocesses on free
ports. In the dashboard: log in → shop settings → upload a CSV → create a deal and a campaign →
preview → send → the email with its QR is in the Inbox → pair a phone from the dashboard's
pairing link → that phone opens the URL decoded (zxing-cpp) from the QR in the Inbox and redeems
→ the campaign's report shows one redemption → export redemptions as XLSX and read it back.
Screenshots of every step are kept under test-artifacts/owner_journey/.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from openpyxl import load_workbook
from PIL import Image

from browser_support import ARTIFACTS as ARTIFACTS_ROOT
from browser_support import CHROMIUM, CHROMIUM_ARGS, needs_chromium

ARTIFACTS = ARTIFACTS_ROOT / "owner_journey"
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
STREAMLIT_WAIT_MS = 45_000
CSV = (
    "Email,First Name,Last Name,Tags\r\n"
    "anna@example.com,Anna,Müller,regulars\r\n"
    "not-an-address,Bad,Row,\r\n"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class Stack:
    web: str
    admin: str
    password: str
    data_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("owner-journey") / "data"
    web_port, admin_port, smtp_port = _free_port(), _free_port(), _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEALMAIL_")}
    env |= {
        "DEALMAIL_DATA_DIR": str(data_dir),
        "DEALMAIL_WEB_PORT": str(web_port),
        "DEALMAIL_ADMIN_PORT": str(admin_port),
        "DEALMAIL_DEVINBOX_PORT": str(smtp_port),
        "DEALMAIL_EMAIL_BACKEND": "devinbox",
        "DEALMAIL_WORKER_POLL_SECONDS": "0.5",
        "COLUMNS": "200",
    }
    dealmail = [sys.executable, "-m", "dealmail"]
    init = subprocess.run(
        [*dealmail, "init"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    found = re.search(r"password \(shown once\): (\S+)", init.stdout)
    assert found, init.stdout
    logs = data_dir / "logs"
    logs.mkdir()
    processes = []
    log_files = []
    for name in ("web", "worker", "devinbox", "admin"):
        log = (logs / f"{name}.log").open("wb")
        log_files.append(log)
        processes.append(
            subprocess.Popen([*dealmail, name], env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    web, admin = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{admin_port}"
    try:
        _wait_for(lambda: httpx.get(f"{web}/healthz", timeout=2).status_code == 200, "web")
        _wait_for(
            lambda: httpx.get(f"{admin}/_stcore/health", timeout=2).status_code == 200, "admin"
        )
        _wait_for(lambda: socket.create_connection(("127.0.0.1", smtp_port), 2), "dev inbox")
        yield Stack(web, admin, found.group(1), data_dir, processes)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in log_files:
            log.close()


class Journey:
    """The dashboard in one browser tab; each step waits for Streamlit to finish its rerun."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.step:02d}_{name}.png"), full_page=True)

    def idle(self) -> None:
        """Streamlit shows a 'running' status widget while a script run is in progress."""
        self.page.wait_for_timeout(300)
        self.page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
            timeout=STREAMLIT_WAIT_MS,
        )

    def log_in(self, stack: Stack, shoot: bool = False) -> None:
        self.page.goto(stack.admin)
        self.expect_text("Log in to manage")
        self.fill("User name", "admin")
        self.fill("Password", stack.password)
        if shoot:
            self.shot("login")
        self.click("Log in")
        self.expect_text("Logged in as")

    def go(self, screen: str) -> None:
        from playwright.sync_api import expect

        nav = self.page.locator('[data-testid="stSidebarNav"]')
        nav.get_by_role("link", name=screen).click()
        # The screen's own title, not the menu entry that was just clicked.
        heading = "My Shop" if screen == "Home" else screen.split(" ")[0]  # home: shop's name
        title = self.page.locator("h1").filter(has_text=heading)
        expect(title.first).to_be_visible(timeout=STREAMLIT_WAIT_MS)
        self.idle()

    def expect_text(self, text: str, timeout: int = STREAMLIT_WAIT_MS) -> None:
        from playwright.sync_api import expect

        expect(self.page.get_by_text(text, exact=False).first).to_be_visible(timeout=timeout)
        self.idle()

    def fill(self, label: str, value: str) -> None:
        field = self.page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Tab")

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def choose(self, label: str, option: str) -> None:
        self.page.get_by_label(label, exact=True).click()
        self.page.get_by_role("option", name=option, exact=True).click()
        self.idle()


def _decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert results, "no QR code found in the image"
    return str(results[0].text)


def test_owner_journey(stack: Stack, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(CSV, encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        owner = browser.new_context(viewport=DESKTOP, accept_downloads=True)
        journey = Journey(owner.new_page())
        page = journey.page

        # A screen's own address shows only the login form until someone logs in.
        page.goto(f"{stack.admin}/reports")
        journey.expect_text("Log in to manage")
        expect(page.get_by_text("Redemptions for the accountant")).to_have_count(0)
        expect(page.get_by_role("link", name="Reports")).to_be_hidden()
        journey.shot("logged_out")

        # Log in with the password `dealmail init` printed.
        journey.log_in(stack, shoot=True)
        journey.shot("home")

        # The shop's identity: postal address, sender, and the public URL the QR will carry.
        journey.go("Settings")
        journey.fill("Sender email", "hello@corner.example")
        page.get_by_label("Postal address (printed in every email; the law requires it)").fill(
            "1 Main Street, Springfield"
        )
        journey.fill("Public URL (the base of every link and QR in an email)", stack.web)
        journey.click("Save")
        journey.expect_text("Settings saved.")
        journey.shot("settings")

        # Upload the customers: detection, dry run, import.
        journey.go("Contacts")
        page.locator("input[type=file]").set_input_files(str(csv_file))
        journey.expect_text("Detected: encoding")
        journey.click("Dry run (changes nothing)")
        journey.expect_text("Invalid rows")
        journey.shot("contacts_dry_run")
        journey.click("Import")
        journey.expect_text("Imported: 1 new, 0 updated, 1 invalid rows.")
        journey.shot("contacts_imported")
        page.get_by_role("tab", name="Export").click()
        with page.expect_download() as contacts_download:
            journey.click("Download contacts.csv")
        exported = tmp_path / "contacts.csv"
        contacts_download.value.save_as(exported)
        contacts = list(csv.DictReader(exported.open(encoding="utf-8")))
        assert [(c["email"], c["first_name"], c["tags"]) for c in contacts] == [
            ("anna@example.com", "Anna", "regulars")
        ]

        # A deal, then a campaign carrying it.
        journey.go("Deals")
        journey.fill("Name (for you; e.g. spring-10)", "spring")
        journey.fill("Value (percent or amount)", "10")
        journey.fill("Title the customer sees", "10% off everything")
        journey.click("Create deal")
        journey.expect_text("Deal 'spring' created.")
        journey.shot("deal")

        journey.go("Campaigns")
        journey.fill("Name", "Spring sale")
        journey.fill("Subject", "Spring is here, {{ first_name | default('friend') }}")
        journey.choose("Deal", "spring")
        journey.fill("Heading", "Spring is here")
        journey.click("Create campaign")
        journey.expect_text("Campaign 'Spring sale' created.")
        journey.expect_text("Ready to send.")

        # The preview shows the email as Anna would get it: the deal, her QR, the short code.
        journey.fill(
            "As this customer would see it (email; empty: a sample customer)", "anna@example.com"
        )
        journey.idle()
        preview = page.frame_locator("iframe[src^='data:text/html']").first
        expect(preview.get_by_text("10% off everything").first).to_be_visible(
            timeout=STREAMLIT_WAIT_MS
        )
        expect(preview.get_by_text("Show this code at the till").first).to_be_visible()
        expect(preview.locator("img[src^='data:image/png']").first).to_be_visible()
        journey.shot("campaign_preview")

        page.get_by_text("I have checked the preview and the checklist").click()
        journey.click("Send")
        journey.expect_text("Sending started.")
        journey.shot("campaign_sending")

        # The worker sends through the dev inbox; the email shows in the Inbox with its QR.
        journey.go("Inbox")
        deadline = time.monotonic() + 60
        while not page.get_by_text("anna@example.com").count():
            assert time.monotonic() < deadline, "the email never reached the dev inbox"
            journey.click("Refresh")
            journey.idle()
        email = page.frame_locator("iframe[src^='data:text/html']").first
        qr = email.locator("img[src^='data:image/png']").first
        expect(qr).to_be_visible(timeout=STREAMLIT_WAIT_MS)
        journey.shot("inbox")
        coupon_url = _decode_qr(qr.screenshot())
        assert coupon_url.startswith(f"{stack.web}/c/")

        # A location, and a pairing link shown in the dashboard.
        journey.go("Locations & devices")
        page.get_by_label("Name", exact=True).first.fill("Main St")
        journey.click("Add location")
        journey.expect_text("Location 'Main St' added.")
        journey.click("Show pairing QR")
        journey.expect_text("Pairs one phone with Main St")
        journey.shot("pairing")
        link = page.locator("code").filter(has_text="/pair/").first.inner_text().strip()
        # The QR on screen is what the phone's camera reads: it must hold that same link.
        pairing_qr = page.locator('[data-testid="stImage"] img').first
        assert _decode_qr(pairing_qr.screenshot()) == link

        # The staff phone pairs, opens the coupon and redeems it.
        staff = browser.new_context(viewport=PHONE).new_page()
        staff.goto(link)
        staff.get_by_role("button", name="Pair this phone").click()
        staff.wait_for_url("**/scan?paired=1")
        staff.goto(coupon_url)
        expect(staff.locator(".verdict .words")).to_have_text("VALID")
        staff.screenshot(path=str(ARTIFACTS / "scanner_valid.png"), full_page=True)
        staff.get_by_role("button", name="Redeem").click()
        expect(staff.locator(".verdict .words")).to_have_text("REDEEMED")
        staff.screenshot(path=str(ARTIFACTS / "scanner_redeemed.png"), full_page=True)

        # The campaign's report shows the redemption.
        journey.go("Reports")
        journey.choose("Campaign", "Spring sale")
        redeemed = page.locator('[data-testid="stMetric"]').filter(has_text="Redeemed").first
        expect(redeemed).to_contain_text("1")
        journey.shot("report")

        # The accountant's XLSX, downloaded and read back.
        journey.click("Prepare file")
        journey.expect_text("1 redemptions ready.")
        with page.expect_download() as download_info:
            page.get_by_role("button", name=re.compile(r"^Download redemptions_.*\.xlsx$")).click()
        target = tmp_path / "redemptions.xlsx"
        download_info.value.save_as(target)
        journey.shot("export")

        # Home: today's redemption and the last campaign's results at a glance.
        journey.go("Home")
        today = page.locator('[data-testid="stMetric"]').filter(has_text="Redemptions today")
        expect(today.first).to_contain_text("1")
        expect(page.get_by_text("Spring sale").first).to_be_visible()
        journey.shot("home_after")
        browser.close()

    sheet = load_workbook(target, read_only=True).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == (
        "date", "time", "location", "device", "campaign", "deal", "discount value", "customer",
        "voided",
    )  # fmt: skip
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["location"], row["campaign"], row["deal"]) == (
        "Main St",
        "Spring sale",
        "10% off everything",
    )
    assert (row["customer"], row["voided"]) == ("anna@example.com", "no")
    assert row["device"]


def test_a_login_survives_reloads_and_new_tabs_until_logout(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport=DESKTOP)
        journey = Journey(context.new_page())
        page = journey.page
        journey.log_in(stack)
        cookie = _wait_for_cookie(context, "dealmail_admin")
        assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")

        page.reload()
        journey.expect_text("Logged in as")
        other = Journey(context.new_page())
        other.page.goto(f"{stack.admin}/reports")
        other.expect_text("Logged in as")
        expect(other.page.locator("h1").filter(has_text="Reports").first).to_be_visible()

        journey.page.bring_to_front()
        page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Log out").click()
        journey.expect_text("Log in to manage")
        for tab in (journey, other):  # the cookie is still there, but it no longer counts
            tab.page.reload()
            tab.expect_text("Log in to manage")
            expect(tab.page.get_by_text("Logged in as")).to_have_count(0)
        browser.close()


def _wait_for_cookie(context: Any, name: str) -> dict[str, Any]:
    """The page trades its login ticket for the cookie in a fetch of its own, just after login."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for cookie in context.cookies():
            if cookie["name"] == name:
                return dict(cookie)
        time.sleep(0.1)
    raise AssertionError(f"no {name} cookie was set")
