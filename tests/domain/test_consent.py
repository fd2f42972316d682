"""Consent changes: withdrawals suppress and audit; resubscribing needs proof and lifts it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.contacts import consent
from dealmail.contacts.identity import email_hash, email_key
from dealmail.errors import InvalidInput
from dealmail.models import ConsentEvent, Customer, CustomerStatus, Suppression


def _customer(session: Session, email: str = "Ann@Example.com") -> Customer:
    customer = Customer(email=email, email_key=email_key(email))
    session.add(customer)
    session.flush()
    return customer


def test_unsubscribe_suppresses_and_audits_once(session: Session) -> None:
    customer = _customer(session)
    assert consent.apply_withdrawal(session, customer, "unsubscribe", source="test") is True
    assert consent.apply_withdrawal(session, customer, "unsubscribe", source="test") is False
    session.commit()
    assert customer.status == CustomerStatus.UNSUBSCRIBED
    assert consent.is_suppressed(session, " ann@EXAMPLE.com ")
    events = session.scalars(select(ConsentEvent.kind)).all()
    assert events == ["unsubscribe"]


def test_suppression_keeps_its_first_reason(session: Session) -> None:
    customer = _customer(session)
    consent.apply_withdrawal(session, customer, "unsubscribe", source="page")
    consent.apply_withdrawal(session, customer, "bounce", source="smtp")
    session.commit()
    reasons = session.scalars(select(Suppression.reason)).all()
    assert reasons == ["unsubscribe"]
    assert customer.status == CustomerStatus.BOUNCED


def test_resubscribe_needs_proof_and_lifts_suppression(session: Session) -> None:
    customer = _customer(session)
    consent.apply_withdrawal(session, customer, "unsubscribe", source="page")
    with pytest.raises(InvalidInput):
        consent.apply_resubscribe(session, customer, consent.ConsentProof(source=""))
    proof = consent.ConsentProof(source="shop-counter", ip="203.0.113.9", wording="Yes, email me")
    consent.apply_resubscribe(session, customer, proof)
    session.commit()
    assert customer.status == CustomerStatus.SUBSCRIBED
    assert customer.consent_source == "shop-counter"
    assert not consent.is_suppressed(session, customer.email)
    kinds = session.scalars(select(ConsentEvent.kind).order_by(ConsentEvent.id)).all()
    assert kinds == ["unsubscribe", "resubscribe"]


def test_suppression_outlives_the_customer(session: Session) -> None:
    customer = _customer(session, "gone@example.com")
    consent.apply_withdrawal(session, customer, "complaint", source="fbl")
    session.commit()
    session.delete(customer)
    session.commit()
    assert consent.is_suppressed(session, "GONE@example.com")
    trail = session.scalars(select(ConsentEvent)).one()
    assert trail.customer_id is None
    assert trail.email_hash == email_hash("gone@example.com")


def test_unknown_reason_is_refused(session: Session) -> None:
    customer = _customer(session)
    with pytest.raises(InvalidInput):
        consent.apply_withdrawal(session, customer, "bored", source="x")
