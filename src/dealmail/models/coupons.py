"""Coupons (one per message carrying a deal), redemptions (append-only) and idempotency records."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dealmail.models.base import Base, utcnow


class Coupon(Base):
    """A personal deal. Token and short code are stored only as hashes (see coupons/tokens.py)."""

    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="RESTRICT"), index=True)
    # Random per coupon; with the secret key it derives the token and short code again.
    nonce: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    short_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    uses: Mapped[int] = mapped_column(default=0)
    max_uses: Mapped[int] = mapped_column(default=1)
    valid_from: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    is_test: Mapped[bool] = mapped_column(default=False)
    short_code_misses: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Redemption(Base):
    """Append-only. A void is a new row with `voids_id` set; the original gets `voided_by_id`."""

    __tablename__ = "redemptions"
    __table_args__ = (Index("ix_redemptions_at", "redeemed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    coupon_id: Mapped[int] = mapped_column(
        ForeignKey("coupons.id", ondelete="RESTRICT"), index=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id", ondelete="SET NULL"), index=True
    )
    device_id: Mapped[int | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    redeemed_at: Mapped[datetime] = mapped_column(default=utcnow)
    discount_value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    order_reference: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    voids_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"), unique=True)
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class IdempotencyRecord(Base):
    """The first answer to a (device, key) request, returned again on retry."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("device_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
