"""A coupon's validity window, counted in whole days at the location where it is shown.

The owner thinks in dates: "valid until 31 December" means until the end of that day at the
counter. So the first and last valid days are the calendar dates of the stored `valid_from` and
`expires_at` instants in the shop's time zone (where the owner set them), and the coupon works from
00:00 of the first day to 24:00 of the last day in the location's own time zone. A location in
another zone follows its own clock. Both bounds reduce to one comparison with a cutoff instant, so
the redeem UPDATE can check them in SQL.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class WindowState(StrEnum):
    OPEN = "open"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def expiry_cutoff(now: datetime, shop_zone: ZoneInfo, location_zone: ZoneInfo) -> datetime:
    """Still valid iff `expires_at >= cutoff` (its last day is today or later at the location)."""
    return _midnight(local_day(now, location_zone), shop_zone)


def start_cutoff(now: datetime, shop_zone: ZoneInfo, location_zone: ZoneInfo) -> datetime:
    """Already valid iff `valid_from < cutoff` (its first day is today or earlier)."""
    return _midnight(local_day(now, location_zone) + timedelta(days=1), shop_zone)


def window_state(
    valid_from: datetime | None,
    expires_at: datetime | None,
    now: datetime,
    shop_zone: ZoneInfo,
    location_zone: ZoneInfo,
) -> WindowState:
    if valid_from is not None and valid_from >= start_cutoff(now, shop_zone, location_zone):
        return WindowState.NOT_YET_VALID
    if expires_at is not None and expires_at < expiry_cutoff(now, shop_zone, location_zone):
        return WindowState.EXPIRED
    return WindowState.OPEN


def last_valid_day(expires_at: datetime | None, shop_zone: ZoneInfo) -> date | None:
    return None if expires_at is None else local_day(expires_at, shop_zone)


def first_valid_day(valid_from: datetime | None, shop_zone: ZoneInfo) -> date | None:
    return None if valid_from is None else local_day(valid_from, shop_zone)
