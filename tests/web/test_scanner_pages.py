"""Scanner pages in-process: pairing cookie, paired vs unpaired, verdicts, CSRF, redeem and undo."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.locations import service as locations
from dealmail.models import utcnow
from dealmail.web.app import create_app
from dealmail.web.routes._devices import DEVICE_COOKIE
from dealmail.web.routes.scanner import RedactSecrets
from support_redeem import (
    limit_deal_to,
    make_coupon,
    make_customer,
    make_deal,
    make_location,
)


@dataclass
class Counter:
    client: TestClient
    session: Session
    secret: bytes
    settings: Settings


@pytest.fixture
def counter(settings: Settings, session: Session) -> Iterator[Counter]:
    make_location(session)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        yield Counter(client, session, settings.secret_key_bytes(), settings)


def _pair(counter: Counter) -> None:
    link = locations.create_pairing(counter.session, "Main St")
    page = counter.client.get(f"/pair/{link.token}")
    assert page.status_code == 200
    assert "Pair this phone" in page.text
    response = counter.client.post(
        f"/pair/{link.token}", data={"device_name": "Front till"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/scan?paired=1"


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden field {name}"
    return found.group(1)


def test_pairing_sets_an_httponly_samesite_cookie_and_spends_the_link(counter: Counter) -> None:
    link = locations.create_pairing(counter.session, "Main St")
    assert counter.client.get(f"/pair/{link.token}").status_code == 200
    assert counter.client.get(f"/pair/{link.token}").status_code == 200  # a GET spends nothing
    response = counter.client.post(f"/pair/{link.token}", follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{DEVICE_COOKIE}=dmc_")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on this machine (dev) only
    again = counter.client.get(f"/pair/{link.token}")
    assert again.status_code == 410
    assert "already used" in again.text
    devices = locations.list_devices(counter.session)
    assert [(d.name, d.kind) for d in devices] == [("Main St phone 1", "browser")]


def test_cookie_is_secure_over_https_and_on_other_hosts(
    settings: Settings, session: Session
) -> None:
    make_location(session)
    for base in ("https://shop.example", "http://192.168.1.20:8000"):
        link = locations.create_pairing(session, "Main St")
        with TestClient(create_app(settings), base_url=base) as client:
            response = client.post(f"/pair/{link.token}", follow_redirects=False)
        assert "Secure" in response.headers["set-cookie"]
    link = locations.create_pairing(session, "Main St")
    with TestClient(create_app(settings), base_url="http://192.168.1.20:8000") as client:
        assert "not opened over HTTPS" in client.get(f"/pair/{link.token}").text


def test_unpaired_browser_gets_no_scanner(counter: Counter) -> None:
    coupon = make_coupon(counter.session, counter.secret, make_deal(counter.session))
    for path in ("/scan", f"/scan/coupon?code={coupon.token}"):
        response = counter.client.get(path)
        assert response.status_code == 403
        assert "NOT PAIRED" in response.text
        assert "Redeem" not in response.text
    refused = counter.client.post("/scan/redeem", data={"code": coupon.token, "csrf": "x"})
    assert refused.status_code == 403


def test_scan_page_has_camera_and_code_entry(counter: Counter) -> None:
    _pair(counter)
    page = counter.client.get("/scan?paired=1")
    assert page.status_code == 200
    assert '<video id="camera" autoplay playsinline muted>' in page.text
    assert 'src="/static/scanner/scan.js"' in page.text
    assert "Front till" in page.text
    assert "camera=(self)" in page.headers["permissions-policy"]


def test_decoder_is_served_from_our_own_static_files(counter: Counter) -> None:
    wasm = counter.client.get("/static/scanner/zxing/zxing_reader.wasm")
    assert wasm.status_code == 200
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.content[:4] == b"\0asm"
    script = counter.client.get("/static/scanner/scan.js").text
    assert "locateFile" in script
    assert "zxing_reader.wasm" in script
    assert counter.client.get("/static/scanner/zxing/LICENSE").status_code == 200


def test_valid_coupon_redeem_then_already_redeemed_then_undo(counter: Counter) -> None:
    _pair(counter)
    deal = make_deal(counter.session, terms="One per visit")
    coupon = make_coupon(counter.session, counter.secret, deal, make_customer(counter.session))
    view = counter.client.get(f"/scan/coupon?code={coupon.token}")
    assert view.status_code == 200
    assert "VALID" in view.text
    assert "for Ada" in view.text
    assert "1 of 1" in view.text
    assert ">Redeem</button>" in view.text
    form = {
        "code": _hidden(view.text, "code"),
        "csrf": _hidden(view.text, "csrf"),
        "idempotency_key": _hidden(view.text, "idempotency_key"),
    }
    done = counter.client.post("/scan/redeem", data=form)
    assert "REDEEMED" in done.text
    assert ">Undo</button>" in done.text
    # a double tap sends the same form again: the same answer, still one redemption
    assert "REDEEMED" in counter.client.post("/scan/redeem", data=form).text
    assert "ALREADY" not in counter.client.post("/scan/redeem", data=form).text

    again = counter.client.get(f"/scan/coupon?code={coupon.short_code}")
    assert "ALREADY REDEEMED" in again.text
    assert "at Main St by Front till" in again.text
    assert ">Redeem</button>" not in again.text

    undo = {"redemption_id": _hidden(done.text, "redemption_id"), "csrf": form["csrf"]}
    undone = counter.client.post("/scan/undo", data=undo)
    assert "UNDONE" in undone.text
    assert "VALID" in counter.client.get(f"/scan/coupon?code={coupon.token}").text
    assert "COULD NOT UNDO" in counter.client.post("/scan/undo", data=undo).text


def test_redeem_without_the_pages_csrf_token_is_refused(counter: Counter) -> None:
    _pair(counter)
    coupon = make_coupon(counter.session, counter.secret, make_deal(counter.session))
    response = counter.client.post("/scan/redeem", data={"code": coupon.token, "csrf": "forged"})
    assert response.status_code == 403
    assert "REFUSED" in response.text
    assert "VALID" in counter.client.get(f"/scan/coupon?code={coupon.token}").text


def test_every_refusal_is_spelt_out(counter: Counter) -> None:
    _pair(counter)
    make_location(counter.session, "Harbour")
    deal, elsewhere = make_deal(counter.session), make_deal(counter.session, "Harbour only")
    limit_deal_to(counter.session, elsewhere, "Harbour")
    now = utcnow()
    cases = {
        "EXPIRED": make_coupon(
            counter.session, counter.secret, deal, expires_at=now - timedelta(days=3)
        ),
        "NOT YET VALID": make_coupon(
            counter.session, counter.secret, deal, valid_from=now + timedelta(days=3)
        ),
        "REVOKED": make_coupon(counter.session, counter.secret, deal, revoked_at=now),
        "TEST COUPON": make_coupon(counter.session, counter.secret, deal, is_test=True),
        "NOT VALID AT THIS LOCATION": make_coupon(counter.session, counter.secret, elsewhere),
    }
    for words, coupon in cases.items():
        page = counter.client.get(f"/scan/coupon?code={coupon.token}")
        assert f'<h1 class="words">{words}</h1>' in page.text
        assert ">Redeem</button>" not in page.text
    unknown = counter.client.get("/scan/coupon?code=ZZZZ-ZZZZ-ZZ")
    assert "UNKNOWN CODE" in unknown.text


def test_access_log_never_shows_tokens_or_codes() -> None:
    line = "GET /c/AbCdEf0123456789_-xyzQ HTTP/1.1 /scan/coupon?code=K7QM-2XPA-9D&x=1 /pair/tok"
    line += " GET /api/v1/coupons/ZyXwVu9876543210_-abcD HTTP/1.1"
    redacted = RedactSecrets.redact(line)
    assert "AbCdEf" not in redacted
    assert "ZyXwVu" not in redacted
    assert "/api/v1/coupons/[redacted]" in redacted
    assert "K7QM" not in redacted
    assert "/pair/[redacted]" in redacted
    assert "&x=1" in redacted


def test_coupon_url_shows_staff_view_only_on_a_paired_device(counter: Counter) -> None:
    coupon = make_coupon(
        counter.session, counter.secret, make_deal(counter.session), make_customer(counter.session)
    )
    customer_view = counter.client.get(f"/c/{coupon.token}")
    assert customer_view.status_code == 200
    assert "Redeem" not in customer_view.text
    assert "csrf" not in customer_view.text
    _pair(counter)
    staff_view = counter.client.get(f"/c/{coupon.token}")
    assert "VALID" in staff_view.text
    assert ">Redeem</button>" in staff_view.text
    assert "for Ada" in staff_view.text
