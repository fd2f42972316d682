"""Failed coupon lookups: logged by hash, and guessing devices or addresses are slowed down.

Two limits, counted over the `lookup_failures` rows of the same device or the same IP address:
more than `MAX_FAILURES_PER_MINUTE` unknown codes in a minute answers 429 for the rest of that
minute; `SHORT_CODE_MISS_LIMIT` unknown short codes within `SHORT_CODE_LOCK` locks short-code
lookups (the 50-bit codes one could brute-force) for that device or address, while 128-bit QR
tokens keep working so the queue at the counter is not stopped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from dealmail.coupons.lookup import CodeRef
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


def _owner_filter(device_id: int | None, ip: str | None) -> object:
    clauses = []
    if device_id is not None:
        clauses.append(LookupFailure.device_id == device_id)
    if ip:
        clauses.append(LookupFailure.ip == ip)
    return or_(*clauses) if clauses else None


def check(
    session: Session, device_id: int | None, ip: str | None, ref: CodeRef, now: datetime
) -> None:
    """Raise Throttled when this device or address has missed too often lately."""
    owner = _owner_filter(device_id, ip)
    if owner is None:
        return
    minute_ago = now - FAILURE_WINDOW
    recent, short_misses = session.execute(
        select(
            func.coalesce(func.sum(case((LookupFailure.at >= minute_ago, 1), else_=0)), 0),
            func.coalesce(func.sum(case((LookupFailure.reason == SHORT_CODE_MISS, 1), else_=0)), 0),
        ).where(owner, LookupFailure.at >= now - SHORT_CODE_LOCK)  # type: ignore[arg-type]
    ).one()
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


def failure_reason(ref: CodeRef) -> str:
    return {"token": "unknown_token", "short_code": SHORT_CODE_MISS}.get(ref.kind, "malformed")


def record_failure(
    session: Session, device_id: int | None, ip: str | None, ref: CodeRef, now: datetime
) -> None:
    """Add the failure to the caller's transaction; only the code's hash is kept."""
    session.add(
        LookupFailure(
            device_id=device_id,
            ip=(ip or None) and ip[:64],
            code_hash=ref.hash,
            reason=failure_reason(ref),
            at=now,
        )
    )
