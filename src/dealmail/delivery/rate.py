"""The global rate limiter: exact per-window send limits for every worker, kept in `send_log`.

A worker reserves send slots in a short locked transaction (PostgreSQL: an advisory lock;
SQLite: BEGIN IMMEDIATE), reading the send log's trailing windows and inserting its
reservations with their times (at most `MAX_AHEAD_SECONDS` ahead). Slots are spaced so that any
`limit + 1` of them span at least `window + GUARD_SECONDS`. A worker connects first, then starts
each send within half the guard after its slot (a slot reached later is given back, costing no
quota), and a send that finishes after the guard is logged again at its finish
(`log_late_finish`): any window that could hold its arrival then counts it. So no window of
the configured length, counted at the receiving server, holds more than the limit, however
many workers send.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from dealmail.models import SendLog
from dealmail.shop import ShopSettings

GUARD_SECONDS = 0.1
# Slots are handed out at most this far ahead, so a late send, logged again at its finish
# (`log_late_finish`), is seen by the plans for the next window.
MAX_AHEAD_SECONDS = 0.25
WARMUP_GROWTH = 1.4
DAY = 86_400.0
HOUR = 3_600.0
# Advisory lock key for the limiter on PostgreSQL (any constant shared by every worker).
LIMITER_LOCK_KEY = 0x6465616C6D61696C  # "dealmail"


@dataclass(frozen=True)
class Window:
    seconds: float
    limit: int


def warmup_daily_limit(start_per_day: int, started_on: date, today: date) -> int:
    """Daily volume start × 1.4^days since the warm-up began."""
    days = max(0, (today - started_on).days)
    return max(1, math.floor(start_per_day * WARMUP_GROWTH**days + 1e-6))


def windows_for(
    shop: ShopSettings, today: date, backend_per_second: float | None = None
) -> list[Window]:
    """The windows the shop's settings (and the backend's own quota) impose; empty: unlimited."""
    windows: list[Window] = []
    per_second = [rate for rate in (shop.rate_per_second, backend_per_second) if rate and rate > 0]
    if per_second:
        rate = min(per_second)
        # A fractional rate below one a second becomes one send per 1/rate seconds.
        windows.append(Window(1.0, math.floor(rate)) if rate >= 1 else Window(1.0 / rate, 1))
    if shop.rate_per_hour > 0:
        windows.append(Window(HOUR, shop.rate_per_hour))
    daily = [shop.rate_per_day] if shop.rate_per_day > 0 else []
    if shop.warmup_start_per_day > 0 and shop.warmup_started_on:
        started = date.fromisoformat(shop.warmup_started_on)
        daily.append(warmup_daily_limit(shop.warmup_start_per_day, started, today))
    if daily:
        windows.append(Window(DAY, min(daily)))
    return windows


def plan_slots(
    now: float,
    count: int,
    windows: Sequence[Window],
    tails: Sequence[Sequence[float]],
    latest: float | None,
    *,
    guard: float = GUARD_SECONDS,
    max_ahead: float = 1.0,
) -> tuple[list[float], float]:
    """Times for up to `count` new sends, and the earliest time a further slot could go.

    `tails[i]` holds, newest first, the log's send times ranked `limit - count + 1` to
    `limit` by recency in window i (fewer when the log is shorter). A new slot must come at
    least `window + guard` after the send `limit` places back, counting new slots, and never
    before `latest` (slots are handed out in time order). Slots beyond `now + max_ahead` are not
    reserved.
    """
    slots: list[float] = []
    previous = max(now, latest) if latest is not None else now
    for j in range(count):
        at = previous
        for window, tail in zip(windows, tails, strict=True):
            if j >= window.limit:
                bound = slots[j - window.limit]
            else:
                position = count - 1 - j  # rank limit - j, newest first, within the fetched tail
                if position >= len(tail):
                    continue
                bound = tail[position]
            at = max(at, bound + window.seconds + guard)
        if at > now + max_ahead:
            return slots, at
        slots.append(at)
        previous = at
    return slots, previous


@dataclass(frozen=True)
class Reservation:
    """Slots as seconds from `db_now`; `retry_in` says when to ask again if none were granted."""

    db_now: datetime
    delays: list[float]
    retry_in: float
    ids: list[int]  # the send_log rows, to give back a slot that was not used


def _to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _db_now(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(select(func.clock_timestamp()))
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    return datetime.now(UTC)


def reserve(
    session: Session,
    count: int,
    windows: Sequence[Window],
    worker: str,
    *,
    guard: float = GUARD_SECONDS,
    max_ahead: float = MAX_AHEAD_SECONDS,
    give_back: Sequence[int] = (),
) -> Reservation:
    """Reserve up to `count` send slots in one short transaction; commits.

    `give_back` names slots reserved earlier but not used (the sender got to them too late):
    they are deleted under the same lock, so an unused slot costs no quota.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(LIMITER_LOCK_KEY)))
    else:
        session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock is ours from here
    if give_back:
        session.execute(delete(SendLog).where(SendLog.id.in_(list(give_back))))
    now_dt = _db_now(session)
    now = now_dt.timestamp()
    count = max(1, min([count, *(w.limit for w in windows)]))
    tails: list[list[float]] = []
    for window in windows:
        skip = window.limit - count
        rows = session.scalars(
            select(SendLog.at)
            .where(SendLog.at > _to_datetime(now - window.seconds - guard))
            .order_by(SendLog.at.desc())
            .offset(skip)
            .limit(count)
        )
        tails.append([row.timestamp() for row in rows])
    latest = session.scalar(select(func.max(SendLog.at)))
    slots, next_free = plan_slots(
        now,
        count,
        windows,
        tails,
        latest.timestamp() if latest is not None else None,
        guard=guard,
        max_ahead=max_ahead,
    )
    ids: list[int] = []
    if slots:
        ids = list(
            session.scalars(
                insert(SendLog).returning(SendLog.id, sort_by_parameter_order=True),
                [{"at": _to_datetime(s), "worker": worker} for s in slots],
            )
        )
    session.commit()
    return Reservation(now_dt, [s - now for s in slots], max(0.0, next_free - now), ids)


def log_late_finish(session: Session, at: float, worker: str) -> None:
    """A send that finished after its slot's guard may have arrived anywhere from its slot to
    `at`: log `at` too, so every window that could hold the arrival counts it; commits."""
    session.execute(insert(SendLog).values(at=_to_datetime(at), worker=worker))
    session.commit()


def give_back(session: Session, ids: Sequence[int]) -> None:
    """Unused slots (a stopping worker's) return to the pool; commits."""
    if ids:
        session.execute(delete(SendLog).where(SendLog.id.in_(list(ids))))
        session.commit()


def prune(session: Session, windows: Sequence[Window], now: datetime | None = None) -> int:
    """Forget sends older than the longest window (at least a day); commits."""
    longest = max([DAY, *(w.seconds for w in windows)]) + 60
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=longest)
    result = session.execute(delete(SendLog).where(SendLog.at < cutoff))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
