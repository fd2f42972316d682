"""Every field a template can use, with what it holds: the one list the docs and checks share."""

from __future__ import annotations

from typing import Any

from dealmail.campaigns.templating import Missing, missing

FIELDS: dict[str, str] = {
    "first_name": 'customer\'s first name; empty when unknown, so use `| default("there")`',
    "last_name": "customer's last name; empty when unknown",
    "full_name": "first and last name joined; empty when both are unknown",
    "email": "the address this message is sent to",
    "attributes": "the customer's imported extra columns, e.g. `attributes.city`; "
    "a column this customer lacks is empty",
    "shop_name": "the shop's name (settings `shop_name`)",
    "postal_address": "the shop's postal address (settings `postal_address`), required by law",
    "public_url": "the base URL of the shop's dealmail web app (settings `public_url`)",
    "sender_name": "the From name of this campaign",
    "sender_email": "the From address of this campaign",
    "reply_to": "the Reply-To address, if any",
    "campaign_name": "the campaign's name",
    "subject": "the subject line, already filled in for this customer",
    "preheader": "the preview text shown after the subject in the inbox",
    "heading": "the heading of a built-in theme",
    "image_url": "the optional hero image URL of a built-in theme (https)",
    "image_alt": "the hero image's alt text",
    "button_text": "the call-to-action button's label",
    "button_url": "the call-to-action button's link",
    "deal": 'the campaign\'s deal, or empty: `deal.title`, `deal.headline` ("20% off"), '
    "`deal.terms`, `deal.kind`, `deal.value`, `deal.currency`",
    "coupon": "this customer's coupon, or empty: `coupon.url` (the page the QR opens), "
    "`coupon.short_code` (K7QM-2XPA-9D), `coupon.qr_src` (the QR image: a cid: reference in "
    "mail), `coupon.qr_size` (pixels), `coupon.qr_alt`, `coupon.expires` (a date in the shop's "
    "time zone, or empty), `coupon.is_test`",
    "unsubscribe_url": "this customer's one-click unsubscribe page; custom HTML must contain it",
}
KNOWN_FIELDS = frozenset(FIELDS)


class Attributes(dict[str, Any]):
    """The customer's free attributes; a key this customer lacks reads as empty."""

    def __missing__(self, key: str) -> Missing:
        return missing(key)


def value_or_missing(name: str, value: Any) -> Any:
    return missing(name) if value is None or value == "" else value
