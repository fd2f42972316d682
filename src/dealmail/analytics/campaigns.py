"""Per-campaign funnel (recipients → sent → delivered → redeemed) and the campaigns comparison."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, distinct, func, select
from sqlalchemy.orm import Session

from dealmail.analytics._sql import live_redemption
from dealmail.errors import NotFound
from dealmail.models import (
    Campaign,
    Deal,
    DealKind,
    Event,
    EventKind,
    Message,
    MessageStatus,
    Redemption,
)

PENDING_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.DEFERRED)
# A bounced message did leave us: the receiving server refused it afterwards or at the door.
LEFT_US_STATUSES = (MessageStatus.SENT, MessageStatus.BOUNCED)

DISCOUNT_MEANING = (
    "Discount given = the discount recorded at the till for each redemption; when none was "
    "recorded, an amount-off deal counts its face value. Percent-off, buy-one-get-one, free-item "
    "and custom deals without a recorded amount are counted, not priced ('unpriced')."
)


@dataclass(frozen=True)
class DiscountGiven:
    """Money given away in one currency, plus redemptions whose value is unknown."""

    currency: str | None
    amount: Decimal
    redemptions: int
    unpriced: int


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: int
    name: str
    status: str
    subject: str
    deal: str | None
    send_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    recipients: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    # True when the backend reported deliveries; otherwise `delivered` is sent minus bounced.
    delivered_reported: bool = False
    bounced: int = 0
    failed: int = 0
    skipped: int = 0
    unsubscribed: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    redemptions: int = 0
    redeemed_coupons: int = 0
    discounts: list[DiscountGiven] = field(default_factory=list)

    @property
    def redemption_rate(self) -> float:
        """Coupons redeemed at least once, per email that left us."""
        return self.redeemed_coupons / self.sent if self.sent else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["redemption_rate"] = round(self.redemption_rate, 4)
        data["discounts"] = [{**item, "amount": str(item["amount"])} for item in data["discounts"]]
        for key in ("send_at", "started_at", "finished_at"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


# Past this many campaigns a plain scan beats one index seek per campaign.
MAX_SEEK_CAMPAIGNS = 500
# Deliveries and bounces come once per message; opens and clicks repeat, so count messages; an
# unsubscribe or complaint may come without a message, so count people.
EVENT_COUNTS: tuple[tuple[str, Any], ...] = (
    (EventKind.DELIVERED, None),
    (EventKind.BOUNCED, None),
    (EventKind.OPENED, Event.message_id),
    (EventKind.CLICKED, Event.message_id),
    (EventKind.UNSUBSCRIBED, Event.customer_id),
    (EventKind.COMPLAINED, Event.customer_id),
)


def _in_campaigns(column: Any, ids: list[int] | None) -> list[ColumnElement[bool]]:
    if ids is None or len(ids) > MAX_SEEK_CAMPAIGNS:
        return [column.is_not(None)]
    return [column.in_(ids)]


def _count_columns() -> list[Any]:
    """One correlated count per (campaign, message status) and per (campaign, event kind).

    Each is a seek and a count on an index range; at 1,000,000 messages this measured 47 ms
    against 113 ms for one GROUP BY over the same index (SQLite).
    """
    columns: list[Any] = [
        select(func.count())
        .select_from(Message)
        .where(Message.campaign_id == Campaign.id, Message.status == status)
        .scalar_subquery()
        .label(f"m_{status}")
        for status in MessageStatus
    ]
    for kind, distinct_column in EVENT_COUNTS:
        counted = func.count() if distinct_column is None else func.count(distinct(distinct_column))
        columns.append(
            select(counted)
            .where(Event.campaign_id == Campaign.id, Event.kind == kind)
            .scalar_subquery()
            .label(f"e_{kind}")
        )
    return columns


def discount_value_expression() -> Any:
    """The money one redemption gave away, or NULL when it is unknown (see DISCOUNT_MEANING).

    Redeem records an amount-off deal's value itself; the deal's value is the fallback for rows
    written before it did. Joined with `Deal` by the caller.
    """
    return func.coalesce(
        Redemption.discount_value, case((Deal.kind == DealKind.AMOUNT_OFF, Deal.value))
    )


@dataclass(frozen=True)
class _Redeemed:
    total: int
    coupons: int
    discount: DiscountGiven


def per_campaign_redemptions(conditions: list[ColumnElement[bool]]) -> Any:
    """Live redemptions counted per campaign in one pass, before any join."""
    return (
        select(
            Redemption.campaign_id.label("campaign_id"),
            func.count().label("total"),
            func.count(distinct(Redemption.coupon_id)).label("coupons"),
            func.coalesce(func.sum(Redemption.discount_value), 0).label("known_sum"),
            func.count(Redemption.discount_value).label("known"),
        )
        .where(live_redemption(), *conditions)
        .group_by(Redemption.campaign_id)
        .subquery()
    )


def discount_columns(counts: Any) -> tuple[Any, Any]:
    """(amount, priced) of a per-campaign count joined with the campaign's deal: redemptions
    with no recorded value count an amount-off deal's face value (see DISCOUNT_MEANING)."""
    face_value = Deal.kind == DealKind.AMOUNT_OFF
    amount = counts.c.known_sum + case(
        (face_value, (counts.c.total - counts.c.known) * func.coalesce(Deal.value, 0)), else_=0
    )
    priced = case((face_value, counts.c.total), else_=counts.c.known)
    return amount, priced


def _redemptions(session: Session, ids: list[int] | None) -> dict[int | None, _Redeemed]:
    """Counted per campaign first; the deal (and currency) is then the campaign's own."""
    counts = per_campaign_redemptions(_in_campaigns(Redemption.campaign_id, ids))
    amount, priced = discount_columns(counts)
    rows = session.execute(
        select(
            counts.c.campaign_id, Deal.currency, counts.c.total, counts.c.coupons, amount, priced
        )
        .select_from(counts)
        .join(Campaign, Campaign.id == counts.c.campaign_id)
        .outerjoin(Deal, Deal.id == Campaign.deal_id)
    )
    found: dict[int | None, _Redeemed] = {}
    for campaign_id, currency, total, coupons, given, priced_count in rows:
        found[campaign_id] = _Redeemed(
            total=total,
            coupons=coupons,
            discount=DiscountGiven(
                currency=currency,
                amount=Decimal(given).quantize(Decimal("0.01")),
                redemptions=total,
                unpriced=total - priced_count,
            ),
        )
    return found


def campaign_reports(session: Session, ids: list[int] | None = None) -> list[CampaignReport]:
    """One report per campaign (all of them, or those in `ids`), newest first."""
    rows = session.execute(
        select(
            Campaign.id,
            Campaign.name,
            Campaign.status,
            Campaign.subject,
            Deal.name.label("deal_name"),
            Campaign.send_at,
            Campaign.started_at,
            Campaign.finished_at,
            *_count_columns(),
        )
        .outerjoin(Deal, Deal.id == Campaign.deal_id)
        .where(*([] if ids is None else [Campaign.id.in_(ids)]))
        .order_by(
            func.coalesce(Campaign.started_at, Campaign.send_at, Campaign.created_at).desc(),
            Campaign.id.desc(),
        )
    ).all()
    redemptions = _redemptions(session, [row.id for row in rows])
    return [_report(row._mapping, redemptions.get(row.id)) for row in rows]


def _report(row: Any, redeemed: _Redeemed | None) -> CampaignReport:
    by_status = {status: int(row[f"m_{status}"] or 0) for status in MessageStatus}
    by_kind = {kind: int(row[f"e_{kind}"] or 0) for kind, _ in EVENT_COUNTS}
    sent = sum(by_status[s] for s in LEFT_US_STATUSES)
    bounced = max(by_status[MessageStatus.BOUNCED], by_kind[EventKind.BOUNCED])
    reported = by_kind[EventKind.DELIVERED]
    return CampaignReport(
        campaign_id=row["id"],
        name=row["name"],
        status=row["status"],
        subject=row["subject"],
        deal=row["deal_name"],
        send_at=row["send_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        recipients=sum(by_status.values()),
        pending=sum(by_status[s] for s in PENDING_STATUSES),
        sent=sent,
        delivered=reported if reported else max(sent - bounced, 0),
        delivered_reported=bool(reported),
        bounced=bounced,
        failed=by_status[MessageStatus.FAILED],
        skipped=by_status[MessageStatus.SKIPPED],
        unsubscribed=by_kind[EventKind.UNSUBSCRIBED],
        complained=by_kind[EventKind.COMPLAINED],
        opened=by_kind[EventKind.OPENED],
        clicked=by_kind[EventKind.CLICKED],
        redemptions=redeemed.total if redeemed else 0,
        redeemed_coupons=redeemed.coupons if redeemed else 0,
        discounts=[redeemed.discount] if redeemed else [],
    )


def find_campaign_id(session: Session, name: str) -> int:
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if campaign_id is None:
        raise NotFound(f"no campaign named {name!r}", code="campaign_not_found")
    return campaign_id


def campaign_report(session: Session, campaign: int | str) -> CampaignReport:
    """The report of one campaign, by id or by name."""
    campaign_id = find_campaign_id(session, campaign) if isinstance(campaign, str) else campaign
    reports = campaign_reports(session, [campaign_id])
    if not reports:
        raise NotFound(f"no campaign with id {campaign_id}", code="campaign_not_found")
    return reports[0]


def comparison_rows(reports: list[CampaignReport]) -> list[dict[str, Any]]:
    """The comparison table: one flat row per campaign, ready for a table or `--json`."""
    rows = []
    for report in reports:
        rows.append(
            {
                "campaign": report.name,
                "status": report.status,
                "started": report.started_at,
                "recipients": report.recipients,
                "sent": report.sent,
                "delivered": report.delivered,
                "bounced": report.bounced,
                "failed": report.failed,
                "unsubscribed": report.unsubscribed,
                "redemptions": report.redemptions,
                "redemption_rate": round(report.redemption_rate, 4),
                "discount_given": format_discounts(report.discounts),
            }
        )
    return rows


def format_discounts(discounts: list[DiscountGiven]) -> str:
    """Human text: `12.50 EUR + 3 unpriced`, or `-` when nothing was redeemed."""
    parts = []
    for item in discounts:
        if item.amount or item.unpriced < item.redemptions:
            parts.append(f"{item.amount} {item.currency or ''}".strip())
        if item.unpriced:
            parts.append(f"{item.unpriced} unpriced")
    return " + ".join(parts) if parts else "-"
