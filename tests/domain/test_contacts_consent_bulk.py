"""The set-based withdrawal an import uses agrees with consent.apply_withdrawal, one by one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session

from dealmail.contacts.consent import apply_withdrawal, apply_withdrawals_in_bulk
from dealmail.contacts.identity import email_hash, email_key
from dealmail.models import ConsentEvent, Customer, Suppression

NOW = datetime(2024, 6, 1, tzinfo=UTC)
STATUSES = ["subscribed", "unsubscribed", "bounced", "complained"]
REASONS = ["unsubscribe", "bounce", "complaint"]
CASES = [(s, r) for s in STATUSES for r in REASONS]


def _address(prefix: str, status: str, reason: str) -> str:
    return f"{prefix}-{status}-{reason}@example.com"


def _outcome(session: Session, address: str) -> tuple[str, list[str], bool]:
    customer = session.scalar(select(Customer).where(Customer.email_key == email_key(address)))
    assert customer is not None
    kinds = list(
        session.scalars(
            select(ConsentEvent.kind)
            .where(ConsentEvent.customer_id == customer.id)
            .order_by(ConsentEvent.id)
        )
    )
    suppressed = session.scalar(
        select(Suppression.id).where(Suppression.email_hash == email_hash(address))
    )
    return customer.status, kinds, suppressed is not None


def test_bulk_matches_one_by_one(session: Session) -> None:
    for prefix in ("one", "bulk"):
        for status, reason in CASES:
            address = _address(prefix, status, reason)
            session.add(Customer(email=address, email_key=email_key(address), status=status))
    session.flush()
    for status, reason in CASES:
        address = _address("one", status, reason)
        customer = session.scalar(select(Customer).where(Customer.email_key == address))
        assert customer is not None
        apply_withdrawal(session, customer, reason, source="test")
    session.flush()
    rows = [
        select(
            literal(_address("bulk", s, r)).label("email_key"),
            literal(email_hash(_address("bulk", s, r))).label("email_hash"),
            literal(r).label("reason"),
            literal("test").label("source"),
        )
        for s, r in CASES
    ]
    changed = apply_withdrawals_in_bulk(
        session.connection(), union_all(*rows).subquery().select(), now=NOW
    )
    session.expire_all()
    expected_changes = 0
    for status, reason in CASES:
        one = _outcome(session, _address("one", status, reason))
        bulk = _outcome(session, _address("bulk", status, reason))
        assert bulk == one, (status, reason)
        expected_changes += one[0] != status
    assert changed == expected_changes


@pytest.mark.parametrize("reason", REASONS)
def test_addresses_without_customers_are_suppressed(session: Session, reason: str) -> None:
    row = select(
        literal("ghost@example.com").label("email_key"),
        literal(email_hash("ghost@example.com")).label("email_hash"),
        literal(reason).label("reason"),
        literal("import:x.csv").label("source"),
    )
    assert apply_withdrawals_in_bulk(session.connection(), row, now=NOW) == 0
    found = session.scalar(
        select(Suppression.reason).where(Suppression.email_hash == email_hash("ghost@example.com"))
    )
    assert found == reason
