"""Which verdict wins when several apply, and how each maps to an API status."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from dealmail.coupons.validity import WindowState
from dealmail.coupons.verdicts import HTTP_STATUS, CouponFacts, Outcome, classify

BASE = CouponFacts(
    id=1,
    deal_id=1,
    campaign_id=None,
    uses=0,
    max_uses=1,
    valid_from=None,
    expires_at=None,
    revoked_at=None,
    is_test=False,
    deal_title="10% off",
    deal_kind="percent_off",
    deal_value=None,
    deal_currency=None,
    deal_terms=None,
    first_name="Ada",
    valid_here=True,
    shop_timezone={"v": "Europe/London"},
    recent_failures=0,
    short_code_misses=0,
    has_record=False,
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_fresh_coupon_is_valid() -> None:
    assert classify(BASE, WindowState.OPEN) is Outcome.VALID


@pytest.mark.parametrize(
    ("changes", "window", "expected"),
    [
        ({"is_test": True, "revoked_at": NOW, "uses": 1}, WindowState.EXPIRED, Outcome.TEST_COUPON),
        ({"revoked_at": NOW, "uses": 1}, WindowState.EXPIRED, Outcome.REVOKED),
        ({"uses": 1, "valid_here": False}, WindowState.EXPIRED, Outcome.ALREADY_REDEEMED),
        ({"valid_here": False}, WindowState.EXPIRED, Outcome.NOT_VALID_HERE),
        ({}, WindowState.NOT_YET_VALID, Outcome.NOT_YET_VALID),
        ({}, WindowState.EXPIRED, Outcome.EXPIRED),
        ({"uses": 2, "max_uses": 3}, WindowState.OPEN, Outcome.VALID),
    ],
)
def test_first_reason_wins(
    changes: dict[str, object], window: WindowState, expected: Outcome
) -> None:
    assert classify(replace(BASE, **changes), window) is expected  # type: ignore[arg-type]


def test_api_statuses_are_the_documented_ones() -> None:
    assert HTTP_STATUS[Outcome.REDEEMED] == 201
    assert HTTP_STATUS[Outcome.ALREADY_REDEEMED] == 409
    assert HTTP_STATUS[Outcome.EXPIRED] == 410
    assert HTTP_STATUS[Outcome.UNKNOWN] == 404
    forbidden = [
        Outcome.NOT_VALID_HERE,
        Outcome.REVOKED,
        Outcome.NOT_YET_VALID,
        Outcome.TEST_COUPON,
    ]
    assert {HTTP_STATUS[outcome] for outcome in forbidden} == {403}


def test_shop_zone_falls_back_to_utc() -> None:
    assert str(BASE.shop_zone) == "Europe/London"
    assert str(replace(BASE, shop_timezone=None).shop_zone) == "UTC"
    assert str(replace(BASE, shop_timezone={"v": "Nowhere/Else"}).shop_zone) == "UTC"
