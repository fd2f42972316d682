"""Events on messages: delivered, bounced, complained, opened, clicked, unsubscribed."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from dealmail.models.base import Base, utcnow


class EventKind(enum.StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"


class Event(Base):
    __tablename__ = "events"
    # message_id last: a campaign's unique opens and clicks are counted on the index alone
    # (measured: 179 ms against 23 ms for 75,000 opens among 500,000 events).
    __table_args__ = (Index("ix_events_campaign_kind", "campaign_id", "kind", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # Provider's own event id (SendGrid sg_event_id...), so a replayed webhook is ignored.
    provider_event_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
