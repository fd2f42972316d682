"""Render a campaign for sample customers, so mistakes surface before anyone is mailed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from dealmail.campaigns.render import fill
from dealmail.campaigns.templating import render
from dealmail.coupons.tokens import new_nonce
from dealmail.delivery.compose import Composer, Recipient
from dealmail.models import utcnow


@dataclass(frozen=True)
class SampleRender:
    subject: str
    html: str
    text: str
    unsubscribe_url: str
    qr_src: str | None


def sample_recipients() -> list[Recipient]:
    """A customer with every field filled, and one with nothing but an address."""
    return [
        Recipient(
            message_row_id=None,
            customer_id=1,
            email="sample.customer@example.com",
            first_name="Sam",
            last_name="Sample",
            attributes={"city": "Springfield"},
            coupon_nonce=new_nonce(),
            coupon_expires_at=utcnow() + timedelta(days=14),
        ),
        Recipient(
            message_row_id=None,
            customer_id=2,
            email="x@example.com",
            first_name=None,
            last_name=None,
            attributes={},
            coupon_nonce=new_nonce(),
            coupon_expires_at=None,
        ),
    ]


def render_samples(composer: Composer) -> list[SampleRender]:
    """Raises TemplateProblem (naming the field and line) if any sample fails to render."""
    results = []
    for recipient in sample_recipients():
        coupon = composer.coupon_for(recipient)
        qr_src = "cid:qr.sample@example.com" if coupon else None
        context = composer.context_for(recipient, coupon, qr_src=qr_src)
        for check in composer.compiled.checks:
            render(check, context)
        html, text = fill(composer.compiled, context)
        results.append(
            SampleRender(
                subject=context["subject"],
                html=html,
                text=text,
                unsubscribe_url=context["unsubscribe_url"],
                qr_src=qr_src,
            )
        )
    return results
