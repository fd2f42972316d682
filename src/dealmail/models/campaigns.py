"""Campaigns: what is sent, to whom, when, and where its lifecycle stands."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dealmail.models.base import Base, utcnow


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT, index=True)
    subject: Mapped[str] = mapped_column(String(255))
    preheader: Mapped[str | None] = mapped_column(String(255))
    from_name: Mapped[str | None] = mapped_column(String(200))
    from_email: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    # {"segment": name} or {"tags": [...], "match": "any"|"all"}; empty means every subscriber.
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deals.id", ondelete="RESTRICT"))
    theme: Mapped[str | None] = mapped_column(String(64))
    html_template: Mapped[str | None] = mapped_column(Text)
    # Theme fields the owner fills: heading, body_markdown, image_url, button_text, button_url...
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    send_at: Mapped[datetime | None] = mapped_column(index=True)
    started_at: Mapped[datetime | None]
    materialised_at: Mapped[datetime | None]
    # Highest customer id already turned into message rows: makes materialisation resumable.
    materialise_cursor: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None]
    paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
