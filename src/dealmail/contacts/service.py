"""Writes on customers other than import: unsubscribe, resubscribe, delete, tag and untag.

Every consent change goes through contacts.consent; each function commits once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, func, insert, literal, select, true, update
from sqlalchemy.orm import Session

from dealmail.contacts.consent import (
    ConsentProof,
    add_suppression,
    apply_resubscribe,
    apply_withdrawal,
    is_suppressed,
    record_event,
)
from dealmail.contacts.identity import tag_key
from dealmail.contacts.lookup import find_customer, get_customer, get_segment, get_tag, key_for
from dealmail.contacts.rules import rules_clause
from dealmail.errors import InvalidInput
from dealmail.models import ConsentEvent, ConsentKind, Customer, CustomerStatus, Tag, customer_tags

_KEY_CHUNK = 500


def unsubscribe(
    session: Session,
    email_or_customer: str | Customer,
    *,
    source: str,
    ip: str | None = None,
    campaign_id: int | None = None,
) -> bool:
    """Withdraw consent and suppress the address (also when no customer has it, so a later
    import cannot subscribe it). False if the customer was already unsubscribed."""
    detail = {"campaign_id": campaign_id} if campaign_id is not None else None
    if isinstance(email_or_customer, str) and not email_or_customer.strip():
        raise InvalidInput("which address?", code="no_address")
    if isinstance(email_or_customer, Customer):
        customer: Customer | None = email_or_customer
    else:
        customer = find_customer(session, email_or_customer)
    if customer is None:
        address = str(email_or_customer)
        changed = not is_suppressed(session, address)
        add_suppression(session, address, "unsubscribe", source)
        if changed:
            record_event(
                session, None, address, ConsentKind.UNSUBSCRIBE, source=source, ip=ip, detail=detail
            )
    else:
        changed = apply_withdrawal(
            session, customer, "unsubscribe", source=source, ip=ip, detail=detail
        )
    session.commit()
    return changed


def resubscribe(session: Session, email: str, proof: ConsentProof) -> Customer:
    """Only with a new consent record (source required; time, IP and wording if known)."""
    if not proof.source or not proof.source.strip():
        raise InvalidInput("resubscribing needs the source of the new consent", code="no_consent")
    customer = get_customer(session, email)
    apply_resubscribe(session, customer, proof)
    session.commit()
    return customer


def delete_customer(session: Session, email: str) -> None:
    """Erase the person: the row and its tags go; the suppression hash stays, so they are
    never mailed again, and the consent trail stays without the customer link or IPs."""
    customer = get_customer(session, email)
    address = customer.email
    add_suppression(session, address, "deleted", "delete")
    session.execute(
        update(ConsentEvent)
        .where(ConsentEvent.customer_id == customer.id)
        .values(customer_id=None, ip=None, wording=None, detail={})
    )
    record_event(session, None, address, ConsentKind.DELETE, source="delete")
    session.delete(customer)
    session.commit()


@dataclass(frozen=True)
class TagResult:
    tag: str
    changed: int  # customers newly tagged (tag) or untagged (untag)
    not_found: list[str]  # addresses given that match no customer


def _targets(
    session: Session, emails: Iterable[str] | None, segment: str | None
) -> tuple[list[ColumnElement[bool]], list[str]]:
    """WHERE clauses that together select the customers (one per chunk of addresses, so a long
    file never exceeds the database's parameter limit), and given addresses matching nobody."""
    if emails is None and segment is None:
        raise InvalidInput("give addresses, a file or a segment", code="no_customers_given")
    in_segment = rules_clause(get_segment(session, segment).rules) if segment else true()
    if emails is None:
        return [in_segment], []
    wanted = {key_for(e): e.strip() for e in emails if e.strip()}
    keys = list(wanted)
    clauses: list[ColumnElement[bool]] = []
    found: set[str] = set()
    for start in range(0, len(keys), _KEY_CHUNK):
        chunk = Customer.email_key.in_(keys[start : start + _KEY_CHUNK])
        found.update(session.scalars(select(Customer.email_key).where(chunk)))
        clauses.append(and_(in_segment, chunk))
    return clauses, [wanted[k] for k in keys if k not in found]


def tag_customers(
    session: Session, tag: str, *, emails: Iterable[str] | None = None, segment: str | None = None
) -> TagResult:
    """Add a tag (created if new) to the given customers, set-based."""
    name = " ".join(tag.split())[:100]
    if not name:
        raise InvalidInput("a tag needs a name", code="invalid_tag")
    clauses, missing = _targets(session, emails, segment)
    row = session.scalar(select(Tag).where(Tag.name_key == tag_key(name)))
    if row is None:
        row = Tag(name=name, name_key=tag_key(name))
        session.add(row)
        session.flush()
    already = select(customer_tags.c.customer_id).where(customer_tags.c.tag_id == row.id)
    before = _tagged(session, row.id)
    for clause in clauses:
        chosen = select(Customer.id, literal(row.id)).where(clause, Customer.id.not_in(already))
        session.execute(insert(customer_tags).from_select(["customer_id", "tag_id"], chosen))
    changed = _tagged(session, row.id) - before
    session.commit()
    return TagResult(row.name, changed, missing)


def _tagged(session: Session, tag_id: int) -> int:
    # Counted, not rowcount: drivers disagree on INSERT … SELECT row counts.
    return (
        session.scalar(
            select(func.count()).select_from(customer_tags).where(customer_tags.c.tag_id == tag_id)
        )
        or 0
    )


def untag_customers(
    session: Session, tag: str, *, emails: Iterable[str] | None = None, segment: str | None = None
) -> TagResult:
    row = get_tag(session, tag)
    clauses, missing = _targets(session, emails, segment)
    before = _tagged(session, row.id)
    for clause in clauses:
        session.execute(
            delete(customer_tags).where(
                customer_tags.c.tag_id == row.id,
                customer_tags.c.customer_id.in_(select(Customer.id).where(clause)),
            )
        )
    changed = before - _tagged(session, row.id)
    session.commit()
    return TagResult(row.name, changed, missing)


__all__ = [
    "ConsentProof",
    "CustomerStatus",
    "TagResult",
    "delete_customer",
    "resubscribe",
    "tag_customers",
    "unsubscribe",
    "untag_customers",
]
