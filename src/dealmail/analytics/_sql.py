"""SQL pieces the report queries share: live-redemption filter, epoch buckets, local-day bounds."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, cast, func
from sqlalchemy.orm import Session

from dealmail.models import Redemption

# Buckets fine enough that each falls within one local hour, whatever the zone's offset; the few
# per-bucket rows are then regrouped by local hour and day in Python.
HOUR_SECONDS = 3600
QUARTER_SECONDS = 900


def live_redemption() -> ColumnElement[bool]:
    """A redemption that counts: neither a void row nor a voided original.

    Written as one COALESCE so SQLite scans instead of walking the unique index on voids_id,
    where almost every entry is NULL (measured: 62 ms against 36 ms at 100,000 redemptions).
    """
    return func.coalesce(Redemption.voids_id, Redemption.voided_by_id).is_(None)


def bucket_seconds(zone: ZoneInfo) -> int:
    """Hours when the zone's offsets are whole hours (winter and summer), else quarter hours."""
    year = datetime.now(UTC).year
    for month in (1, 7):
        offset = datetime(year, month, 1, tzinfo=zone).utcoffset() or timedelta(0)
        if offset.total_seconds() % HOUR_SECONDS:
            return QUARTER_SECONDS
    return HOUR_SECONDS


def epoch_bucket(session: Session, column: Any, seconds: int) -> Any:
    """Integer bucket number of a UTC timestamp column (its Unix time floor-divided)."""
    if session.get_bind().dialect.name == "sqlite":
        epoch: Any = (
            func.unixepoch(column)
            if sqlite3.sqlite_version_info >= (3, 38)
            else (cast(func.strftime("%s", column), Integer))
        )
        return epoch // seconds
    return cast(func.floor(func.extract("epoch", column) / seconds), Integer)


def bucket_start(bucket: int, seconds: int) -> datetime:
    return datetime.fromtimestamp(int(bucket) * seconds, tz=UTC)


def local_day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC [start, end) covering local dates first..last inclusive."""
    start = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


@dataclass(frozen=True)
class RedemptionScope:
    """Which redemptions a report covers; None means no restriction."""

    campaign_id: int | None = None
    location_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def filters(self) -> list[ColumnElement[bool]]:
        """The scope's own restrictions (campaign, location, period)."""
        found: list[ColumnElement[bool]] = []
        if self.campaign_id is not None:
            found.append(Redemption.campaign_id == self.campaign_id)
        if self.location_id is not None:
            found.append(Redemption.location_id == self.location_id)
        if self.start is not None:
            found.append(Redemption.redeemed_at >= self.start)
        if self.end is not None:
            found.append(Redemption.redeemed_at < self.end)
        return found

    def conditions(self) -> list[ColumnElement[bool]]:
        """The live redemptions within the scope."""
        return [live_redemption(), *self.filters()]
