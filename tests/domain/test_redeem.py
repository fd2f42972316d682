"""Validate, redeem, void and sync on real databases: every outcome, idempotency, throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail import shop
from dealmail.config import Settings
from dealmail.coupons import guard, redeem, voids
from dealmail.coupons.tokens import format_short_code
from dealmail.errors import DomainError
from dealmail.locations.service import DeviceInfo
from dealmail.models import Coupon, IdempotencyRecord, LookupFailure, Redemption, utcnow
from support_redeem import (
    limit_deal_to,
    make_coupon,
    make_customer,
    make_deal,
    make_device,
    make_location,
)


@pytest.fixture
def secret(settings: Settings) -> bytes:
    return settings.secret_key_bytes()


@pytest.fixture
def till(session: Session) -> DeviceInfo:
    make_location(session)
    return make_device(session).device


def _uses(session: Session, coupon_id: int) -> int:
    session.expire_all()
    coupon = session.get(Coupon, coupon_id)
    assert coupon is not None
    return coupon.uses


def test_validate_does_not_redeem(session: Session, secret: bytes, till: DeviceInfo) -> None:
    coupon = make_coupon(session, secret, make_deal(session), make_customer(session))
    answer = redeem.validate(session, secret, till, coupon.token)
    assert answer.status_code == 200
    assert answer.body["status"] == "valid"
    assert answer.body["redeemable"] is True
    assert answer.body["coupon"]["customer_first_name"] == "Ada"
    assert answer.body["coupon"]["deal"]["title"] == "10% off everything"
    assert answer.body["coupon"]["uses_left"] == 1
    assert _uses(session, coupon.id) == 0


def test_redeem_then_already_redeemed_says_when_where_who(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    coupon = make_coupon(session, secret, make_deal(session), make_customer(session))
    first = redeem.redeem(session, secret, till, coupon.token)
    assert first.status_code == 201
    assert first.body["status"] == "redeemed"
    assert first.body["redemption"]["location"]["name"] == "Main St"
    assert first.body["coupon"]["uses_left"] == 0
    second = redeem.redeem(session, secret, till, format_short_code(coupon.short_code))
    assert second.status_code == 409
    assert second.body["code"] == "already_redeemed"
    last = second.body["last_redemption"]
    assert last["id"] == first.body["redemption"]["id"]
    assert last["device"]["name"] == "Till 1"
    assert last["location"]["name"] == "Main St"
    assert last["redeemed_at"] == first.body["redemption"]["redeemed_at"]
    assert _uses(session, coupon.id) == 1
    assert session.scalar(select(func.count()).select_from(Redemption)) == 1


def test_short_code_typed_loosely_and_url_are_accepted(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    coupon = make_coupon(session, secret, make_deal(session), max_uses=3)
    typed = " " + coupon.short_code.lower().replace("0", "o").replace("1", "l") + " "
    assert redeem.redeem(session, secret, till, typed).status_code == 201
    url = f"https://shop.example/c/{coupon.token}?utm=x"
    assert redeem.redeem(session, secret, till, url).status_code == 201
    assert _uses(session, coupon.id) == 2


def test_refusals_have_codes_and_statuses(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    deal = make_deal(session)
    now = utcnow()
    cases = {
        "expired": make_coupon(session, secret, deal, expires_at=now - timedelta(days=2)),
        "not_yet_valid": make_coupon(session, secret, deal, valid_from=now + timedelta(days=2)),
        "revoked": make_coupon(session, secret, deal, revoked_at=now),
        "test_coupon": make_coupon(session, secret, deal, is_test=True),
    }
    expected_status = {"expired": 410, "not_yet_valid": 403, "revoked": 403, "test_coupon": 403}
    for code, coupon in cases.items():
        checked = redeem.validate(session, secret, till, coupon.token)
        assert checked.body["status"] == code
        assert checked.body["redeemable"] is False
        answer = redeem.redeem(session, secret, till, coupon.token)
        assert (answer.status_code, answer.body["code"]) == (expected_status[code], code)
        assert _uses(session, coupon.id) == 0
    unknown = redeem.redeem(session, secret, till, "ZZZZ-ZZZZ-ZZ")
    assert (unknown.status_code, unknown.body["code"]) == (404, "unknown")


def test_deal_limited_to_other_locations_is_not_valid_here(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    make_location(session, "Harbour")
    deal = make_deal(session)
    limit_deal_to(session, deal, "Harbour")
    coupon = make_coupon(session, secret, deal)
    answer = redeem.redeem(session, secret, till, coupon.token)
    assert (answer.status_code, answer.body["code"]) == (403, "not_valid_here")
    harbour = make_device(session, "Harbour till", "Harbour").device
    assert redeem.redeem(session, secret, harbour, coupon.token).status_code == 201


def test_expiry_is_the_end_of_that_day_in_the_locations_zone(
    session: Session, secret: bytes
) -> None:
    shop.set_settings(session, {"timezone": "Europe/London"})
    make_location(session, "London", timezone="Europe/London")
    make_location(session, "New York", timezone="America/New_York")
    london = make_device(session, "L", "London").device
    new_york = make_device(session, "NY", "New York").device
    deal = make_deal(session)
    # valid until 31 March (set in London), stored as 23:59 that day
    expires = datetime(2026, 3, 31, 22, 59, tzinfo=UTC)  # 23:59 BST
    coupon = make_coupon(session, secret, deal, expires_at=expires, max_uses=5)
    late_in_london = datetime(2026, 3, 31, 22, 59, 30, tzinfo=UTC)  # 23:59:30 in London
    assert (
        redeem.redeem(session, secret, london, coupon.token, now=late_in_london).status_code == 201
    )
    after_midnight_london = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)  # 00:30 1 April London
    refused = redeem.redeem(session, secret, london, coupon.token, now=after_midnight_london)
    assert refused.body["code"] == "expired"
    # still 31 March (19:30) in New York: valid there until its own midnight
    ok = redeem.redeem(session, secret, new_york, coupon.token, now=after_midnight_london)
    assert ok.status_code == 201
    assert ok.body["coupon"]["last_day"] == "2026-03-31"
    ny_next_day = datetime(2026, 4, 1, 4, 1, tzinfo=UTC)  # 00:01 1 April in New York
    assert (
        redeem.redeem(session, secret, new_york, coupon.token, now=ny_next_day).body["code"]
        == "expired"
    )


def test_valid_from_counts_from_the_start_of_its_day(session: Session, secret: bytes) -> None:
    make_location(session, "Main St", timezone="UTC")
    till = make_device(session).device
    starts = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
    coupon = make_coupon(session, secret, make_deal(session), valid_from=starts)
    before = datetime(2026, 5, 31, 23, 59, tzinfo=UTC)
    assert redeem.redeem(session, secret, till, coupon.token, now=before).body["code"] == (
        "not_yet_valid"
    )
    morning = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    assert redeem.redeem(session, secret, till, coupon.token, now=morning).status_code == 201


def test_same_key_returns_the_first_answer_even_after_a_lost_response(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    coupon = make_coupon(session, secret, make_deal(session))
    first = redeem.redeem(session, secret, till, coupon.token, idempotency_key="k-1")
    # the server committed; the client never saw `first` and retries with the same key
    retried = redeem.redeem(session, secret, till, coupon.token, idempotency_key="k-1")
    assert retried.replayed is True
    assert (retried.status_code, retried.body) == (first.status_code, first.body)
    assert retried.status_code == 201
    assert _uses(session, coupon.id) == 1
    record = session.scalar(select(IdempotencyRecord))
    assert record is not None
    assert record.status_code == 201
    # a new key for the same coupon is a new request: already redeemed
    assert (
        redeem.redeem(session, secret, till, coupon.token, idempotency_key="k-2").body["code"]
        == "already_redeemed"
    )


def test_same_key_with_a_different_body_is_refused(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    deal = make_deal(session)
    one, other = make_coupon(session, secret, deal), make_coupon(session, secret, deal)
    redeem.redeem(session, secret, till, one.token, idempotency_key="k")
    with pytest.raises(DomainError) as caught:
        redeem.redeem(session, secret, till, other.token, idempotency_key="k")
    assert (caught.value.code, caught.value.http_status) == ("idempotency_key_reused", 422)
    with pytest.raises(DomainError):
        redeem.redeem(session, secret, till, one.token, idempotency_key="k", order_reference="A1")
    assert _uses(session, other.id) == 0


def test_keys_are_per_device(session: Session, secret: bytes, till: DeviceInfo) -> None:
    other_till = make_device(session, "Till 2").device
    coupon = make_coupon(session, secret, make_deal(session), max_uses=2)
    assert (
        redeem.redeem(session, secret, till, coupon.token, idempotency_key="k").status_code == 201
    )
    answer = redeem.redeem(session, secret, other_till, coupon.token, idempotency_key="k")
    assert answer.status_code == 201
    assert answer.replayed is False
    assert _uses(session, coupon.id) == 2


def test_refusals_are_replayed_too(session: Session, secret: bytes, till: DeviceInfo) -> None:
    first = redeem.redeem(session, secret, till, "ZZZZ-ZZZZ-ZZ", idempotency_key="u")
    again = redeem.redeem(session, secret, till, "ZZZZ-ZZZZ-ZZ", idempotency_key="u")
    assert first.status_code == again.status_code == 404
    assert again.replayed is True


def test_amount_off_records_the_discount(session: Session, secret: bytes, till: DeviceInfo) -> None:
    deal = make_deal(session, kind="amount_off", value=Decimal("5.00"), currency="EUR")
    coupon = make_coupon(session, secret, deal)
    answer = redeem.redeem(session, secret, till, coupon.token, order_reference=" R-17 ")
    assert answer.body["redemption"]["discount_value"] == "5.00"
    assert answer.body["redemption"]["order_reference"] == "R-17"


def test_void_appends_and_frees_a_use(session: Session, secret: bytes, till: DeviceInfo) -> None:
    coupon = make_coupon(session, secret, make_deal(session))
    now = utcnow()
    done = redeem.redeem(session, secret, till, coupon.token, now=now)
    rid = done.body["redemption"]["id"]
    voided = voids.void(session, till, rid, "wrong customer", 30, now=now + timedelta(minutes=5))
    assert voided.status_code == 201
    assert voided.body["void"]["voids_id"] == rid
    assert voided.body["redemption"]["voided_by_id"] == voided.body["void"]["id"]
    assert _uses(session, coupon.id) == 0
    assert session.scalar(select(func.count()).select_from(Redemption)) == 2
    with pytest.raises(DomainError) as caught:
        voids.void(session, till, rid, "again", 30)
    assert caught.value.code == "already_voided"
    # the freed use can be redeemed again
    assert redeem.redeem(session, secret, till, coupon.token).status_code == 201


def test_void_rules(session: Session, secret: bytes, till: DeviceInfo) -> None:
    make_location(session, "Harbour")
    elsewhere = make_device(session, "H", "Harbour").device
    coupon = make_coupon(session, secret, make_deal(session), max_uses=2)
    now = utcnow()
    rid = redeem.redeem(session, secret, till, coupon.token, now=now).body["redemption"]["id"]
    checks = [
        (lambda: voids.void(session, till, rid, "  ", 30), "invalid_input"),
        (lambda: voids.void(session, till, 999_999, "x", 30), "redemption_not_found"),
        (lambda: voids.void(session, elsewhere, rid, "x", 30), "other_location"),
        (
            lambda: voids.void(session, till, rid, "x", 30, now=now + timedelta(minutes=31)),
            "void_window_closed",
        ),
    ]
    for action, code in checks:
        with pytest.raises(DomainError) as caught:
            action()
        assert caught.value.code == code
    assert _uses(session, coupon.id) == 1


def test_list_since_pages_through_this_locations_rows(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    make_location(session, "Harbour")
    elsewhere = make_device(session, "H", "Harbour").device
    deal = make_deal(session)
    start = utcnow()
    ids = []
    for minute in range(5):
        coupon = make_coupon(session, secret, deal)
        at = start + timedelta(minutes=minute)
        ids.append(
            redeem.redeem(session, secret, till, coupon.token, now=at).body["redemption"]["id"]
        )
    redeem.redeem(session, secret, elsewhere, make_coupon(session, secret, deal).token)
    page = voids.list_since(session, till, since=start + timedelta(minutes=1), limit=2)
    assert [item["id"] for item in page["items"]] == ids[1:3]
    rest = voids.list_since(session, till, after_id=page["next_after"], limit=10)
    assert [item["id"] for item in rest["items"]] == ids[3:]
    assert rest["next_after"] is None


def test_unknown_codes_are_logged_hashed_and_throttled(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    coupon = make_coupon(session, secret, make_deal(session), max_uses=2)
    now = utcnow()
    for number in range(guard.MAX_FAILURES_PER_MINUTE):
        answer = redeem.validate(session, secret, till, f"guess{number}", ip="10.0.0.9", now=now)
        assert answer.status_code == 404
    stored = list(session.scalars(select(LookupFailure)))
    assert len(stored) == guard.MAX_FAILURES_PER_MINUTE
    assert all(len(row.code_hash) == 64 for row in stored)
    assert not any("guess" in row.code_hash for row in stored)
    with pytest.raises(guard.Throttled) as caught:
        redeem.redeem(session, secret, till, coupon.token, ip="10.0.0.9", now=now)
    assert caught.value.http_status == 429
    assert caught.value.retry_after == 60
    # the same address on another device is limited too
    other = make_device(session, "Till 2").device
    with pytest.raises(guard.Throttled):
        redeem.validate(session, secret, other, coupon.token, ip="10.0.0.9", now=now)
    # a minute later the device may try again
    later = now + timedelta(seconds=61)
    assert redeem.redeem(session, secret, till, coupon.token, now=later).status_code == 201


def test_short_codes_lock_after_repeated_misses_but_tokens_work(
    session: Session, secret: bytes, till: DeviceInfo
) -> None:
    coupon = make_coupon(session, secret, make_deal(session), max_uses=2)
    now = utcnow()
    for minute in range(guard.SHORT_CODE_MISS_LIMIT):
        at = now + timedelta(minutes=minute)
        assert redeem.validate(
            session, secret, till, f"AAAA-AAAA-{minute:02d}", now=at
        ).status_code == (404)
    at = now + timedelta(minutes=guard.SHORT_CODE_MISS_LIMIT)
    with pytest.raises(guard.Throttled) as locked:
        redeem.redeem(session, secret, till, coupon.short_code, now=at)
    assert locked.value.code == "short_code_locked"
    assert redeem.redeem(session, secret, till, coupon.token, now=at).status_code == 201
    unlocked = now + guard.SHORT_CODE_LOCK + timedelta(minutes=guard.SHORT_CODE_MISS_LIMIT)
    assert redeem.redeem(session, secret, till, coupon.short_code, now=unlocked).status_code == 201
