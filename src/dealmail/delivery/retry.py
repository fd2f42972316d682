"""How a failed send is classified (SMTP replies, HTTP statuses) and when it is tried again."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta

from dealmail.delivery.backends.base import FailureKind, SendError

ENHANCED_CODE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
BASE_BACKOFF_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 6 * 3600.0
# Basic SMTP codes that, without an enhanced code, name a mailbox problem or an auth refusal.
MAILBOX_CODES = frozenset({550, 551, 553})
AUTH_CODES = frozenset({530, 534, 535, 538})
# Failures that say nothing about the recipient: many of them in a row mean the sender is broken.
SYSTEMIC_CODES = ("connection", "timeout", "auth", "compose", "HTTP 401", "HTTP 403")


def enhanced_code(text: str) -> str | None:
    match = ENHANCED_CODE.search(text)
    return ".".join(match.groups()) if match else None


def classify_smtp(code: int, text: str) -> FailureKind:
    """RFC 3463: 4xx temporary; 5.1.x and disabled mailboxes bounce; 5.7.x policy; else fail."""
    enhanced = enhanced_code(text)
    if 400 <= code < 500:
        return FailureKind.TEMPORARY
    if enhanced is not None:
        klass, subject, detail = enhanced.split(".")
        if klass == "4":
            return FailureKind.TEMPORARY
        if subject == "1" or (subject == "2" and detail == "1"):
            return FailureKind.HARD_BOUNCE
        if subject == "2" and detail == "2":  # mailbox full: soft
            return FailureKind.TEMPORARY
        if subject == "7":
            return FailureKind.POLICY
        return FailureKind.PERMANENT
    if code in AUTH_CODES:
        return FailureKind.POLICY
    if code in MAILBOX_CODES:
        return FailureKind.HARD_BOUNCE
    return FailureKind.PERMANENT


def smtp_error(code: int, reply: bytes | str) -> SendError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    enhanced = enhanced_code(text)
    label = f"{code} {enhanced}" if enhanced else str(code)
    return SendError(classify_smtp(code, text), f"{code} {text}".strip(), code=label)


def classify_http(status: int) -> FailureKind:
    """429 and 5xx are worth retrying; 401/403 are the sender's credentials; other 4xx permanent."""
    if status == 429 or status >= 500:
        return FailureKind.TEMPORARY
    if status in (401, 403):
        return FailureKind.POLICY
    return FailureKind.PERMANENT


def is_systemic(error: SendError) -> bool:
    """True when the failure is about us (credentials, policy, connection), not the recipient."""
    if error.kind is FailureKind.POLICY:
        return True
    code = error.code or ""
    return code.startswith(SYSTEMIC_CODES) or " 4.7." in code or code.startswith("421")


def backoff_seconds(
    attempts: int,
    *,
    base: float = BASE_BACKOFF_SECONDS,
    cap: float = MAX_BACKOFF_SECONDS,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff, jittered over its upper half; never sooner than Retry-After."""
    ceiling = min(cap, base * 2.0 ** max(0, attempts - 1))
    roll = rng.random() if rng is not None else random.random()
    delay = ceiling / 2 + roll * ceiling / 2
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def next_attempt(
    now: datetime,
    first_attempt_at: datetime | None,
    attempts: int,
    horizon: timedelta,
    *,
    base: float = BASE_BACKOFF_SECONDS,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> datetime | None:
    """When to try again, or None once the retry horizon (counted from the first try) is passed."""
    started = first_attempt_at or now
    at = now + timedelta(
        seconds=backoff_seconds(attempts, base=base, retry_after=retry_after, rng=rng)
    )
    if at - started > horizon:
        return None
    return at
