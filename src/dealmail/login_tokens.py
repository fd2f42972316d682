"""Signed tokens that remember a dashboard login: a one-minute ticket the page trades for a
twelve-hour cookie. They name a user and when the login happened; whether that login still
counts (logout, password change) is the database's answer (`accounts.remembered_user`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

TICKET = "dealmail.admin.ticket"
SESSION = "dealmail.admin.session"
LIFETIMES = {TICKET: timedelta(minutes=1), SESSION: timedelta(hours=12)}


@dataclass(frozen=True)
class Login:
    username: str
    at: datetime


def issue(secret: bytes, purpose: str, login: Login) -> str:
    micros = round(login.at.timestamp() * 1_000_000)
    return str(URLSafeSerializer(secret, salt=purpose).dumps([login.username, micros]))


def read(secret: bytes, purpose: str, token: str, now: datetime) -> Login | None:
    """The login a token of this purpose names, if it is genuine and not yet expired."""
    try:
        payload = URLSafeSerializer(secret, salt=purpose).loads(token)
        username, micros = payload
        at = datetime.fromtimestamp(micros / 1_000_000, UTC)
    except (BadSignature, TypeError, ValueError, OverflowError, OSError):
        return None
    if not isinstance(username, str) or not at <= now < at + LIFETIMES[purpose]:
        return None
    return Login(username, at)
