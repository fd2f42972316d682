"""Campaign service: create, edit, list, show; every change is checked by rendering samples."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, fields, replace
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.campaigns.checks import render_samples
from dealmail.campaigns.lifecycle import is_editable
from dealmail.campaigns.render import (
    NO_UNSUBSCRIBE_MESSAGE,
    available_themes,
    has_unsubscribe_field,
)
from dealmail.contacts.audience import validate_audience
from dealmail.deals.service import get_deal
from dealmail.delivery.compose import Composer
from dealmail.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from dealmail.models import Campaign, CampaignStatus, Deal, Message

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
CONTENT_KEYS = ("heading", "body_markdown", "image_url", "image_alt", "button_text", "button_url")
MAX_SUBJECT = 255


@dataclass(frozen=True)
class CampaignInput:
    """What the owner gives; None means "not given" (on edit: unchanged; "" clears a field)."""

    subject: str | None = None
    preheader: str | None = None
    deal: str | None = None
    audience: dict[str, Any] | None = None
    theme: str | None = None
    html_template: str | None = None
    body_markdown: str | None = None
    heading: str | None = None
    image_url: str | None = None
    image_alt: str | None = None
    button_text: str | None = None
    button_url: str | None = None
    from_name: str | None = None
    from_email: str | None = None
    reply_to: str | None = None


def _email(value: str, what: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidInput(f"{what}: {exc}", code="invalid_email") from None


def _url(value: str, what: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise InvalidInput(f"{what} must start with https://", code="invalid_url")
    return value


def _blank_to_none(value: str | None) -> str | None:
    return None if value is None or not value.strip() else value.strip()


def _apply(session: Session, campaign: Campaign, data: CampaignInput) -> None:
    if data.subject is not None:
        subject = " ".join(data.subject.split())
        if not subject:
            raise InvalidInput("a campaign needs a subject", code="missing_subject")
        if len(subject) > MAX_SUBJECT:
            raise InvalidInput(
                f"the subject is over {MAX_SUBJECT} characters", code="invalid_subject"
            )
        campaign.subject = subject
    if data.preheader is not None:
        campaign.preheader = _blank_to_none(data.preheader)
    if data.deal is not None:
        campaign.deal_id = get_deal(session, data.deal).id if data.deal.strip() else None
    if data.audience is not None:
        validate_audience(session, data.audience)
        campaign.audience = dict(data.audience)
    if data.theme is not None and data.html_template is not None:
        raise InvalidInput("choose --theme or --html, not both", code="conflicting_template")
    if data.theme is not None:
        if data.theme not in available_themes():
            raise InvalidInput(
                f"unknown theme {data.theme!r}; built-in themes: {', '.join(available_themes())}",
                code="unknown_theme",
            )
        campaign.theme, campaign.html_template = data.theme, None
    content = dict(campaign.content or {})
    if data.html_template is not None:
        if not has_unsubscribe_field(data.html_template):
            raise InvalidInput(NO_UNSUBSCRIBE_MESSAGE, code="no_unsubscribe_link")
        campaign.html_template, campaign.theme = data.html_template, None
    if campaign.html_template is not None:
        # A Markdown body fills a theme; custom HTML carries its own (the CLI refuses both).
        content.pop("body_markdown", None)
        data = replace(data, body_markdown=None)
    for key in CONTENT_KEYS:
        value = getattr(data, key)
        if value is None:
            continue
        value = value if key == "body_markdown" else _blank_to_none(value)
        if value and key in ("image_url", "button_url"):
            value = _url(value, key.replace("_", "-"))
        if value:
            content[key] = value
        else:
            content.pop(key, None)
    campaign.content = content
    if data.from_name is not None:
        campaign.from_name = _blank_to_none(data.from_name)
    if data.from_email is not None:
        value = _blank_to_none(data.from_email)
        campaign.from_email = _email(value, "from-email") if value else None
    if data.reply_to is not None:
        value = _blank_to_none(data.reply_to)
        campaign.reply_to = _email(value, "reply-to") if value else None


def _check_renders(session: Session, campaign: Campaign) -> None:
    """Compile and render for sample customers: a mistake names the field and line."""
    composer = Composer.from_campaign(session, campaign, None, secret=secrets.token_bytes(32))
    render_samples(composer)


def create_campaign(session: Session, name: str, data: CampaignInput) -> Campaign:
    if not NAME_RE.match(name):
        raise InvalidInput(
            "a campaign name is 1-100 letters, digits, spaces or . _ - "
            "(starting with a letter or digit)",
            code="invalid_name",
        )
    if session.scalar(select(Campaign.id).where(Campaign.name == name)) is not None:
        raise AlreadyExists(f"a campaign named {name!r} already exists", code="campaign_exists")
    if data.subject is None:
        raise InvalidInput("a campaign needs a subject", code="missing_subject")
    campaign = Campaign(name=name, subject="", audience={}, content={})
    if data.theme is None and data.html_template is None:
        campaign.theme = "classic"
    _apply(session, campaign, data)
    with session.no_autoflush:
        _check_renders(session, campaign)
    session.add(campaign)
    session.commit()
    return campaign


def edit_campaign(session: Session, name: str, data: CampaignInput) -> Campaign:
    campaign = get_campaign(session, name)
    if not is_editable(campaign):
        raise Conflict(
            f"campaign {name!r} is {campaign.status}; only draft, scheduled or paused "
            "campaigns can be edited",
            code="not_editable",
        )
    with session.no_autoflush:
        _apply(session, campaign, data)
        _check_renders(session, campaign)
    session.commit()
    return campaign


def get_campaign(session: Session, name: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        raise NotFound(f"no campaign named {name!r}", code="campaign_not_found")
    return campaign


def list_campaigns(session: Session, status: str | None = None) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.created_at, Campaign.id)
    if status is not None:
        if status not in {s.value for s in CampaignStatus}:
            raise InvalidInput(f"unknown status {status!r}", code="invalid_status")
        query = query.where(Campaign.status == status)
    return list(session.scalars(query))


def describe_campaign(session: Session, campaign: Campaign) -> dict[str, Any]:
    deal = session.get(Deal, campaign.deal_id) if campaign.deal_id is not None else None
    counts = dict(
        session.execute(
            select(Message.status, func.count())
            .where(Message.campaign_id == campaign.id)
            .group_by(Message.status)
        ).all()
    )
    described: dict[str, Any] = {
        "name": campaign.name,
        "status": campaign.status,
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "from_name": campaign.from_name,
        "from_email": campaign.from_email,
        "reply_to": campaign.reply_to,
        "audience": campaign.audience,
        "deal": deal.name if deal else None,
        "template": "custom HTML" if campaign.html_template is not None else campaign.theme,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "created_at": campaign.created_at.isoformat() if campaign.created_at else None,
        "messages": {str(k): int(v) for k, v in counts.items()},
    }
    described.update({key: campaign.content.get(key) for key in CONTENT_KEYS})
    return described


def input_fields() -> list[str]:
    return [f.name for f in fields(CampaignInput)]
