"""Customers, their tags, consent audit, suppressions and saved segments."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dealmail.models.base import Base, partial_index, utcnow
from dealmail.security import sha256_hex


class CustomerStatus(enum.StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    DELETED = "deleted"


customer_tags = Table(
    "customer_tags",
    Base.metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


def _hash_of_key(context: Any) -> str:  # a DefaultExecutionContext (untyped in SQLAlchemy)
    """Same value as contacts.identity.email_hash(email), computed from the stored key."""
    return sha256_hex(context.get_current_parameters()["email_key"])


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    # Joins the suppression list in SQL (audiences); no index: lookups go suppression-ward.
    email_hash: Mapped[str | None] = mapped_column(String(64), default=_hash_of_key)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CustomerStatus.SUBSCRIBED, index=True)
    consent_at: Mapped[datetime | None] = mapped_column(index=True)
    consent_source: Mapped[str | None] = mapped_column(String(255))
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    consent_wording: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tags: Mapped[list[Tag]] = relationship(secondary=customer_tags, lazy="selectin")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentKind(enum.StrEnum):
    OPT_IN = "opt_in"
    IMPORT = "import"
    UNSUBSCRIBE = "unsubscribe"
    RESUBSCRIBE = "resubscribe"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    DELETE = "delete"


class ConsentEvent(Base):
    """Append-only audit of every consent change; survives the customer's deletion by hash."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_customer_at", "customer_id", "at"),
        # A customer's events are found by customer_id; by hash only those no customer holds
        # (recorded before the customer existed, or left by a deleted one). Indexing just those
        # keeps an import's million events out of this index.
        partial_index("ix_consent_events_unowned_hash", "email_hash", where="customer_id IS NULL"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    email_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))
    wording: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Suppression(Base):
    """Addresses we must never mail, keyed by the hash of the normalised address."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Segment(Base):
    """A saved, named audience rule (JSON), evaluated as SQL."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
