"""Preflight: what must hold before a campaign may be scheduled or sent, and what merely warns.

Blocking: postal address, sender, an unsubscribe link in the rendered HTML, a non-empty audience,
an unexpired deal, templates that render. Warnings: long or all-caps subject, mostly-image body,
empty text part, many links.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from dealmail.campaigns.checks import SampleRender, render_samples
from dealmail.campaigns.render import NO_UNSUBSCRIBE_MESSAGE, has_unsubscribe_field
from dealmail.campaigns.textify import html_to_text
from dealmail.config import Settings
from dealmail.contacts.audience import count_audience
from dealmail.delivery.compose import Composer
from dealmail.errors import DomainError
from dealmail.models import Campaign, Deal, utcnow
from dealmail.shop import get_shop_settings

SUBJECT_LONG = 70
CAPS_SHARE = 0.7
MANY_LINKS = 15
TEXT_PER_IMAGE = 150
MIN_TEXT = 40
DEAL_SOON = timedelta(days=3)
_IMG_RE = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", re.IGNORECASE)
_HREF_RE = re.compile(r"<a\b[^>]*\bhref=", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    code: str
    message: str


@dataclass
class PreflightReport:
    blocking: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    audience_size: int | None = None

    @property
    def ready(self) -> bool:
        return not self.blocking

    def as_dict(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "audience_size": self.audience_size,
            "blocking": [{"code": f.code, "message": f.message} for f in self.blocking],
            "warnings": [{"code": f.code, "message": f.message} for f in self.warnings],
        }


def subject_warnings(subject: str) -> list[Finding]:
    found = []
    if len(subject) > SUBJECT_LONG:
        found.append(
            Finding(
                "subject_long",
                f"the subject has {len(subject)} characters; phones show about 40, "
                f"keep it under {SUBJECT_LONG}",
            )
        )
    letters = [c for c in subject if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) >= CAPS_SHARE:
        found.append(
            Finding("subject_caps", "the subject is mostly capitals, which looks like spam")
        )
    return found


def body_warnings(sample: SampleRender) -> list[Finding]:
    found = []
    images = [src for src in _IMG_RE.findall(sample.html) if src != sample.qr_src]
    visible = html_to_text(sample.html)
    if images and len(visible) < TEXT_PER_IMAGE * len(images):
        found.append(
            Finding(
                "mostly_images",
                f"the body is mostly images ({len(images)} image(s), {len(visible)} characters "
                "of text): spam filters and readers with images off see little",
            )
        )
    text = sample.text.replace(sample.unsubscribe_url, "")
    if len(text.strip()) < MIN_TEXT:
        found.append(Finding("empty_text", "the plain-text part is (almost) empty"))
    links = len(_HREF_RE.findall(sample.html))
    if links > MANY_LINKS:
        found.append(Finding("many_links", f"{links} links; more than {MANY_LINKS} looks spammy"))
    return found


def delivery_warnings(public_url: str, settings: Settings) -> list[Finding]:
    found = []
    if not public_url.startswith("https://"):
        found.append(
            Finding(
                "public_url_not_https",
                f"public_url is {public_url}: Gmail and Yahoo accept one-click unsubscribe only "
                "over https, and recipients cannot reach a local address",
            )
        )
    if not settings.dkim_selector:
        found.append(
            Finding(
                "dkim_off",
                "messages will not be DKIM-signed; Gmail and Yahoo require DKIM from bulk "
                "senders: run `dealmail dkim generate --selector S`",
            )
        )
    return found


def _deal_findings(deal: Deal | None, now: datetime) -> list[Finding]:
    if deal is not None and deal.valid_until is not None and deal.valid_until <= now:
        return [
            Finding(
                "deal_expired",
                f"deal {deal.name!r} expired on {deal.valid_until:%Y-%m-%d}; pick another deal "
                "or extend it",
            )
        ]
    return []


def run_preflight(
    session: Session,
    campaign: Campaign,
    settings: Settings,
    *,
    now: datetime | None = None,
    send_at: datetime | None = None,
) -> PreflightReport:
    """`send_at`: when it is about to be scheduled for (default: its own send_at, else now)."""
    now = now or utcnow()
    report = PreflightReport()
    shop = get_shop_settings(session)
    if not (shop.postal_address or "").strip():
        report.blocking.append(
            Finding(
                "no_postal_address",
                "no postal address: the law wants one in every message; "
                '`dealmail settings set postal_address "..."`',
            )
        )
    if not (campaign.from_email or shop.sender_email):
        report.blocking.append(
            Finding(
                "no_sender",
                "no sender address: give the campaign --from-email or "
                "`dealmail settings set sender_email ...`",
            )
        )
    if campaign.html_template is not None and not has_unsubscribe_field(campaign.html_template):
        report.blocking.append(
            Finding(
                "no_unsubscribe_link",
                NO_UNSUBSCRIBE_MESSAGE,
            )
        )
    try:
        report.audience_size = count_audience(session, dict(campaign.audience or {}))
    except DomainError as exc:
        report.blocking.append(Finding(exc.code, f"audience: {exc.message}"))
    else:
        if report.audience_size == 0:
            report.blocking.append(
                Finding("empty_audience", "the audience has no subscribed, unsuppressed customer")
            )
    deal = session.get(Deal, campaign.deal_id) if campaign.deal_id is not None else None
    report.blocking += _deal_findings(deal, now)
    planned = send_at or campaign.send_at
    start = max(now, planned) if planned else now
    if deal is not None and deal.valid_until is not None:
        if now < deal.valid_until <= start:
            report.blocking.append(
                Finding(
                    "deal_expired",
                    f"deal {deal.name!r} ends on {deal.valid_until:%Y-%m-%d}, before the "
                    f"campaign is due to send ({start:%Y-%m-%d %H:%M} UTC)",
                )
            )
        elif start < deal.valid_until < start + DEAL_SOON:
            report.warnings.append(
                Finding(
                    "deal_expires_soon",
                    f"deal {deal.name!r} ends on {deal.valid_until:%Y-%m-%d}: customers get "
                    "little time to use it",
                )
            )
    try:
        composer = Composer.from_campaign(
            session, campaign, settings, secret=secrets.token_bytes(32)
        )
        samples = render_samples(composer)
    except DomainError as exc:
        report.blocking.append(Finding(exc.code, exc.message))
        return report
    has_field = campaign.html_template is None or has_unsubscribe_field(campaign.html_template)
    if has_field and any(s.unsubscribe_url not in s.html for s in samples):
        report.blocking.append(
            Finding(
                "no_unsubscribe_link",
                "the rendered HTML does not show {{ unsubscribe_url }} to every customer "
                "(is it inside an {% if %}?)",
            )
        )
    report.warnings += subject_warnings(samples[0].subject)
    report.warnings += body_warnings(samples[0])
    report.warnings += delivery_warnings(shop.public_url, settings)
    return report


def require_ready(
    session: Session,
    campaign: Campaign,
    settings: Settings,
    *,
    now: datetime | None = None,
    send_at: datetime | None = None,
) -> PreflightReport:
    """The report when nothing blocks; otherwise DomainError `preflight_failed` listing why."""
    report = run_preflight(session, campaign, settings, now=now, send_at=send_at)
    if report.blocking:
        reasons = "; ".join(f.message for f in report.blocking)
        raise DomainError(
            f"campaign {campaign.name!r} cannot be sent: {reasons}",
            code="preflight_failed",
            http_status=409,
            detail=report.as_dict(),
        )
    return report
