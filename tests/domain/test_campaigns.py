"""Campaigns: authoring, the lifecycle table, preflight blocking and warnings, the composer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaign_support import add_customer, add_deal, shop_ready
from dealmail.campaigns import lifecycle
from dealmail.campaigns.preflight import require_ready, run_preflight
from dealmail.campaigns.service import (
    CampaignInput,
    create_campaign,
    describe_campaign,
    edit_campaign,
    get_campaign,
    list_campaigns,
)
from dealmail.config import Settings
from dealmail.coupons.issue import issue_coupon
from dealmail.coupons.tokens import derive_token, short_code_hash, token_hash
from dealmail.delivery.compose import Composer
from dealmail.errors import DomainError
from dealmail.models import Campaign, CampaignStatus, Coupon, Deal, Message
from dealmail.shop import set_settings

GOOD_HTML = '<p>Hi {{ first_name | default("you") }}</p><a href="{{ unsubscribe_url }}">u</a>'


def ready_campaign(session: Session, name: str = "spring", **fields: object) -> Campaign:
    shop_ready(session)
    add_customer(session, "ada@example.com", tags=("vip",))
    deal = add_deal(session, f"deal-{name}", valid_days=14)
    data = {
        "subject": "Spring treats",
        "deal": deal.name,
        "body_markdown": "Hello **{{ first_name | default('there') }}**, "
        "our spring pastries are back in the window.",
    }
    if "html_template" in fields:
        del data["body_markdown"]
    data.update(fields)
    return create_campaign(session, name, CampaignInput(**data))  # type: ignore[arg-type]


def codes(findings: list) -> set[str]:  # type: ignore[type-arg]
    return {f.code for f in findings}


# -- authoring ------------------------------------------------------------------------------


def test_create_edit_list_show(session: Session) -> None:
    campaign = ready_campaign(session, heading="Spring", audience={"tags": ["VIP"]})
    assert campaign.status == "draft"
    assert campaign.theme == "classic"
    edited = edit_campaign(
        session,
        "spring",
        CampaignInput(subject="New  subject", theme="spotlight", button_text="Shop", heading=""),
    )
    assert edited.subject == "New subject"
    assert edited.theme == "spotlight"
    assert "heading" not in edited.content
    assert edited.content["button_text"] == "Shop"
    shown = describe_campaign(session, get_campaign(session, "spring"))
    assert shown["template"] == "spotlight"
    assert shown["deal"] == "deal-spring"
    assert shown["audience"] == {"tags": ["VIP"]}
    assert [c.name for c in list_campaigns(session, "draft")] == ["spring"]
    assert list_campaigns(session, "sent") == []


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"subject": " "}, "missing_subject"),
        ({"theme": "nope"}, "unknown_theme"),
        ({"deal": "missing"}, "deal_not_found"),
        ({"audience": {"segment": "nobody"}}, "segment_not_found"),
        ({"audience": {"tags": ["unknown-tag"]}}, "tag_not_found"),
        ({"html_template": "<p>{{ first_name }}</p>"}, "no_unsubscribe_link"),
        ({"html_template": GOOD_HTML.replace("first_name", "frist_name")}, "unknown_field"),
        ({"body_markdown": "{{ coupon.shortcode }}"}, "unknown_field"),
        ({"from_email": "not an address"}, "invalid_email"),
        ({"button_url": "javascript:alert(1)"}, "invalid_url"),
        ({"theme": "classic", "html_template": GOOD_HTML}, "conflicting_template"),
    ],
)
def test_create_refuses_bad_input_with_a_code(
    session: Session, fields: dict[str, object], code: str
) -> None:
    shop_ready(session)
    add_deal(session, "d", valid_days=3)
    data: dict[str, object] = {"subject": "Hi", "deal": "d"}
    data.update(fields)
    with pytest.raises(DomainError) as caught:
        create_campaign(session, "c", CampaignInput(**data))  # type: ignore[arg-type]
    assert caught.value.code == code
    assert session.scalar(select(Campaign.id)) is None


def test_switching_between_theme_and_custom_html(session: Session) -> None:
    ready_campaign(session)
    edited = edit_campaign(session, "spring", CampaignInput(html_template=GOOD_HTML))
    assert edited.theme is None
    assert "body_markdown" not in edited.content
    # A body for a custom-HTML campaign has nothing to fill (the dashboard sends its empty field).
    ignored = edit_campaign(session, "spring", CampaignInput(body_markdown="Hello"))
    assert "body_markdown" not in ignored.content
    back = edit_campaign(session, "spring", CampaignInput(theme="classic", body_markdown="Hi"))
    assert back.html_template is None
    assert back.content["body_markdown"] == "Hi"


def test_duplicate_name_and_not_editable_once_sending(session: Session) -> None:
    campaign = ready_campaign(session)
    with pytest.raises(DomainError) as caught:
        create_campaign(session, "spring", CampaignInput(subject="x"))
    assert caught.value.code == "campaign_exists"
    lifecycle.transition(campaign, "sending")
    session.commit()
    with pytest.raises(DomainError) as refused:
        edit_campaign(session, "spring", CampaignInput(subject="y"))
    assert refused.value.code == "not_editable"


# -- lifecycle ------------------------------------------------------------------------------


def test_lifecycle_table_allows_the_happy_path_and_refuses_the_rest(session: Session) -> None:
    campaign = ready_campaign(session)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    for status in ("scheduled", "sending", "paused", "sending", "sent"):
        lifecycle.transition(campaign, status, now=now)
    assert campaign.status == "sent"
    assert campaign.finished_at == now
    assert campaign.started_at == now
    with pytest.raises(DomainError) as caught:
        lifecycle.transition(campaign, "draft")
    assert caught.value.code == "invalid_transition"
    assert caught.value.http_status == 409


@pytest.mark.parametrize(
    ("start", "to", "allowed"),
    [
        ("draft", "scheduled", True),
        ("draft", "sent", False),
        ("draft", "paused", False),
        ("scheduled", "cancelled", True),
        ("sending", "draft", False),
        ("paused", "sending", True),
        ("cancelled", "draft", False),
        ("sent", "cancelled", False),
        ("draft", "bogus", False),
    ],
)
def test_transition_table(start: str, to: str, allowed: bool) -> None:
    assert lifecycle.can_transition(start, to) is allowed
    campaign = Campaign(name="x", subject="s", status=start)
    if allowed:
        lifecycle.transition(campaign, to)
        assert campaign.status == to
    else:
        with pytest.raises(DomainError):
            lifecycle.transition(campaign, to)
        assert campaign.status == start


def test_every_status_has_a_row() -> None:
    assert set(lifecycle.TRANSITIONS) == set(CampaignStatus)


# -- preflight ------------------------------------------------------------------------------


def test_ready_campaign_passes_preflight(session: Session, settings: Settings) -> None:
    campaign = ready_campaign(session)
    report = require_ready(session, campaign, settings)
    assert report.ready
    assert report.blocking == []
    assert report.audience_size == 1


def test_preflight_blocks_without_postal_address(session: Session, settings: Settings) -> None:
    campaign = ready_campaign(session)
    set_settings(session, {"postal_address": ""})
    assert "no_postal_address" in codes(run_preflight(session, campaign, settings).blocking)
    with pytest.raises(DomainError) as caught:
        require_ready(session, campaign, settings)
    assert caught.value.code == "preflight_failed"
    assert "postal address" in caught.value.message


def test_preflight_blocks_without_sender(session: Session, settings: Settings) -> None:
    campaign = ready_campaign(session)
    set_settings(session, {"sender_email": ""})
    assert "no_sender" in codes(run_preflight(session, campaign, settings).blocking)
    edit_campaign(session, "spring", CampaignInput(from_email="owner@sonne.example"))
    assert "no_sender" not in codes(run_preflight(session, campaign, settings).blocking)


def test_preflight_blocks_custom_html_without_unsubscribe(
    session: Session, settings: Settings
) -> None:
    campaign = ready_campaign(session, html_template=GOOD_HTML)
    assert run_preflight(session, campaign, settings).ready
    campaign.html_template = "<p>Hi {{ first_name }}</p>"  # written past the service
    session.commit()
    report = run_preflight(session, campaign, settings)
    finding = next(f for f in report.blocking if f.code == "no_unsubscribe_link")
    assert "{{ unsubscribe_url }}" in finding.message


def test_preflight_blocks_unsubscribe_hidden_behind_a_condition(
    session: Session, settings: Settings
) -> None:
    hidden = '<p>x</p>{% if first_name %}<a href="{{ unsubscribe_url }}">u</a>{% endif %}'
    campaign = ready_campaign(session, html_template=hidden)
    assert "no_unsubscribe_link" in codes(run_preflight(session, campaign, settings).blocking)


def test_preflight_blocks_empty_audience(session: Session, settings: Settings) -> None:
    campaign = ready_campaign(session, audience={"tags": ["vip"]})
    assert run_preflight(session, campaign, settings).audience_size == 1
    customer = session.scalar(select(Campaign).where(Campaign.id == campaign.id))
    assert customer is not None
    from dealmail.contacts.consent import apply_withdrawal
    from dealmail.models import Customer

    ada = session.scalars(select(Customer)).one()
    apply_withdrawal(session, ada, "unsubscribe", source="test")
    session.commit()
    report = run_preflight(session, campaign, settings)
    assert report.audience_size == 0
    assert "empty_audience" in codes(report.blocking)


def test_preflight_blocks_expired_deal(session: Session, settings: Settings) -> None:
    campaign = ready_campaign(session)
    deal = session.get(Deal, campaign.deal_id)
    assert deal is not None
    deal.valid_until = datetime.now(UTC) - timedelta(days=1)
    deal.valid_days = None
    session.commit()
    assert "deal_expired" in codes(run_preflight(session, campaign, settings).blocking)


def test_preflight_warnings_do_not_block(session: Session, settings: Settings) -> None:
    many_links = " ".join(f"[l{i}](https://sonne.example/{i})" for i in range(20))
    campaign = ready_campaign(
        session,
        subject="HUGE SALE TODAY ON EVERYTHING IN THE SHOP, COME AND GET IT BEFORE IT IS GONE!!",
        body_markdown=many_links,
    )
    report = run_preflight(session, campaign, settings)
    assert report.ready
    assert {"subject_long", "subject_caps", "many_links"} <= codes(report.warnings)


def test_preflight_warns_on_mostly_images_and_empty_text(
    session: Session, settings: Settings
) -> None:
    html = (
        '<img src="https://sonne.example/a.jpg" width="600" alt="">'
        '<img src="https://sonne.example/b.jpg" width="600" alt="">'
        '<a href="{{ unsubscribe_url }}">u</a>'
    )
    campaign = ready_campaign(session, html_template=html, deal="")
    report = run_preflight(session, campaign, settings)
    assert report.ready
    assert {"mostly_images", "empty_text"} <= codes(report.warnings)


# -- composing from the database ------------------------------------------------------------


def test_composer_loads_recipients_in_one_batch(session: Session, settings: Settings) -> None:
    campaign = ready_campaign(session)
    ada = add_customer(session, "bob@example.com", first_name="Bob", attributes={"city": "Ulm"})
    deal = session.get(Deal, campaign.deal_id)
    assert deal is not None
    secret = settings.secret_key_bytes()
    message = Message(campaign_id=campaign.id, customer_id=ada.id, email=ada.email)
    plain = Message(campaign_id=campaign.id, customer_id=None, email="walkin@example.com")
    session.add_all([message, plain])
    session.flush()
    issued = issue_coupon(
        session, secret, deal, campaign_id=campaign.id, customer_id=ada.id, message_id=message.id
    )
    session.commit()
    coupon = session.get(Coupon, issued.coupon.id)
    assert coupon is not None
    assert coupon.token_hash == token_hash(issued.token)
    assert coupon.short_code_hash == short_code_hash(secret, issued.short_code.replace("-", ""))
    assert coupon.expires_at is not None
    assert coupon.max_uses == 1
    assert not coupon.is_test

    composer = Composer.for_campaign(session, campaign.id, settings)
    recipients = composer.load_recipients(session, [message.id, plain.id])
    assert recipients[message.id].first_name == "Bob"
    assert recipients[message.id].attributes == {"city": "Ulm"}
    assert recipients[message.id].coupon_nonce == coupon.nonce
    assert recipients[plain.id].coupon_nonce is None
    assert recipients[plain.id].first_name is None
    composed = composer.compose(recipients[message.id])
    assert f"/c/{derive_token(secret, coupon.nonce)}" in composed.text
    assert issued.short_code in composed.html
    assert composed.message_row_id == message.id
    assert composer.load_recipients(session, []) == {}


def test_preflight_warns_about_http_links_and_unsigned_mail(
    session: Session, settings: Settings
) -> None:
    campaign = ready_campaign(session)
    assert not {"public_url_not_https"} & codes(run_preflight(session, campaign, settings).warnings)
    assert "dkim_off" in codes(run_preflight(session, campaign, settings).warnings)
    set_settings(session, {"public_url": "http://127.0.0.1:8000"})
    signed = settings.model_copy(update={"dkim_selector": "s1"})
    from dealmail.delivery import dkim

    dkim.generate_key(dkim.default_key_path(signed, "s1"))
    report = run_preflight(session, campaign, signed)
    assert report.ready
    assert "public_url_not_https" in codes(report.warnings)
    assert "dkim_off" not in codes(report.warnings)


def test_preflight_deal_ending_before_or_soon_after_the_send_time(
    session: Session, settings: Settings
) -> None:
    campaign = ready_campaign(session)
    deal = session.get(Deal, campaign.deal_id)
    assert deal is not None
    now = datetime.now(UTC)
    deal.valid_days = None
    deal.valid_until = now + timedelta(days=1)
    session.commit()
    report = run_preflight(session, campaign, settings)
    assert report.ready
    assert "deal_expires_soon" in codes(report.warnings)
    later = now + timedelta(days=2)
    assert "deal_expired" in codes(
        run_preflight(session, campaign, settings, send_at=later).blocking
    )
    campaign.send_at = later
    session.commit()
    assert "deal_expired" in codes(run_preflight(session, campaign, settings).blocking)
