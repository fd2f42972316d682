"""Deals (what a coupon is worth) and the locations where they are valid."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, ForeignKey, Numeric, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dealmail.models.base import Base, utcnow
from dealmail.models.locations import Location


class DealKind(enum.StrEnum):
    PERCENT_OFF = "percent_off"
    AMOUNT_OFF = "amount_off"
    BOGO = "bogo"
    FREE_ITEM = "free_item"
    CUSTOM = "custom"


deal_locations = Table(
    "deal_locations",
    Base.metadata,
    Column("deal_id", ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True),
    Column("location_id", ForeignKey("locations.id", ondelete="CASCADE"), primary_key=True),
)


class Deal(Base):
    __tablename__ = "deals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    title: Mapped[str] = mapped_column(String(200))
    terms: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    valid_days: Mapped[int | None]
    uses_per_coupon: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    locations: Mapped[list[Location]] = relationship(secondary=deal_locations, lazy="selectin")
