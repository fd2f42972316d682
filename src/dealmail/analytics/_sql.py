"""SQL pieces the report queries share: live-redemption filter, epoch buckets, local-day bounds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, and_, cast, func
from sqlalchemy.orm import Session

from dealmail.models import Redemption

# Fine enough that every zone's offset (whole, half or quarter hours) maps a bucket to one local
# hour; the per-bucket rows are then regrouped by local hour and day in Python.
BUCKET_SECONDS = 900


def live_redemption() -> ColumnElement[bool]:
    """A redemption that counts: neither a void row nor a voided original."""
    return and_(Redemption.voids_id.is_(None), Redemption.voided_by_id.is_(None))


def epoch_bucket(session: Session, column: Any, seconds: int = BUCKET_SECONDS) -> Any:
    """Integer bucket number of a UTC timestamp column (its Unix time divided by `seconds`)."""
    if session.get_bind().dialect.name == "sqlite":
        epoch: Any = cast(func.strftime("%s", column), Integer)
        return epoch / seconds
    return cast(func.floor(func.extract("epoch", column) / seconds), Integer)


def bucket_start(bucket: int, seconds: int = BUCKET_SECONDS) -> datetime:
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

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = [live_redemption()]
        if self.campaign_id is not None:
            found.append(Redemption.campaign_id == self.campaign_id)
        if self.location_id is not None:
            found.append(Redemption.location_id == self.location_id)
        if self.start is not None:
            found.append(Redemption.redeemed_at >= self.start)
        if self.end is not None:
            found.append(Redemption.redeemed_at < self.end)
        return found
