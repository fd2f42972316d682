"""The rate limiter's pure parts: slot planning, the windows the shop's settings impose, warm-up."""

from __future__ import annotations

import bisect
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from dealmail.delivery.rate import (
    GUARD_SECONDS,
    Window,
    plan_slots,
    warmup_daily_limit,
    windows_for,
)
from dealmail.shop import ShopSettings


def reserve_from(log: list[float], now: float, count: int, windows: list[Window]) -> float:
    """What `rate.reserve` does against the database, against a sorted list instead."""
    count = max(1, min([count, *(w.limit for w in windows)]))
    tails = []
    for window in windows:
        recent = log[bisect.bisect_right(log, now - window.seconds - GUARD_SECONDS) :][::-1]
        skip = window.limit - count
        tails.append(recent[skip : skip + count])
    slots, next_free = plan_slots(now, count, windows, tails, log[-1] if log else None)
    log.extend(slots)
    return next_free


def assert_no_window_over_limit(log: list[float], windows: list[Window]) -> None:
    for window in windows:
        for i in range(len(log) - window.limit):
            span = log[i + window.limit] - log[i]
            assert span >= window.seconds + GUARD_SECONDS - 1e-9, (window, i, span)


@settings(max_examples=200, deadline=None)
@given(
    per_second=st.integers(1, 20),
    per_minute=st.integers(1, 200),
    steps=st.lists(st.tuples(st.floats(0, 0.7), st.integers(1, 12)), min_size=1, max_size=120),
)
def test_no_window_ever_holds_more_than_its_limit(
    per_second: int, per_minute: int, steps: list[tuple[float, int]]
) -> None:
    windows = [Window(1.0, per_second), Window(60.0, per_minute)]
    log: list[float] = []
    now = 1_000_000.0
    for advance, count in steps:
        now += advance
        reserve_from(log, now, count, windows)
    assert log == sorted(log)
    assert_no_window_over_limit(log, windows)


def test_a_free_limiter_grants_everything_at_once() -> None:
    slots, _ = plan_slots(100.0, 5, [Window(1.0, 50)], [[]], None)
    assert slots == [100.0] * 5


def test_a_full_window_makes_the_caller_wait_and_says_how_long() -> None:
    windows = [Window(1.0, 3)]
    log: list[float] = []
    reserve_from(log, 10.0, 3, windows)
    assert log == [10.0, 10.0, 10.0]
    next_free = reserve_from(log, 10.0, 3, windows)
    assert len(log) == 3  # the next slot is more than a second (max_ahead) away
    assert abs(next_free - (11.0 + GUARD_SECONDS)) < 1e-9
    reserve_from(log, 10.2, 3, windows)  # now within reach: reserved for later
    assert log[3:] == [11.0 + GUARD_SECONDS] * 3


def test_slots_are_handed_out_in_time_order_after_existing_reservations() -> None:
    slots, _ = plan_slots(10.0, 2, [Window(1.0, 100)], [[]], latest=10.4)
    assert slots == [10.4, 10.4]


def test_throughput_at_the_limit_is_the_limit_minus_the_guard() -> None:
    windows = [Window(1.0, 50)]
    log: list[float] = []
    now = 0.0
    while now < 10.0:
        reserve_from(log, now, 10, windows)
        now += 0.01
    assert_no_window_over_limit(log, windows)
    granted_in_ten_seconds = sum(1 for t in log if t < 10.0)
    assert 450 <= granted_in_ten_seconds <= 500


def test_windows_from_shop_settings() -> None:
    shop = ShopSettings(rate_per_second=50, rate_per_hour=10_000, rate_per_day=100_000)
    assert windows_for(shop, date(2026, 1, 1)) == [
        Window(1.0, 50),
        Window(3600.0, 10_000),
        Window(86_400.0, 100_000),
    ]
    assert windows_for(ShopSettings(), date(2026, 1, 1)) == []
    slow = windows_for(ShopSettings(rate_per_second=0.5), date(2026, 1, 1))
    assert slow == [Window(2.0, 1)]


def test_backend_quota_caps_the_per_second_rate() -> None:
    shop = ShopSettings(rate_per_second=50)
    assert windows_for(shop, date(2026, 1, 1), backend_per_second=14) == [Window(1.0, 14)]
    assert windows_for(ShopSettings(), date(2026, 1, 1), backend_per_second=1) == [Window(1.0, 1)]


def test_warmup_grows_forty_percent_a_day_and_caps_the_daily_window() -> None:
    assert warmup_daily_limit(500, date(2026, 1, 1), date(2026, 1, 1)) == 500
    assert warmup_daily_limit(500, date(2026, 1, 1), date(2026, 1, 2)) == 700
    assert warmup_daily_limit(500, date(2026, 1, 1), date(2026, 1, 11)) == int(500 * 1.4**10)
    shop = ShopSettings(
        rate_per_day=5_000, warmup_start_per_day=500, warmup_started_on="2026-01-01"
    )
    assert windows_for(shop, date(2026, 1, 3)) == [Window(86_400.0, 980)]
    assert windows_for(shop, date(2026, 3, 1)) == [Window(86_400.0, 5_000)]
