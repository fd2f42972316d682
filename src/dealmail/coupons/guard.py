"""Failed coupon lookups: logged by hash, and guessing devices or addresses are slowed down.

Two limits, counted over the `lookup_failures` rows of the same device or the same IP address:
more than `MAX_FAILURES_PER_MINUTE` unknown codes in a minute answers 429 for the rest of that
minute; `SHORT_CODE_MISS_LIMIT` unknown short codes within `SHORT_CODE_LOCK` locks short-code
lookups (the 50-bit codes one could brute-force) for that device or address, while 128-bit QR
tokens keep working so the queue at the counter is not stopped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select

from dealmail.coupons.lookup import CodeRef
from dealmail.coupons.prepared import Prepared, Runner
from dealmail.errors import DomainError
from dealmail.models import LookupFailure

FAILURE_WINDOW = timedelta(minutes=1)
MAX_FAILURES_PER_MINUTE = 10
SHORT_CODE_LOCK = timedelta(minutes=15)
SHORT_CODE_MISS_LIMIT = 8
SHORT_CODE_MISS = "unknown_short_code"


class Throttled(DomainError):
    code = "too_many_failed_lookups"
    http_status = 429

    @property
    def retry_after(self) -> int:
        return int(self.detail.get("retry_after", 60))


_MINE = or_(LookupFailure.device_id == bindparam("device_id"), LookupFailure.ip == bindparam("ip"))


def _count(*conditions: Any) -> Any:
    return select(func.count()).where(_MINE, *conditions).scalar_subquery()


# Scalar subqueries the redeem lookup embeds, so the hot path asks the database once.
RECENT_FAILURES = _count(LookupFailure.at >= bindparam("minute_ago")).label("recent_failures")
SHORT_CODE_MISSES = _count(
    LookupFailure.reason == SHORT_CODE_MISS, LookupFailure.at >= bindparam("lock_since")
).label("short_code_misses")
# Built once: building a statement costs more than running it.
_COUNTS = Prepared(select(RECENT_FAILURES, SHORT_CODE_MISSES))
_RECORD_FAILURE = Prepared(insert(LookupFailure), ("device_id", "ip", "code_hash", "reason", "at"))


def parameters(device_id: int | None, ip: str | None, now: datetime) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "ip": ip or None,
        "minute_ago": now - FAILURE_WINDOW,
        "lock_since": now - SHORT_CODE_LOCK,
    }


def judge(recent: int, short_misses: int, ref: CodeRef) -> None:
    """Raise Throttled when these counts are over the limits."""
    if recent >= MAX_FAILURES_PER_MINUTE:
        raise Throttled(
            "too many unknown codes in the last minute; wait a minute and try again",
            detail={"retry_after": int(FAILURE_WINDOW.total_seconds())},
        )
    if ref.kind == "short_code" and short_misses >= SHORT_CODE_MISS_LIMIT:
        raise Throttled(
            "short codes are locked on this device after repeated misses; scan the QR code "
            "instead, or wait 15 minutes",
            code="short_code_locked",
            detail={"retry_after": int(SHORT_CODE_LOCK.total_seconds())},
        )


def check(
    runner: Runner, device_id: int | None, ip: str | None, ref: CodeRef, now: datetime
) -> None:
    """Raise Throttled when this device or address has missed too often lately."""
    if device_id is None and not ip:
        return
    counts = runner.first(_COUNTS, parameters(device_id, ip, now))
    assert counts is not None
    recent, short_misses = counts
    judge(recent, short_misses, ref)


def failure_reason(ref: CodeRef) -> str:
    return {"token": "unknown_token", "short_code": SHORT_CODE_MISS}.get(ref.kind, "malformed")


def record_failure(
    runner: Runner, device_id: int | None, ip: str | None, ref: CodeRef, now: datetime
) -> None:
    """Add the failure to the caller's transaction; only the code's hash is kept."""
    runner.rowcount(
        _RECORD_FAILURE,
        {
            "device_id": device_id,
            "ip": ip[:64] if ip else None,
            "code_hash": ref.hash,
            "reason": failure_reason(ref),
            "at": now,
        },
    )
