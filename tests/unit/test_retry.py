"""Failure classification (SMTP replies, HTTP statuses) and the retry schedule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dealmail.delivery.backends.base import FailureKind, SendError
from dealmail.delivery.retry import (
    backoff_seconds,
    classify_http,
    classify_smtp,
    is_systemic,
    next_attempt,
    smtp_error,
)


@pytest.mark.parametrize(
    ("code", "text", "kind"),
    [
        (421, "4.7.0 Try again later, closing connection", FailureKind.TEMPORARY),
        (451, "4.3.0 Temporary server error", FailureKind.TEMPORARY),
        (450, "mailbox busy", FailureKind.TEMPORARY),
        (421, "4.7.28 rate limited, slow down", FailureKind.TEMPORARY),
        (
            550,
            "5.1.1 The email account that you tried to reach does not exist",
            FailureKind.HARD_BOUNCE,
        ),
        (550, "5.1.10 RESOLVER.ADR.RecipientNotFound", FailureKind.HARD_BOUNCE),
        (
            550,
            "5.2.1 The email account that you tried to reach is disabled",
            FailureKind.HARD_BOUNCE,
        ),
        (552, "5.2.2 mailbox full", FailureKind.TEMPORARY),
        (550, "5.7.26 Unauthenticated email is not accepted", FailureKind.POLICY),
        (554, "5.7.1 Message rejected as spam", FailureKind.POLICY),
        (535, "Authentication credentials invalid", FailureKind.POLICY),
        (550, "No such user here", FailureKind.HARD_BOUNCE),
        (554, "Transaction failed", FailureKind.PERMANENT),
        (552, "5.3.4 Message too big", FailureKind.PERMANENT),
    ],
)
def test_smtp_replies_are_classified_per_rfc_3463(code: int, text: str, kind: FailureKind) -> None:
    assert classify_smtp(code, text) is kind


def test_smtp_error_carries_the_enhanced_code() -> None:
    error = smtp_error(550, b"5.1.1 <gone@example.com>: Recipient address rejected")
    assert error.kind is FailureKind.HARD_BOUNCE
    assert error.code == "550 5.1.1"
    assert "Recipient address rejected" in str(error)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, FailureKind.TEMPORARY),
        (500, FailureKind.TEMPORARY),
        (503, FailureKind.TEMPORARY),
        (400, FailureKind.PERMANENT),
        (413, FailureKind.PERMANENT),
        (401, FailureKind.POLICY),
        (403, FailureKind.POLICY),
    ],
)
def test_http_statuses_are_classified(status: int, kind: FailureKind) -> None:
    assert classify_http(status) is kind


def test_systemic_failures_are_about_the_sender_not_the_recipient() -> None:
    assert is_systemic(SendError(FailureKind.POLICY, "x", code="550 5.7.26"))
    assert is_systemic(SendError(FailureKind.TEMPORARY, "x", code="connection"))
    assert is_systemic(SendError(FailureKind.TEMPORARY, "x", code="421 4.7.0"))
    assert not is_systemic(SendError(FailureKind.HARD_BOUNCE, "x", code="550 5.1.1"))
    assert not is_systemic(SendError(FailureKind.TEMPORARY, "x", code="451 4.3.0"))
    assert is_systemic(SendError(FailureKind.PERMANENT, "template broken", code="compose"))


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [backoff_seconds(n, base=10, cap=1000, rng=rng) for n in range(1, 10)]
    for attempts, delay in enumerate(delays, start=1):
        ceiling = min(1000, 10 * 2 ** (attempts - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not a fixed ladder


def test_retry_after_is_honoured() -> None:
    assert backoff_seconds(1, base=1, retry_after=120) >= 120


def test_no_retry_past_the_horizon() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    horizon = timedelta(hours=72)
    soon = next_attempt(start + timedelta(hours=1), start, 2, horizon, base=60)
    assert soon is not None
    assert soon > start + timedelta(hours=1)
    late = next_attempt(start + timedelta(hours=71, minutes=59), start, 12, horizon, base=3600)
    assert late is None
