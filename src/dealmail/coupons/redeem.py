"""Validate, redeem (one conditional UPDATE), void (append-only) and list redemptions for sync.

Every answer is a JSON-ready `Answer(status_code, body)`, so the API returns it as is and an
idempotency record can store it inside the same transaction as the redemption it describes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dealmail.coupons import guard
from dealmail.coupons.lookup import CodeRef, parse_code
from dealmail.coupons.validity import (
    WindowState,
    expiry_cutoff,
    first_valid_day,
    last_valid_day,
    start_cutoff,
    window_state,
)
from dealmail.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from dealmail.locations.service import DeviceInfo
from dealmail.models import (
    Coupon,
    Customer,
    Deal,
    DealKind,
    Device,
    IdempotencyRecord,
    Location,
    Redemption,
    Setting,
    deal_locations,
    utcnow,
)
from dealmail.security import sha256_hex

MAX_IDEMPOTENCY_KEY = 255
MAX_REASON = 500
MAX_ORDER_REFERENCE = 100
MAX_PAGE = 500


class Outcome(StrEnum):
    VALID = "valid"
    REDEEMED = "redeemed"
    ALREADY_REDEEMED = "already_redeemed"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"
    NOT_VALID_HERE = "not_valid_here"
    TEST_COUPON = "test_coupon"
    UNKNOWN = "unknown"


HTTP_STATUS = {
    Outcome.VALID: 200,
    Outcome.REDEEMED: 201,
    Outcome.ALREADY_REDEEMED: 409,
    Outcome.EXPIRED: 410,
    Outcome.NOT_YET_VALID: 403,
    Outcome.REVOKED: 403,
    Outcome.NOT_VALID_HERE: 403,
    Outcome.TEST_COUPON: 403,
    Outcome.UNKNOWN: 404,
}

MESSAGES = {
    Outcome.VALID: "valid: this coupon can be redeemed here now",
    Outcome.REDEEMED: "redeemed",
    Outcome.ALREADY_REDEEMED: "this coupon has already been used as often as the deal allows",
    Outcome.EXPIRED: "this coupon has expired",
    Outcome.NOT_YET_VALID: "this coupon is not valid yet",
    Outcome.REVOKED: "this coupon was revoked by the shop",
    Outcome.NOT_VALID_HERE: "this deal is not valid at this location",
    Outcome.TEST_COUPON: "this is a test coupon from a test send; it can never be redeemed",
    Outcome.UNKNOWN: "no coupon has this code",
}


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    @property
    def outcome(self) -> str:
        return str(self.body.get("status") or self.body.get("code"))


@dataclass(frozen=True)
class CouponFacts:
    id: int
    deal_id: int
    campaign_id: int | None
    uses: int
    max_uses: int
    valid_from: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    is_test: bool
    deal_title: str
    deal_kind: str
    deal_value: Decimal | None
    deal_currency: str | None
    deal_terms: str | None
    first_name: str | None
    valid_here: bool
    shop_timezone: Any
    recent_failures: int
    short_code_misses: int
    has_record: bool

    @property
    def shop_zone(self) -> ZoneInfo:
        name = self.shop_timezone.get("v") if isinstance(self.shop_timezone, dict) else None
        try:
            return ZoneInfo(name or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


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
    "token": _facts_query(Coupon.token_hash),
    "short_code": _facts_query(Coupon.short_code_hash),
    "id": _facts_query(Coupon.id),
}
_SPEND = (
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
_INSERT_REDEMPTION = insert(Redemption).returning(Redemption.id)
_FIND_RECORD = select(
    IdempotencyRecord.request_hash, IdempotencyRecord.status_code, IdempotencyRecord.response
).where(
    IdempotencyRecord.device_id == bindparam("device_id"),
    IdempotencyRecord.key == bindparam("key"),
)
_INSERT_RECORD = insert(IdempotencyRecord)


def _facts(
    connection: Connection,
    by: str,
    lookup: str | int,
    device: DeviceInfo,
    ip: str | None,
    now: datetime,
    key: str | None = None,
) -> CouponFacts | None:
    parameters = {"lookup": lookup, "location_id": device.location_id, "key": key}
    parameters |= guard.parameters(device.id, ip, now)
    row = connection.execute(_FACTS_BY[by], parameters).first()
    return None if row is None else CouponFacts(*row)


def _find_facts(
    connection: Connection,
    ref: CodeRef,
    device: DeviceInfo,
    ip: str | None,
    now: datetime,
    key: str | None = None,
) -> CouponFacts | None:
    if ref.kind == "malformed":
        return None
    return _facts(connection, ref.kind, ref.hash, device, ip, now, key)


def _unknown(
    connection: Connection, ref: CodeRef, device: DeviceInfo, ip: str | None, now: datetime
) -> Answer:
    """No such coupon: throttle if over the limit, else log the miss (by hash) and say so."""
    guard.check(connection, device.id, ip, ref, now)
    guard.record_failure(connection, device.id, ip, ref, now)
    return _refusal(Outcome.UNKNOWN, None, None)


def classify(facts: CouponFacts, window: WindowState) -> Outcome:
    """Why a coupon can or cannot be redeemed; the first reason that applies wins."""
    if facts.is_test:
        return Outcome.TEST_COUPON
    if facts.revoked_at is not None:
        return Outcome.REVOKED
    if facts.uses >= facts.max_uses:
        return Outcome.ALREADY_REDEEMED
    if not facts.valid_here:
        return Outcome.NOT_VALID_HERE
    if window is WindowState.NOT_YET_VALID:
        return Outcome.NOT_YET_VALID
    if window is WindowState.EXPIRED:
        return Outcome.EXPIRED
    return Outcome.VALID


def coupon_view(facts: CouponFacts, zone: ZoneInfo, uses: int | None = None) -> dict[str, Any]:
    used = facts.uses if uses is None else uses
    first_day = first_valid_day(facts.valid_from, zone)
    last_day = last_valid_day(facts.expires_at, zone)
    return {
        "id": facts.id,
        "deal": {
            "title": facts.deal_title,
            "kind": facts.deal_kind,
            "value": None if facts.deal_value is None else str(facts.deal_value),
            "currency": facts.deal_currency,
            "terms": facts.deal_terms,
        },
        "customer_first_name": facts.first_name,
        "uses": used,
        "max_uses": facts.max_uses,
        "uses_left": max(facts.max_uses - used, 0),
        "valid_from": _iso(facts.valid_from),
        "expires_at": _iso(facts.expires_at),
        "first_day": None if first_day is None else first_day.isoformat(),
        "last_day": None if last_day is None else last_day.isoformat(),
        "revoked": facts.revoked_at is not None,
        "is_test": facts.is_test,
    }


def _redemption_rows(session: Session, *conditions: Any, order: Any, limit: int) -> list[Any]:
    return list(
        session.execute(
            select(Redemption, Location.name, Device.name)
            .outerjoin(Location, Location.id == Redemption.location_id)
            .outerjoin(Device, Device.id == Redemption.device_id)
            .where(*conditions)
            .order_by(*order)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
    )


def redemption_view(
    row: Redemption, location_name: str | None, device_name: str | None
) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": "void" if row.voids_id is not None else "redemption",
        "coupon_id": row.coupon_id,
        "campaign_id": row.campaign_id,
        "redeemed_at": _iso(row.redeemed_at),
        "location": None
        if row.location_id is None
        else {"id": row.location_id, "name": location_name},
        "device": None if row.device_id is None else {"id": row.device_id, "name": device_name},
        "order_reference": row.order_reference,
        "discount_value": None if row.discount_value is None else str(row.discount_value),
        "voids_id": row.voids_id,
        "voided_by_id": row.voided_by_id,
        "reason": row.reason,
    }


def last_redemption(session: Session, coupon_id: int) -> dict[str, Any] | None:
    rows = _redemption_rows(
        session,
        Redemption.coupon_id == coupon_id,
        Redemption.voids_id.is_(None),
        Redemption.voided_by_id.is_(None),
        order=(Redemption.redeemed_at.desc(), Redemption.id.desc()),
        limit=1,
    )
    return redemption_view(*rows[0]) if rows else None


def _refusal(
    outcome: Outcome, coupon: dict[str, Any] | None, last: dict[str, Any] | None
) -> Answer:
    body: dict[str, Any] = {"code": outcome.value, "message": MESSAGES[outcome]}
    if coupon is not None:
        body["coupon"] = coupon
        body["last_redemption"] = last
    return Answer(HTTP_STATUS[outcome], body)


def _facts_answer(
    session: Session, facts: CouponFacts, device: DeviceInfo, now: datetime
) -> tuple[Outcome, dict[str, Any], dict[str, Any] | None]:
    zone = facts.shop_zone
    outcome = classify(
        facts, window_state(facts.valid_from, facts.expires_at, now, zone, device.zone)
    )
    last = last_redemption(session, facts.id) if facts.uses > 0 else None
    return outcome, coupon_view(facts, zone), last


def validate(
    session: Session,
    secret: bytes,
    device: DeviceInfo,
    code: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """What redeeming would answer now, without redeeming (200 for any known coupon)."""
    now = now or utcnow()
    ref = parse_code(secret, code)
    connection = session.connection()
    facts = _find_facts(connection, ref, device, ip, now)
    if facts is None:
        answer = _unknown(connection, ref, device, ip, now)
        session.commit()
        return answer
    guard.judge(facts.recent_failures, facts.short_code_misses, ref)
    outcome, coupon, last = _facts_answer(session, facts, device, now)
    session.commit()  # reads only, plus whatever the caller's authentication recorded
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
    if len(value) > MAX_ORDER_REFERENCE:
        raise InvalidInput(
            f"order_reference is at most {MAX_ORDER_REFERENCE} characters", code="invalid_input"
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


def _replay(connection: Connection, device_id: int, key: str, fingerprint: str) -> Answer | None:
    record = connection.execute(_FIND_RECORD, {"device_id": device_id, "key": key}).first()
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
    session: Session,
    connection: Connection,
    facts: CouponFacts,
    device: DeviceInfo,
    ip: str | None,
    order_reference: str | None,
    discount_value: Decimal | None,
    now: datetime,
) -> Answer:
    """Inside the caller's transaction: the conditional UPDATE, then the row or the reason."""
    zone = facts.shop_zone
    spent = connection.execute(
        _SPEND,
        {
            "coupon_id": facts.id,
            "start_cutoff": start_cutoff(now, zone, device.zone),
            "expiry_cutoff": expiry_cutoff(now, zone, device.zone),
            "location_id": device.location_id,
        },
    )
    if spent.rowcount != 1:
        # The reason is read after the UPDATE refused, so it reflects any concurrent winner.
        fresh = _facts(connection, "id", facts.id, device, ip, now)
        assert fresh is not None
        outcome, coupon, last = _facts_answer(session, fresh, device, now)
        if outcome is Outcome.VALID:  # only when the rules disagree with the UPDATE: be safe
            outcome = Outcome.ALREADY_REDEEMED
        return _refusal(outcome, coupon, last)
    discount = _discount(facts, discount_value)
    redemption_id = connection.execute(
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
    ).scalar_one()
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
    session: Session,
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
    connection = session.connection()
    facts = _find_facts(connection, ref, device, ip, now, key)
    if key is not None and (facts is None or facts.has_record):
        replay = _replay(connection, device.id, key, fingerprint)
        if replay is not None:
            session.commit()  # reads only, plus whatever the caller's authentication recorded
            return replay
    if facts is None:
        answer = _unknown(connection, ref, device, ip, now)
    else:
        guard.judge(facts.recent_failures, facts.short_code_misses, ref)
        answer = _spend(session, connection, facts, device, ip, reference, discount_value, now)
    try:
        if key is not None:
            connection.execute(
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
        session.commit()
    except IntegrityError:
        # Another request with the same key committed first (PostgreSQL runs them in parallel):
        # everything above is rolled back and that request's answer is the answer.
        session.rollback()
        assert key is not None
        replay = _replay(session.connection(), device.id, key, fingerprint)
        session.rollback()
        if replay is None:
            raise
        return replay
    return answer


def parse_discount(value: str | float | int | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput("discount_value must be a number", code="invalid_input") from exc


def void(
    session: Session,
    device: DeviceInfo,
    redemption_id: int,
    reason: str,
    window_minutes: float,
    now: datetime | None = None,
) -> Answer:
    """Append a void row for a redemption made at this device's location, within the window."""
    now = now or utcnow()
    reason = " ".join((reason or "").split())
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(f"a reason of 1-{MAX_REASON} characters is needed", code="invalid_input")
    original = session.get(Redemption, redemption_id)
    if original is None or original.voids_id is not None:
        raise NotFound(f"no redemption {redemption_id}", code="redemption_not_found")
    if original.location_id != device.location_id:
        raise Forbidden("this redemption was made at another location", code="other_location")
    if original.voided_by_id is not None:
        raise Conflict("this redemption is already voided", code="already_voided")
    if now - original.redeemed_at > timedelta(minutes=window_minutes):
        raise Conflict(
            f"redemptions can be voided within {window_minutes:g} minutes; this one is older",
            code="void_window_closed",
        )
    void_id = session.execute(
        insert(Redemption)
        .values(
            coupon_id=original.coupon_id,
            campaign_id=original.campaign_id,
            location_id=device.location_id,
            device_id=device.id,
            redeemed_at=now,
            voids_id=original.id,
            reason=reason,
        )
        .returning(Redemption.id)
    ).scalar_one()
    marked = session.execute(
        update(Redemption)
        .where(Redemption.id == original.id, Redemption.voided_by_id.is_(None))
        .values(voided_by_id=void_id)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise Conflict("this redemption is already voided", code="already_voided")
    session.execute(
        update(Coupon)
        .where(Coupon.id == original.coupon_id, Coupon.uses > 0)
        .values(uses=Coupon.uses - 1)
        .execution_options(synchronize_session=False)
    )
    try:
        session.commit()
    except IntegrityError as exc:  # the unique voids_id: a concurrent void won
        session.rollback()
        raise Conflict("this redemption is already voided", code="already_voided") from exc
    rows = _redemption_rows(
        session,
        Redemption.id.in_([original.id, void_id]),
        order=(Redemption.id,),
        limit=2,
    )
    views = [redemption_view(*row) for row in rows]
    session.rollback()
    return Answer(201, {"status": "voided", "redemption": views[0], "void": views[1]})


def list_since(
    session: Session,
    device: DeviceInfo,
    since: datetime | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Redemptions and voids at the device's location, oldest first, paged by id."""
    limit = max(1, min(limit, MAX_PAGE))
    conditions: list[Any] = [Redemption.location_id == device.location_id]
    if since is not None:
        conditions.append(Redemption.redeemed_at >= since)
    if after_id is not None:
        conditions.append(Redemption.id > after_id)
    rows = _redemption_rows(session, and_(*conditions), order=(Redemption.id,), limit=limit + 1)
    session.rollback()
    items = [redemption_view(*row) for row in rows[:limit]]
    next_after = items[-1]["id"] if len(rows) > limit else None
    return {"items": items, "next_after": next_after}
