"""Voids (an appended reversal row, within the void window) and the redemption log for sync."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dealmail.coupons.verdicts import Answer, redemption_rows, redemption_view
from dealmail.errors import Conflict, Forbidden, InvalidInput, NotFound
from dealmail.locations.service import DeviceInfo
from dealmail.models import Coupon, Redemption, utcnow

MAX_REASON = 500
MAX_PAGE = 500


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
    if not reason or len(reason) > MAX_REASON or not reason.isprintable():
        raise InvalidInput(
            f"a reason of 1-{MAX_REASON} printable characters is needed", code="invalid_input"
        )
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
    rows = redemption_rows(
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
    rows = redemption_rows(session, and_(*conditions), order=(Redemption.id,), limit=limit + 1)
    session.rollback()
    items = [redemption_view(*row) for row in rows[:limit]]
    next_after = items[-1]["id"] if len(rows) > limit else None
    return {"items": items, "next_after": next_after}
