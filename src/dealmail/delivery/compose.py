"""Compose complete, signed messages: compiled once per campaign, then pure per recipient.

`Composer.for_campaign` does everything that does not depend on the customer (compile, inline
CSS, prepare the text template, MIME skeleton, shop settings, DKIM key); `compose` then fills
fields, derives the coupon's token and code, draws the QR, assembles and signs the MIME.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import formatdate
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.campaigns.fields import FIELDS, Attributes, value_or_missing
from dealmail.campaigns.render import (
    CompiledTemplates,
    TemplateSource,
    compile_templates,
    fill,
    fill_subject,
)
from dealmail.campaigns.templating import JINJA_RE, missing, render
from dealmail.config import Settings
from dealmail.coupons.qr import qr_png
from dealmail.coupons.tokens import derive_short_code, derive_token, format_short_code
from dealmail.deals.validity import value_text
from dealmail.delivery import dkim, mime
from dealmail.delivery.envelope import ComposedMessage, InlineImage
from dealmail.engagement.unsubscribe_links import (
    sign_unsubscribe,
    unsubscribe_mailto,
    unsubscribe_url,
)
from dealmail.errors import ConfigurationError, NotFound
from dealmail.models import Campaign, Coupon, Customer, Deal, Message
from dealmail.shop import ShopSettings, get_shop_settings

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Recipient:
    """One message's customer data, loaded in batch (see `Composer.load_recipients`)."""

    message_row_id: int | None
    customer_id: int | None
    email: str
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    coupon_nonce: str | None
    coupon_expires_at: datetime | None
    coupon_is_test: bool = False


@dataclass(frozen=True)
class CouponView:
    token: str
    url: str
    short_code: str
    png: bytes
    size: int


def template_source(campaign: Campaign) -> TemplateSource:
    content = campaign.content or {}
    return TemplateSource(
        subject=campaign.subject,
        preheader=campaign.preheader,
        theme=campaign.theme,
        html_template=campaign.html_template,
        body_markdown=content.get("body_markdown"),
    )


def deal_context(deal: Deal | None) -> Any:
    if deal is None:
        return missing("deal")
    return {
        "title": deal.title,
        "headline": value_text(deal),
        "terms": deal.terms or "",
        "kind": deal.kind,
        "value": "" if deal.value is None else str(deal.value),
        "currency": deal.currency or "",
    }


def _domain_of(email: str | None, public_url: str) -> str:
    if email and "@" in email:
        return email.rsplit("@", 1)[1].lower()
    host = public_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host or "localhost"


class Composer:
    """Compiled once per campaign: template compiled, CSS inlined once, text template prepared,
    shop settings and DKIM key loaded."""

    def __init__(
        self,
        *,
        campaign_id: int,
        campaign_name: str,
        compiled: CompiledTemplates,
        shop: ShopSettings,
        deal: Deal | None,
        sender_name: str | None,
        sender_email: str | None,
        reply_to: str | None,
        content: dict[str, Any],
        secret: bytes,
        dkim_key: dkim.DkimKey | None,
    ) -> None:
        self.campaign_id = campaign_id
        self.compiled = compiled
        self.shop = shop
        self.has_deal = deal is not None
        self.secret = secret
        self.dkim_key = dkim_key
        self.sender_email = sender_email
        self.public_url = shop.public_url.rstrip("/")
        self.domain = _domain_of(sender_email, self.public_url)
        self.from_header = mime.address(sender_name, sender_email) if sender_email else ""
        self.reply_to = reply_to
        self._constant_subject: str | None = None
        self._subjects: dict[str, str] = {}
        self._expiry_text: dict[Any, str] = {}
        self.base_context: dict[str, Any] = {name: missing(name) for name in FIELDS}
        self.base_context.update(
            {
                "shop_name": shop.shop_name,
                "postal_address": value_or_missing("postal_address", shop.postal_address),
                "public_url": self.public_url,
                "sender_name": value_or_missing("sender_name", sender_name),
                "sender_email": value_or_missing("sender_email", sender_email),
                "reply_to": value_or_missing("reply_to", reply_to),
                "campaign_name": campaign_name,
                "heading": value_or_missing("heading", content.get("heading")),
                "image_url": value_or_missing("image_url", content.get("image_url")),
                "image_alt": content.get("image_alt") or "",
                "button_text": value_or_missing("button_text", content.get("button_text")),
                "button_url": value_or_missing("button_url", content.get("button_url")),
                "deal": deal_context(deal),
            }
        )
        fixed = [("From", self.from_header)] if sender_email else []
        if reply_to:
            fixed.append(("Reply-To", reply_to))
        fixed += [
            ("MIME-Version", "1.0"),
            ("List-Unsubscribe-Post", LIST_UNSUBSCRIBE_POST),
            ("Feedback-ID", f"{campaign_id}:campaign:dealmail:{self.domain}"),
        ]
        self.skeleton = mime.build_skeleton(fixed)

    @classmethod
    def for_campaign(cls, session: Session, campaign_id: int, settings: Settings) -> Composer:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign with id {campaign_id}", code="campaign_not_found")
        return cls.from_campaign(session, campaign, settings)

    @classmethod
    def from_campaign(
        cls,
        session: Session,
        campaign: Campaign,
        settings: Settings | None,
        *,
        secret: bytes | None = None,
    ) -> Composer:
        """For a campaign row (saved or not). Without settings: no DKIM, and `secret` is used."""
        shop = get_shop_settings(session)
        deal = session.get(Deal, campaign.deal_id) if campaign.deal_id is not None else None
        sender_email = campaign.from_email or shop.sender_email
        sender_name = campaign.from_name or shop.sender_name or shop.shop_name
        reply_to = campaign.reply_to or shop.reply_to
        key = None
        if settings is not None:
            secret = secret or settings.secret_key_bytes()
            key = dkim.load_key(settings, _domain_of(sender_email, shop.public_url))
        if secret is None:
            raise ValueError("a secret or settings are needed")
        return cls(
            campaign_id=campaign.id or 0,
            campaign_name=campaign.name,
            compiled=compile_templates(template_source(campaign)),
            shop=shop,
            deal=deal,
            sender_name=sender_name,
            sender_email=sender_email,
            reply_to=reply_to,
            content=dict(campaign.content or {}),
            secret=secret,
            dkim_key=key,
        )

    @staticmethod
    def load_recipients(session: Session, message_ids: Sequence[int]) -> dict[int, Recipient]:
        """One query: messages ⋈ customers ⟕ coupons."""
        if not message_ids:
            return {}
        rows = session.execute(
            select(
                Message.id,
                Message.customer_id,
                Message.email,
                Customer.first_name,
                Customer.last_name,
                Customer.attributes,
                Coupon.nonce,
                Coupon.expires_at,
                Coupon.is_test,
            )
            .select_from(Message)
            .outerjoin(Customer, Customer.id == Message.customer_id)
            .outerjoin(Coupon, Coupon.message_id == Message.id)
            .where(Message.id.in_(list(message_ids)))
        )
        return {
            row[0]: Recipient(
                message_row_id=row[0],
                customer_id=row[1],
                email=row[2],
                first_name=row[3],
                last_name=row[4],
                attributes=dict(row[5] or {}),
                coupon_nonce=row[6],
                coupon_expires_at=row[7],
                coupon_is_test=bool(row[8]),
            )
            for row in rows
        }

    # -- per message, no database from here on --------------------------------------------

    def coupon_for(self, recipient: Recipient) -> CouponView | None:
        if not self.has_deal or recipient.coupon_nonce is None:
            return None
        token = derive_token(self.secret, recipient.coupon_nonce)
        url = f"{self.public_url}/c/{token}"
        qr = qr_png(url)
        return CouponView(
            token=token,
            url=url,
            short_code=format_short_code(derive_short_code(self.secret, recipient.coupon_nonce)),
            png=qr.png,
            size=qr.size,
        )

    def _expires(self, moment: datetime | None) -> str:
        if moment is None:
            return ""
        local = moment.astimezone(self.shop.zone).date()
        text = self._expiry_text.get(local)
        if text is None:
            text = f"{local.day} {local:%B %Y}"
            self._expiry_text[local] = text
        return text

    def context_for(
        self, recipient: Recipient, coupon: CouponView | None, *, qr_src: str | None
    ) -> dict[str, Any]:
        context = dict(self.base_context)
        full_name = " ".join(p for p in (recipient.first_name, recipient.last_name) if p)
        context["first_name"] = value_or_missing("first_name", recipient.first_name)
        context["last_name"] = value_or_missing("last_name", recipient.last_name)
        context["full_name"] = value_or_missing("full_name", full_name)
        context["email"] = recipient.email
        context["attributes"] = Attributes(recipient.attributes)
        signed = sign_unsubscribe(self.secret, recipient.customer_id, self.campaign_id)
        context["unsubscribe_url"] = unsubscribe_url(self.public_url, signed)
        if coupon is not None:
            context["coupon"] = {
                "url": coupon.url,
                "short_code": coupon.short_code,
                "qr_src": qr_src,
                "qr_size": coupon.size,
                "qr_alt": f"QR code of your coupon {coupon.short_code}",
                "expires": self._expires(recipient.coupon_expires_at),
                "is_test": recipient.coupon_is_test,
            }
        if self._constant_subject is not None:
            context["subject"] = self._constant_subject
        else:
            context["subject"] = fill_subject(self.compiled, context)
            if not JINJA_RE.search(self.compiled.subject_source):
                self._constant_subject = context["subject"]
        if self.compiled.preheader is not None:
            context["preheader"] = render(self.compiled.preheader, context)
        return context

    def preview_html(self, recipient: Recipient) -> str:
        """The HTML this recipient would get, with the QR as a `data:` image (preview only)."""
        coupon = self.coupon_for(recipient)
        qr_src = None
        if coupon is not None:
            qr_src = "data:image/png;base64," + base64.b64encode(coupon.png).decode("ascii")
        html, _text = fill(self.compiled, self.context_for(recipient, coupon, qr_src=qr_src))
        return html

    def _encoded_subject(self, subject: str) -> str:
        encoded = self._subjects.get(subject)
        if encoded is None:
            encoded = mime.encode_header_value(subject)
            if len(self._subjects) < 4096:
                self._subjects[subject] = encoded
        return encoded

    def compose(self, recipient: Recipient) -> ComposedMessage:
        if not self.sender_email:
            raise ConfigurationError(
                "no sender address: set the campaign's --from-email or "
                "`dealmail settings set sender_email ...`",
                code="no_sender",
            )
        coupon = self.coupon_for(recipient)
        serial = recipient.message_row_id if recipient.message_row_id is not None else "t"
        content_id = f"qr.{serial}.{secrets.token_hex(4)}@{self.domain}" if coupon else None
        context = self.context_for(recipient, coupon, qr_src=f"cid:{content_id}")
        html, text = fill(self.compiled, context)
        subject: str = context["subject"]
        message_id = f"<{secrets.token_hex(12)}.{serial}@{self.domain}>"
        to_header = mime.address(context["full_name"] or None, recipient.email)
        signed = context["unsubscribe_url"].rsplit("/u/", 1)[1]
        list_unsubscribe = (
            f"<{context['unsubscribe_url']}>,\r\n <{unsubscribe_mailto(self.domain, signed)}>"
        )
        body = mime.assemble_body(
            self.skeleton,
            html=html,
            text=text,
            png=coupon.png if coupon else None,
            content_id=content_id,
        )
        headers = [
            *self.skeleton.fixed_headers,
            ("To", to_header),
            ("Subject", self._encoded_subject(subject)),
            ("Date", formatdate(usegmt=True)),
            ("Message-ID", message_id),
            ("List-Unsubscribe", list_unsubscribe),
            ("Content-Type", self.skeleton.alternative_content_type),
        ]
        if self.dkim_key is not None:
            headers.insert(0, dkim.sign(self.dkim_key, headers, body))
        raw = mime.serialise_headers(headers) + b"\r\n" + body
        images: tuple[InlineImage, ...] = ()
        if coupon is not None and content_id is not None:
            images = (InlineImage(content_id, mime.PNG_FILENAME, "image/png", coupon.png),)
        return ComposedMessage(
            message_row_id=recipient.message_row_id,
            envelope_from=self.sender_email,
            recipients=(recipient.email,),
            raw=raw,
            message_id=message_id,
            subject=subject,
            from_header=self.from_header,
            to_header=to_header,
            html=html,
            text=text,
            reply_to=self.reply_to,
            headers={
                "List-Unsubscribe": list_unsubscribe.replace("\r\n", ""),
                "List-Unsubscribe-Post": LIST_UNSUBSCRIBE_POST,
                "Feedback-ID": f"{self.campaign_id}:campaign:dealmail:{self.domain}",
            },
            inline_images=images,
        )
