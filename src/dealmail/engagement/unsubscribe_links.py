"""Signed unsubscribe links: name customer and campaign, unforgeable, never expire.

The value is `<customer>-<campaign>-<signature>`, lower-case only, so it survives mail systems
that fold the local part of `unsubscribe+<value>@domain` to lower case. The signature is
HMAC-SHA256 with the secret key, cut to 120 bits: nobody can make a link for a customer they
have not been sent one for, and the numbers alone enumerate nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

SIGNED_RE = re.compile(r"^(\d{1,18})-(\d{1,18})-([a-z2-7]{24})$")
TEST_CUSTOMER_ID = 0  # a test send to an address that is no customer


@dataclass(frozen=True)
class UnsubscribeTarget:
    customer_id: int
    campaign_id: int


def _signature(key: bytes, customer_id: int, campaign_id: int) -> str:
    digest = hmac.new(
        key, f"unsubscribe\0{customer_id}\0{campaign_id}".encode(), hashlib.sha256
    ).digest()
    return base64.b32encode(digest[:15]).decode("ascii").lower()


def sign_unsubscribe(key: bytes, customer_id: int | None, campaign_id: int) -> str:
    customer = TEST_CUSTOMER_ID if customer_id is None else customer_id
    return f"{customer}-{campaign_id}-{_signature(key, customer, campaign_id)}"


def verify_unsubscribe(key: bytes, signed: str) -> UnsubscribeTarget | None:
    """The customer and campaign a link names, or None when it was not made with our key."""
    match = SIGNED_RE.match(signed.strip().lower())
    if match is None:
        return None
    customer_id, campaign_id = int(match.group(1)), int(match.group(2))
    expected = _signature(key, customer_id, campaign_id)
    if not hmac.compare_digest(expected, match.group(3)):
        return None
    return UnsubscribeTarget(customer_id=customer_id, campaign_id=campaign_id)


def unsubscribe_url(public_url: str, signed: str) -> str:
    return f"{public_url.rstrip('/')}/u/{signed}"


def unsubscribe_mailto(domain: str, signed: str) -> str:
    return f"mailto:unsubscribe+{signed}@{domain}"
