"""Reads on customers: one customer with tags and consent history, pages, counts, export rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from dealmail.contacts.consent import is_suppressed
from dealmail.contacts.identity import email_hash
from dealmail.contacts.lookup import customer_filter, get_customer
from dealmail.models import ConsentEvent, Customer, Tag, customer_tags

PAGE_MAX = 1000


@dataclass(frozen=True)
class ConsentRecord:
    kind: str
    at: datetime
    source: str | None
    ip: str | None
    wording: str | None


@dataclass(frozen=True)
class CustomerView:
    id: int
    email: str
    status: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    tags: list[str]
    attributes: dict[str, Any]
    consent_at: datetime | None
    consent_source: str | None
    consent_ip: str | None
    consent_wording: str | None
    suppressed: bool
    created_at: datetime
    history: list[ConsentRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "status": self.status,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone": self.phone,
            "tags": self.tags,
            "attributes": self.attributes,
            "consent": {
                "at": self.consent_at.isoformat() if self.consent_at else None,
                "source": self.consent_source,
                "ip": self.consent_ip,
                "wording": self.consent_wording,
            },
            "suppressed": self.suppressed,
            "created_at": self.created_at.isoformat(),
            "history": [
                {
                    "kind": e.kind,
                    "at": e.at.isoformat(),
                    "source": e.source,
                    "ip": e.ip,
                    "wording": e.wording,
                }
                for e in self.history
            ],
        }


def _view(session: Session, customer: Customer, history: bool) -> CustomerView:
    events: list[ConsentRecord] = []
    if history:
        # Also the events no customer holds, by hash: a trail recorded before the customer
        # row existed, or left by an erased customer with the same address.
        rows = session.scalars(
            select(ConsentEvent)
            .where(
                or_(
                    ConsentEvent.customer_id == customer.id,
                    and_(
                        ConsentEvent.customer_id.is_(None),
                        ConsentEvent.email_hash == email_hash(customer.email),
                    ),
                )
            )
            .order_by(ConsentEvent.at, ConsentEvent.id)
        )
        events = [ConsentRecord(e.kind, e.at, e.source, e.ip, e.wording) for e in rows]
    return CustomerView(
        id=customer.id,
        email=customer.email,
        status=customer.status,
        first_name=customer.first_name,
        last_name=customer.last_name,
        phone=customer.phone,
        tags=sorted((t.name for t in customer.tags), key=str.lower),
        attributes=dict(customer.attributes or {}),
        consent_at=customer.consent_at,
        consent_source=customer.consent_source,
        consent_ip=customer.consent_ip,
        consent_wording=customer.consent_wording,
        suppressed=is_suppressed(session, customer.email),
        created_at=customer.created_at,
        history=events,
    )


def customer_by_email(session: Session, email: str) -> CustomerView:
    """Status, names, tags, attributes and the consent history (NotFound if unknown)."""
    return _view(session, get_customer(session, email), history=True)


@dataclass(frozen=True)
class CustomerPage:
    items: list[CustomerView]
    total: int
    limit: int
    offset: int


def list_customers(
    session: Session,
    *,
    search: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    segment: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CustomerPage:
    """A page of customers, newest first; `search` matches address or names (case-insensitive)."""
    where = customer_filter(session, status=status, tag=tag, segment=segment)
    if search and search.strip():
        pattern = f"%{search.strip().lower()}%"
        where = where & or_(
            Customer.email_key.like(pattern),
            func.lower(Customer.first_name).like(pattern),
            func.lower(Customer.last_name).like(pattern),
        )
    limit = max(1, min(limit, PAGE_MAX))
    offset = max(0, offset)
    total = session.scalar(select(func.count(Customer.id)).where(where)) or 0
    rows = session.scalars(
        select(Customer).where(where).order_by(Customer.id.desc()).limit(limit).offset(offset)
    )
    return CustomerPage([_view(session, c, history=False) for c in rows], total, limit, offset)


def count_customers(
    session: Session,
    *,
    status: str | None = None,
    tag: str | None = None,
    segment: str | None = None,
) -> int:
    where = customer_filter(session, status=status, tag=tag, segment=segment)
    return session.scalar(select(func.count(Customer.id)).where(where)) or 0


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Customer.status, func.count()).group_by(Customer.status))
    return dict(rows.all())


def counts_by_tag(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Tag.name, func.count(customer_tags.c.customer_id))
        .select_from(Tag)
        .outerjoin(customer_tags, customer_tags.c.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(Tag.name)
    )
    return dict(rows.all())


EXPORT_COLUMNS = [
    "email",
    "first_name",
    "last_name",
    "phone",
    "status",
    "tags",
    "consent_at",
    "consent_source",
    "created_at",
]


def export_rows(
    session: Session,
    *,
    status: str | None = None,
    tag: str | None = None,
    segment: str | None = None,
    batch: int = 1000,
) -> Iterator[list[str]]:
    """Customers as CSV rows (header first), streamed in id order; cells not yet neutralised."""
    where = customer_filter(session, status=status, tag=tag, segment=segment)
    yield EXPORT_COLUMNS
    after = 0
    while True:
        customers = list(
            session.scalars(
                select(Customer)
                .where(where, Customer.id > after)
                .order_by(Customer.id)
                .limit(batch)
            )
        )
        if not customers:
            return
        for c in customers:
            yield [
                c.email,
                c.first_name or "",
                c.last_name or "",
                c.phone or "",
                c.status,
                ", ".join(sorted((t.name for t in c.tags), key=str.lower)),
                c.consent_at.isoformat() if c.consent_at else "",
                c.consent_source or "",
                c.created_at.isoformat(),
            ]
        after = customers[-1].id
        session.expunge_all()
