"""Validate and redeem: one lookup, then one conditional UPDATE plus the redemption row and the
idempotency record, in one transaction.

Every answer is a JSON-ready `Answer(status_code, body)` (see verdicts.py), so the API returns it
as is and the idempotency record stores it inside the same transaction as the redemption.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import JSON, Text, TypeDecorator, bindparam, exists, insert, or_, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from dealmail.coupons import guard
from dealmail.coupons.lookup import CodeRef, parse_code
from dealmail.coupons.prepared import Prepared, Runner
from dealmail.coupons.validity import expiry_cutoff, start_cutoff, window_state
from dealmail.coupons.verdicts import (
    HTTP_STATUS,
    MESSAGES,
    Answer,
    CouponFacts,
    Outcome,
    classify,
    coupon_view,
    last_redemption,
    refusal,
)
from dealmail.errors import DomainError, InvalidInput
from dealmail.locations.service import DeviceInfo
from dealmail.models import (
    Coupon,
    Customer,
    Deal,
    DealKind,
    IdempotencyRecord,
    Redemption,
    Setting,
    deal_locations,
    utcnow,
)
from dealmail.models.base import JSONType
from dealmail.security import sha256_hex

MAX_IDEMPOTENCY_KEY = 255
MAX_ORDER_REFERENCE = 100


def _facts_query(column: Any) -> Any:
    """Everything a verdict needs in one round trip: the coupon and deal, whether the deal is
    valid at the device's location (no location rows means everywhere), the shop's time zone,
    the device's recent failed lookups and whether its Idempotency-Key was seen before."""
    limited = exists().where(deal_locations.c.deal_id == Coupon.deal_id)
    listed = exists().where(
        deal_locations.c.deal_id == Coupon.deal_id,
        deal_locations.c.location_id == bindparam("location_id"),
    )
    shop_timezone = select(Setting.value).where(Setting.key == "timezone").scalar_subquery()
    return (
        select(
            Coupon.id,
            Coupon.deal_id,
            Coupon.campaign_id,
            Coupon.uses,
            Coupon.max_uses,
            Coupon.valid_from,
            Coupon.expires_at,
            Coupon.revoked_at,
            Coupon.is_test,
            Deal.title,
            Deal.kind,
            Deal.value,
            Deal.currency,
            Deal.terms,
            Customer.first_name,
            or_(~limited, listed).label("valid_here"),
            shop_timezone.label("shop_timezone"),
            guard.RECENT_FAILURES,
            guard.SHORT_CODE_MISSES,
            exists()
            .where(
                IdempotencyRecord.device_id == bindparam("device_id"),
                IdempotencyRecord.key == bindparam("key"),
            )
            .label("has_record"),
        )
        .join(Deal, Deal.id == Coupon.deal_id)
        .outerjoin(Customer, Customer.id == Coupon.customer_id)
        .where(column == bindparam("lookup"))
    )


# Built once: the hot path runs them per request, and building costs more than running.
_FACTS_BY = {
    "token": Prepared(_facts_query(Coupon.token_hash)),
    "short_code": Prepared(_facts_query(Coupon.short_code_hash)),
    "id": Prepared(_facts_query(Coupon.id)),
}
_SPEND = Prepared(
    update(Coupon)
    .where(
        Coupon.id == bindparam("coupon_id"),
        Coupon.uses < Coupon.max_uses,
        Coupon.revoked_at.is_(None),
        Coupon.is_test.is_(False),
        or_(Coupon.valid_from.is_(None), Coupon.valid_from < bindparam("start_cutoff")),
        or_(Coupon.expires_at.is_(None), Coupon.expires_at >= bindparam("expiry_cutoff")),
        or_(
            ~exists().where(deal_locations.c.deal_id == Coupon.deal_id),
            exists().where(
                deal_locations.c.deal_id == Coupon.deal_id,
                deal_locations.c.location_id == bindparam("location_id"),
            ),
        ),
    )
    .values(uses=Coupon.uses + 1)
)
_REDEMPTION_COLUMNS = (
    "coupon_id",
    "campaign_id",
    "location_id",
    "device_id",
    "redeemed_at",
    "discount_value",
    "order_reference",
)
_INSERT_REDEMPTION = Prepared(insert(Redemption).returning(Redemption.id), _REDEMPTION_COLUMNS)
_FIND_RECORD = Prepared(
    select(
        IdempotencyRecord.request_hash, IdempotencyRecord.status_code, IdempotencyRecord.response
    ).where(
        IdempotencyRecord.device_id == bindparam("device_id"),
        IdempotencyRecord.key == bindparam("key"),
    )
)


class _StoredAnswer(TypeDecorator[dict[str, Any]]):
    """The answer an idempotency record keeps: on SQLite serialised by orjson into the JSON
    column's text (its JSON type reads it back as usual), elsewhere the JSON type's own binding."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return JSONType.dialect_impl(dialect)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if dialect.name == "sqlite" and value is not None:
            return orjson.dumps(value).decode()
        return value


_RECORD_COLUMNS = ("device_id", "key", "request_hash", "status_code", "created_at")
_INSERT_RECORD = Prepared(
    insert(IdempotencyRecord).values(response=bindparam("response", type_=_StoredAnswer())),
    _RECORD_COLUMNS,
)


def _facts(
    runner: Runner,
    by: str,
    lookup: str | int,
    device: DeviceInfo,
    ip: str | None,
    now: datetime,
    key: str | None = None,
) -> CouponFacts | None:
    parameters = {"lookup": lookup, "location_id": device.location_id, "key": key}
    parameters |= guard.parameters(device.id, ip, now)
    row = runner.first(_FACTS_BY[by], parameters)
    return None if row is None else CouponFacts(*row)


def _find_facts(
    runner: Runner,
    ref: CodeRef,
    device: DeviceInfo,
    ip: str | None,
    now: datetime,
    key: str | None = None,
) -> CouponFacts | None:
    if ref.kind == "malformed":
        return None
    return _facts(runner, ref.kind, ref.hash, device, ip, now, key)


def _unknown(
    runner: Runner, ref: CodeRef, device: DeviceInfo, ip: str | None, now: datetime
) -> Answer:
    """No such coupon: throttle if over the limit, else log the miss (by hash) and say so."""
    guard.check(runner, device.id, ip, ref, now)
    guard.record_failure(runner, device.id, ip, ref, now)
    return refusal(Outcome.UNKNOWN, None, None)


def _facts_answer(
    runner: Runner, facts: CouponFacts, device: DeviceInfo, now: datetime
) -> tuple[Outcome, dict[str, Any], dict[str, Any] | None]:
    zone = facts.shop_zone
    outcome = classify(
        facts, window_state(facts.valid_from, facts.expires_at, now, zone, device.zone)
    )
    last = last_redemption(runner, facts.id) if facts.uses > 0 else None
    return outcome, coupon_view(facts, zone), last


def validate(
    session: Session | Runner,
    secret: bytes,
    device: DeviceInfo,
    code: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """What redeeming would answer now, without redeeming (200 for any known coupon)."""
    now = now or utcnow()
    ref = parse_code(secret, code)
    runner = Runner.of(session)
    facts = _find_facts(runner, ref, device, ip, now)
    if facts is None:
        answer = _unknown(runner, ref, device, ip, now)
        runner.commit()
        return answer
    guard.judge(facts.recent_failures, facts.short_code_misses, ref)
    outcome, coupon, last = _facts_answer(runner, facts, device, now)
    runner.commit()  # reads only, plus whatever the caller's authentication recorded
    return Answer(
        200,
        {
            "status": outcome.value,
            "redeemable": outcome is Outcome.VALID,
            "message": MESSAGES[outcome],
            "coupon": coupon,
            "last_redemption": last,
        },
    )


def _clean_reference(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > MAX_ORDER_REFERENCE or not value.isprintable():
        raise InvalidInput(
            f"order_reference is at most {MAX_ORDER_REFERENCE} printable characters",
            code="invalid_input",
        )
    return value or None


def _discount(facts: CouponFacts, given: Decimal | None) -> Decimal | None:
    if given is not None:
        return given
    if facts.deal_kind == DealKind.AMOUNT_OFF:
        return facts.deal_value
    return None


def request_fingerprint(ref: CodeRef, order_reference: str | None, discount: Decimal | None) -> str:
    payload = {"code": ref.hash, "order_reference": order_reference, "discount": str(discount)}
    return sha256_hex(json.dumps(payload, sort_keys=True))


def _replay(runner: Runner, device_id: int, key: str, fingerprint: str) -> Answer | None:
    record = runner.first(_FIND_RECORD, {"device_id": device_id, "key": key})
    if record is None:
        return None
    request_hash, status_code, response = record
    if request_hash != fingerprint:
        raise DomainError(
            "this Idempotency-Key was already used for a different request; use a new key",
            code="idempotency_key_reused",
            http_status=422,
        )
    return Answer(status_code, dict(response), replayed=True)


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
            code="invalid_idempotency_key",
        )
    return key


def _spend(
    runner: Runner,
    facts: CouponFacts,
    device: DeviceInfo,
    ip: str | None,
    order_reference: str | None,
    discount_value: Decimal | None,
    now: datetime,
) -> Answer:
    """Inside the caller's transaction: the conditional UPDATE, then the row or the reason."""
    zone = facts.shop_zone
    spent = runner.rowcount(
        _SPEND,
        {
            "coupon_id": facts.id,
            "start_cutoff": start_cutoff(now, zone, device.zone),
            "expiry_cutoff": expiry_cutoff(now, zone, device.zone),
            "location_id": device.location_id,
        },
    )
    if spent != 1:
        # The reason is read after the UPDATE refused, so it reflects any concurrent winner.
        fresh = _facts(runner, "id", facts.id, device, ip, now)
        assert fresh is not None
        outcome, coupon, last = _facts_answer(runner, fresh, device, now)
        if outcome is Outcome.VALID:  # only when the rules disagree with the UPDATE: be safe
            outcome = Outcome.ALREADY_REDEEMED
        return refusal(outcome, coupon, last)
    discount = _discount(facts, discount_value)
    redemption_id = runner.scalar(
        _INSERT_REDEMPTION,
        {
            "coupon_id": facts.id,
            "campaign_id": facts.campaign_id,
            "location_id": device.location_id,
            "device_id": device.id,
            "redeemed_at": now,
            "discount_value": discount,
            "order_reference": order_reference,
        },
    )
    redemption = {
        "id": redemption_id,
        "kind": "redemption",
        "coupon_id": facts.id,
        "campaign_id": facts.campaign_id,
        "redeemed_at": now.isoformat(),
        "location": {"id": device.location_id, "name": device.location_name},
        "device": {"id": device.id, "name": device.name},
        "order_reference": order_reference,
        "discount_value": None if discount is None else str(discount),
        "voids_id": None,
        "voided_by_id": None,
        "reason": None,
    }
    body = {
        "status": Outcome.REDEEMED.value,
        "message": MESSAGES[Outcome.REDEEMED],
        "redemption": redemption,
        "coupon": coupon_view(facts, zone, uses=facts.uses + 1),
    }
    return Answer(HTTP_STATUS[Outcome.REDEEMED], body)


def redeem(
    session: Session | Runner,
    secret: bytes,
    device: DeviceInfo,
    code: str,
    idempotency_key: str | None = None,
    ip: str | None = None,
    order_reference: str | None = None,
    discount_value: Decimal | None = None,
    now: datetime | None = None,
) -> Answer:
    """Redeem once, atomically; with a key, the first answer (stored in the same commit) again."""
    now = now or utcnow()
    key = check_idempotency_key(idempotency_key)
    reference = _clean_reference(order_reference)
    if discount_value is not None and (not discount_value.is_finite() or discount_value < 0):
        raise InvalidInput("discount_value must be a non-negative number", code="invalid_input")
    ref = parse_code(secret, code)
    fingerprint = request_fingerprint(ref, reference, discount_value)
    runner = Runner.of(session)
    facts = _find_facts(runner, ref, device, ip, now, key)
    if key is not None and (facts is None or facts.has_record):
        replay = _replay(runner, device.id, key, fingerprint)
        if replay is not None:
            runner.commit()  # reads only, plus whatever the caller's authentication recorded
            return replay
    if facts is None:
        answer = _unknown(runner, ref, device, ip, now)
    else:
        guard.judge(facts.recent_failures, facts.short_code_misses, ref)
        answer = _spend(runner, facts, device, ip, reference, discount_value, now)
    try:
        if key is not None:
            runner.rowcount(
                _INSERT_RECORD,
                {
                    "device_id": device.id,
                    "key": key,
                    "request_hash": fingerprint,
                    "status_code": answer.status_code,
                    "response": answer.body,
                    "created_at": now,
                },
            )
        runner.commit()
    except IntegrityError:
        # Another request with the same key committed first (PostgreSQL runs them in parallel):
        # everything above is rolled back and that request's answer is the answer.
        runner.rollback()
        assert key is not None
        replay = _replay(runner, device.id, key, fingerprint)
        runner.rollback()
        if replay is None:
            raise
        return replay
    return answer
