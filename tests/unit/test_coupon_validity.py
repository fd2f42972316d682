"""The validity window in whole days at the location: cutoffs, zones, daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dealmail.coupons.validity import (
    WindowState,
    expiry_cutoff,
    last_valid_day,
    start_cutoff,
    window_state,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_last_day_is_the_date_in_the_shops_zone() -> None:
    # 23:30 UTC on 31 March is already 1 April in London (BST)
    assert last_valid_day(_at(2026, 3, 31, 23, 30), LONDON) == date(2026, 4, 1)
    assert last_valid_day(_at(2026, 3, 31, 22, 59), LONDON) == date(2026, 3, 31)
    assert last_valid_day(None, LONDON) is None


@pytest.mark.parametrize(
    ("now", "zone", "state"),
    [
        (_at(2026, 3, 31, 22, 59), LONDON, WindowState.OPEN),  # 23:59 BST on the last day
        (_at(2026, 3, 31, 23, 0), LONDON, WindowState.EXPIRED),  # 00:00 BST next day
        (_at(2026, 4, 1, 3, 59), NEW_YORK, WindowState.OPEN),  # 23:59 EDT, still 31 March
        (_at(2026, 4, 1, 4, 0), NEW_YORK, WindowState.EXPIRED),
        (_at(2026, 3, 31, 14, 59), TOKYO, WindowState.OPEN),  # 23:59 JST on 31 March
        (_at(2026, 3, 31, 15, 0), TOKYO, WindowState.EXPIRED),
    ],
)
def test_expiry_runs_to_midnight_at_the_location(
    now: datetime, zone: ZoneInfo, state: WindowState
) -> None:
    expires = _at(2026, 3, 31, 12, 0)  # set in London: last day 31 March
    assert window_state(None, expires, now, LONDON, zone) is state


def test_start_counts_from_midnight_of_the_first_day() -> None:
    starts = _at(2026, 6, 1, 15, 0)
    assert window_state(starts, None, _at(2026, 5, 31, 22, 59), LONDON, LONDON) is (
        WindowState.NOT_YET_VALID
    )
    assert window_state(starts, None, _at(2026, 5, 31, 23, 0), LONDON, LONDON) is WindowState.OPEN


def test_cutoffs_agree_with_window_state_across_a_dst_change() -> None:
    """The SQL form (one comparison with a cutoff) and the Python form never disagree."""
    # Europe/London moves to BST on 29 March 2026 at 01:00 UTC; New York on 8 March.
    moments = [_at(2026, 3, 28) + timedelta(minutes=30 * step) for step in range(144)]
    bounds = [_at(2026, 3, 28, 12), _at(2026, 3, 29, 0, 30), _at(2026, 3, 29, 23, 30)]
    for location in (LONDON, NEW_YORK, TOKYO):
        for now in moments:
            for bound in bounds:
                open_by_sql = bound >= expiry_cutoff(now, LONDON, location)
                state = window_state(None, bound, now, LONDON, location)
                assert open_by_sql == (state is WindowState.OPEN)
                started_by_sql = bound < start_cutoff(now, LONDON, location)
                state = window_state(bound, None, now, LONDON, location)
                assert started_by_sql == (state is WindowState.OPEN)
