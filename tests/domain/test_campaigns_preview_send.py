"""Preview and test send: what a customer would get; a test send reaches a real SMTP server
with a test coupon that can never be redeemed."""

from __future__ import annotations

import base64
import email
import email.policy
import io
import re
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from campaign_support import add_customer, add_deal, shop_ready
from dealmail.campaigns.preview import preview_html, send_test
from dealmail.campaigns.service import CampaignInput, create_campaign
from dealmail.cli import app
from dealmail.config import Settings
from dealmail.coupons.redeem import redeem
from dealmail.errors import DomainError
from dealmail.models import Coupon
from delivery_support import Sink, smtp_settings
from support_redeem import make_device, make_location


def make_campaign(session: Session) -> None:
    shop_ready(session)
    add_customer(session, "ada@example.com", first_name="Ada", attributes={"city": "Ulm"})
    add_deal(session, "pastry", valid_days=10)
    create_campaign(
        session,
        "spring",
        CampaignInput(
            subject="For {{ first_name | default('you') }}",
            deal="pastry",
            body_markdown="Hello {{ first_name | default('there') }} from {{ attributes.city }}",
        ),
    )


def test_preview_renders_for_a_customer_with_a_data_qr(
    session: Session, settings: Settings
) -> None:
    make_campaign(session)
    html = preview_html(session, "spring", settings, customer_email="ADA@example.com")
    assert "Hello Ada from Ulm" in html
    match = re.search(r'src="data:image/png;base64,([^"]+)"', html)
    assert match is not None
    decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(base64.b64decode(match.group(1)))))
    assert decoded is not None
    assert decoded.text.startswith("https://deals.sonne.example/c/")
    assert session.scalar(select(Coupon.id)) is None  # a preview stores nothing
    sample = preview_html(session, "spring", settings)
    assert "Hello Sam from Springfield" in sample
    with pytest.raises(DomainError) as caught:
        preview_html(session, "spring", settings, customer_email="nobody@example.com")
    assert caught.value.code == "customer_not_found"


def test_test_send_reaches_smtp_with_a_test_coupon_that_cannot_be_redeemed(
    session: Session, settings: Settings
) -> None:
    make_campaign(session)
    with Sink() as sink:
        result = send_test(
            session,
            "spring",
            "staff@sonne.example",
            smtp_settings(settings, sink.port),
            customer_email="ada@example.com",
        )
    assert result.backend == "smtp"
    [received] = sink.handler.received
    assert received.recipients == ("staff@sonne.example",)
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed["Subject"] == "For Ada"
    assert parsed["Message-ID"] == result.message_id
    assert "TEST MESSAGE" in received.data.decode("utf-8", "replace")
    coupon = session.scalars(select(Coupon)).one()
    assert coupon.is_test
    assert coupon.campaign_id is not None
    assert coupon.message_id is None
    assert result.short_code is not None
    assert result.coupon_url is not None

    make_location(session)
    device = make_device(session)
    answer = redeem(session, settings.secret_key_bytes(), device.device, result.coupon_url)
    assert answer.status_code == 403
    assert answer.body["code"] == "test_coupon"
    session.refresh(coupon)
    assert coupon.uses == 0


def test_test_send_refuses_bad_address_and_reports_a_dead_server(
    session: Session, settings: Settings
) -> None:
    make_campaign(session)
    with pytest.raises(DomainError) as caught:
        send_test(session, "spring", "not-an-address", settings)
    assert caught.value.code == "invalid_email"
    from delivery_support import free_port

    dead = smtp_settings(settings, free_port(), smtp_timeout=2.0)
    with pytest.raises(DomainError) as failed:
        send_test(session, "spring", "staff@sonne.example", dead)
    assert failed.value.code == "send_failed"


def test_cli_authoring_round_trip(
    session: Session, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_ready(session)
    add_customer(session, "ada@example.com", tags=("vip",))
    runner = CliRunner()
    created = runner.invoke(
        app,
        [
            "deals",
            "create",
            "croissant",
            "--kind",
            "percent_off",
            "--value",
            "20",
            "--title",
            "20% off pastries",
            "--valid-days",
            "14",
        ],
    )
    assert created.exit_code == 0, created.output
    body = tmp_path / "body.md"
    body.write_text("Hello **{{ first_name | default('there') }}**\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "campaigns",
            "create",
            "spring",
            "--subject",
            "Spring",
            "--deal",
            "croissant",
            "--tag",
            "vip",
            "--body",
            str(body),
            "--heading",
            "Spring is here",
        ],
    )
    assert result.exit_code == 0, result.output
    check = runner.invoke(app, ["campaigns", "check", "spring"])
    assert check.exit_code == 0, check.output
    assert "ready to send" in check.output
    out = tmp_path / "preview.html"
    previewed = runner.invoke(
        app, ["campaigns", "preview", "spring", "--customer", "ada@example.com", "--out", str(out)]
    )
    assert previewed.exit_code == 0, previewed.output
    assert "Hello <strong>Ada</strong>" in out.read_text(encoding="utf-8")
    bad = tmp_path / "bad.html"
    bad.write_text('<p>{{ frist_name }}</p><a href="{{ unsubscribe_url }}">u</a>', "utf-8")
    refused = runner.invoke(app, ["campaigns", "create", "x", "--subject", "s", "--html", str(bad)])
    assert refused.exit_code == 2
    assert "frist_name" in refused.output
    assert "line 1" in refused.output
    both = runner.invoke(
        app,
        ["campaigns", "create", "y", "--subject", "s", "--html", str(bad), "--body", str(body)],
    )
    assert both.exit_code == 2
    assert "conflicting_template" in both.output
    unknown = runner.invoke(app, ["campaigns", "check", "nope"])
    assert unknown.exit_code == 2
    assert "campaign_not_found" in unknown.output
    set_blocked = runner.invoke(app, ["settings", "set", "postal_address", ""])
    assert set_blocked.exit_code == 0
    blocked = runner.invoke(app, ["campaigns", "check", "spring"])
    assert blocked.exit_code == 1
    assert "no_postal_address" in blocked.output
