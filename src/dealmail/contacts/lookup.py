"""Finding customers and tags by what people type: an address, a tag name, a segment name."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select, true
from sqlalchemy.orm import Session

from dealmail.contacts.emails import EmailNormaliser, InvalidEmail, clean_address
from dealmail.contacts.identity import email_key, tag_key
from dealmail.contacts.rules import rules_clause, tags_any_clause
from dealmail.errors import InvalidInput, NotFound
from dealmail.models import Customer, CustomerStatus, Segment, Tag


def key_for(email: str) -> str:
    """The dedupe key an address was stored under (email-validator's normal form when valid)."""
    try:
        return EmailNormaliser().normalise(clean_address(email))[1]
    except InvalidEmail:
        return email_key(email)


def find_customer(session: Session, email: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.email_key == key_for(email)))


def get_customer(session: Session, email: str) -> Customer:
    customer = find_customer(session, email)
    if customer is None:
        raise NotFound(f"no customer with address {email.strip()!r}", code="customer_not_found")
    return customer


def find_tag(session: Session, name: str) -> Tag | None:
    return session.scalar(select(Tag).where(Tag.name_key == tag_key(name)))


def get_tag(session: Session, name: str) -> Tag:
    tag = find_tag(session, name)
    if tag is None:
        raise NotFound(f"no tag named {name!r}", code="tag_not_found")
    return tag


def get_segment(session: Session, name: str) -> Segment:
    segment = session.scalar(select(Segment).where(Segment.name == name.strip()))
    if segment is None:
        raise NotFound(f"no segment named {name!r}", code="segment_not_found")
    return segment


def customer_filter(
    session: Session,
    *,
    status: str | None = None,
    tag: str | None = None,
    segment: str | None = None,
) -> ColumnElement[bool]:
    """The WHERE clause for `count`/`list`/`export` options (each optional, all must hold)."""
    clauses: list[ColumnElement[bool]] = [true()]
    if status is not None:
        known = [s.value for s in CustomerStatus]
        if status not in known:
            raise InvalidInput(
                f"unknown status {status!r}; one of: {', '.join(known)}", code="invalid_status"
            )
        clauses.append(Customer.status == status)
    if tag is not None:
        clauses.append(tags_any_clause([get_tag(session, tag).name_key]))
    if segment is not None:
        clauses.append(rules_clause(get_segment(session, segment).rules))
    return and_(*clauses)
