"""Redemptions over time (local hour of day, local day), by location and by device."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.analytics._sql import RedemptionScope, bucket_seconds, bucket_start, epoch_bucket
from dealmail.analytics.campaigns import DiscountGiven, discount_columns, per_campaign_redemptions
from dealmail.models import Campaign, Deal, Device, Location, Redemption

UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class Timeline:
    """Counts per local day (every day from the first to the last) and per local hour 0-23."""

    by_day: list[dict[str, Any]]
    by_hour: list[dict[str, Any]]


def redemption_count(session: Session, scope: RedemptionScope) -> int:
    return (
        session.scalar(select(func.count()).select_from(Redemption).where(*scope.conditions())) or 0
    )


def redemptions_over_time(session: Session, scope: RedemptionScope, zone: ZoneInfo) -> Timeline:
    """Grouped in SQL by UTC hour (or quarter hour); the buckets are then placed in local time."""
    seconds = bucket_seconds(zone)
    bucket = epoch_bucket(session, Redemption.redeemed_at, seconds)
    rows = session.execute(
        select(bucket, func.count()).where(*scope.conditions()).group_by(bucket)
    ).all()
    per_day: Counter[date] = Counter()
    per_hour: Counter[int] = Counter()
    for number, count in rows:
        local = bucket_start(number, seconds).astimezone(zone)
        per_day[local.date()] += count
        per_hour[local.hour] += count
    by_day = []
    if per_day:
        day, last = min(per_day), max(per_day)
        while day <= last:
            by_day.append({"day": day, "redemptions": per_day.get(day, 0)})
            day += timedelta(days=1)
    by_hour = [{"hour": hour, "redemptions": per_hour.get(hour, 0)} for hour in range(24)]
    return Timeline(by_day=by_day, by_hour=by_hour)


def redemptions_by_location(session: Session, scope: RedemptionScope) -> list[dict[str, Any]]:
    # Counted per id first, then named: the join touches a handful of rows, not every redemption.
    counts = (
        select(Redemption.location_id.label("place"), func.count().label("n"))
        .where(*scope.conditions())
        .group_by(Redemption.location_id)
        .subquery()
    )
    rows = session.execute(
        select(Location.name, counts.c.n)
        .select_from(counts)
        .outerjoin(Location, Location.id == counts.c.place)
        .order_by(counts.c.n.desc(), Location.name)
    )
    return [{"location": name or UNKNOWN, "redemptions": count} for name, count in rows]


def redemptions_by_device(session: Session, scope: RedemptionScope) -> list[dict[str, Any]]:
    counts = (
        select(Redemption.device_id.label("device"), func.count().label("n"))
        .where(*scope.conditions())
        .group_by(Redemption.device_id)
        .subquery()
    )
    rows = session.execute(
        select(Device.name, Location.name, counts.c.n)
        .select_from(counts)
        .outerjoin(Device, Device.id == counts.c.device)
        .outerjoin(Location, Location.id == Device.location_id)
        .order_by(counts.c.n.desc(), Device.name)
    )
    return [
        {"device": device or UNKNOWN, "location": location or UNKNOWN, "redemptions": count}
        for device, location, count in rows
    ]


def discount_given(session: Session, scope: RedemptionScope) -> list[DiscountGiven]:
    """Discount given over any scope (all campaigns, a period, a location), per currency.

    Counted per campaign first, then priced with each campaign's deal: one pass over the
    redemptions, and a join over a handful of rows.
    """
    counts = per_campaign_redemptions(scope.filters())
    amount, priced = discount_columns(counts)
    rows = session.execute(
        select(
            Deal.currency,
            func.coalesce(func.sum(amount), 0),
            func.coalesce(func.sum(counts.c.total), 0),
            func.coalesce(func.sum(priced), 0),
        )
        .select_from(counts)
        .outerjoin(Campaign, Campaign.id == counts.c.campaign_id)
        .outerjoin(Deal, Deal.id == Campaign.deal_id)
        .group_by(Deal.currency)
        .order_by(Deal.currency)
    )
    return [
        DiscountGiven(
            currency=currency,
            amount=Decimal(given).quantize(Decimal("0.01")),
            redemptions=int(total),
            unpriced=int(total) - int(priced_count),
        )
        for currency, given, total, priced_count in rows
    ]
