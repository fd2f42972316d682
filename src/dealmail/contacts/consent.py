"""Consent changes in one place: status, the append-only audit and the suppression list.

The `apply_*` functions change the session without committing, so a caller that does more in the
same transaction (an import, a bounce, an unsubscribe page) commits once. Anything that changes a
customer's right to be mailed goes through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import (
    insert as sqlalchemy_insert,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dealmail.contacts.identity import email_hash
from dealmail.errors import InvalidInput
from dealmail.models import (
    ConsentEvent,
    ConsentKind,
    Customer,
    CustomerStatus,
    Suppression,
    UTCDateTime,
    utcnow,
)
from dealmail.models.base import JSONType

# Why an address is suppressed; each maps to the status a customer row gets.
SUPPRESSION_STATUS = {
    "unsubscribe": CustomerStatus.UNSUBSCRIBED,
    "bounce": CustomerStatus.BOUNCED,
    "complaint": CustomerStatus.COMPLAINED,
    "deleted": CustomerStatus.DELETED,
    "manual": CustomerStatus.UNSUBSCRIBED,
}
EVENT_FOR_REASON = {
    "unsubscribe": ConsentKind.UNSUBSCRIBE,
    "bounce": ConsentKind.BOUNCE,
    "complaint": ConsentKind.COMPLAINT,
    "deleted": ConsentKind.DELETE,
    "manual": ConsentKind.UNSUBSCRIBE,
}


@dataclass(frozen=True)
class ConsentProof:
    """What GDPR and CASL ask us to be able to show for an opt-in."""

    source: str
    at: datetime | None = None
    ip: str | None = None
    wording: str | None = None


def is_suppressed(session: Session, email: str) -> bool:
    return (
        session.scalar(select(Suppression.id).where(Suppression.email_hash == email_hash(email)))
        is not None
    )


def add_suppression(session: Session, email: str, reason: str, source: str | None) -> None:
    """Idempotent; keeps the first reason (a bounce after an unsubscribe stays an unsubscribe)."""
    hashed = email_hash(email)
    if session.scalar(select(Suppression.id).where(Suppression.email_hash == hashed)) is None:
        session.add(Suppression(email_hash=hashed, reason=reason, source=source))
        session.flush()


def record_event(
    session: Session,
    customer: Customer | None,
    email: str,
    kind: str,
    *,
    source: str | None = None,
    ip: str | None = None,
    wording: str | None = None,
    at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        ConsentEvent(
            customer_id=customer.id if customer is not None else None,
            email_hash=email_hash(email),
            kind=kind,
            at=at or utcnow(),
            source=source,
            ip=ip,
            wording=wording,
            detail=detail or {},
        )
    )


def apply_withdrawal(
    session: Session,
    customer: Customer,
    reason: str,
    *,
    source: str,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Unsubscribe, bounce or complaint: suppress and audit. False if nothing changed."""
    if reason not in SUPPRESSION_STATUS:
        raise InvalidInput(f"unknown withdrawal reason {reason!r}", code="invalid_reason")
    new_status = SUPPRESSION_STATUS[reason]
    already = customer.status == new_status
    if customer.status == CustomerStatus.SUBSCRIBED or reason in ("bounce", "complaint"):
        customer.status = new_status
    add_suppression(session, customer.email, reason, source)
    if not already:
        record_event(
            session,
            customer,
            customer.email,
            EVENT_FOR_REASON[reason],
            source=source,
            ip=ip,
            detail=detail,
        )
    return not already


def apply_resubscribe(session: Session, customer: Customer, proof: ConsentProof) -> None:
    """Only with fresh proof of consent: lifts the suppression and records the new opt-in."""
    if not proof.source:
        raise InvalidInput("resubscribing needs the source of the new consent", code="no_consent")
    at = proof.at or utcnow()
    customer.status = CustomerStatus.SUBSCRIBED
    customer.consent_at = at
    customer.consent_source = proof.source
    customer.consent_ip = proof.ip
    customer.consent_wording = proof.wording
    session.execute(delete(Suppression).where(Suppression.email_hash == email_hash(customer.email)))
    record_event(
        session,
        customer,
        customer.email,
        ConsentKind.RESUBSCRIBE,
        source=proof.source,
        ip=proof.ip,
        wording=proof.wording,
        at=at,
    )


def apply_withdrawals_in_bulk(
    connection: Connection,
    withdrawals: Select[Any],
    *,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> int:
    """`apply_withdrawal` for many addresses in a few statements (imports of unsubscribed or
    cleaned lists). `withdrawals` selects (email_key, email_hash, reason, source), one row per
    address, reason a key of SUPPRESSION_STATUS. Every address is suppressed (first reason
    kept); a customer gets the event and, under the same rule as one at a time, the status.
    Returns how many customers' status changed."""
    w = withdrawals.subquery("withdrawals")
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    stamp = literal(now, UTCDateTime())
    connection.execute(
        insert(Suppression)
        .from_select(
            ["email_hash", "reason", "source", "created_at"],
            # The WHERE resolves SQLite's INSERT … SELECT … ON CONFLICT parsing ambiguity.
            select(w.c.email_hash, w.c.reason, w.c.source, stamp).where(
                w.c.email_hash.is_not(None)
            ),
        )
        .on_conflict_do_nothing(index_elements=[Suppression.email_hash])
    )
    new_status = case(*[(w.c.reason == r, s.value) for r, s in SUPPRESSION_STATUS.items()])
    kind = case(*[(w.c.reason == r, k.value) for r, k in EVENT_FOR_REASON.items()])
    not_already = Customer.status != new_status
    changes = and_(
        not_already,
        or_(Customer.status == CustomerStatus.SUBSCRIBED.value, w.c.reason.in_(_HARD_REASONS)),
    )
    matched = select(Customer.id).join_from(w, Customer, Customer.email_key == w.c.email_key)
    connection.execute(
        sqlalchemy_insert(ConsentEvent).from_select(
            ["customer_id", "email_hash", "kind", "at", "source", "detail"],
            matched.add_columns(
                w.c.email_hash,
                kind,
                stamp,
                w.c.source,
                bindparam("detail", detail or {}, type_=JSONType),
            ).where(not_already),
        )
    )
    changed = connection.scalar(select(func.count()).select_from(matched.where(changes).subquery()))
    for reason, status in SUPPRESSION_STATUS.items():
        ids = matched.where(changes, w.c.reason == reason)
        connection.execute(
            update(Customer)
            .where(Customer.id.in_(ids))
            .values(status=status.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return changed or 0


# Withdrawals that change any status (apply_withdrawal), not only a subscribed one.
_HARD_REASONS = ("bounce", "complaint")
