"""Audiences and segment rules select the right customers, as SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dealmail.contacts import rules
from dealmail.contacts.audience import audience_select, count_audience, validate_audience
from dealmail.contacts.identity import email_hash, email_key, tag_key
from dealmail.contacts.rules import register_condition, rules_clause
from dealmail.errors import DomainError, InvalidInput, NotFound
from dealmail.models import Customer, CustomerStatus, Segment, Suppression, Tag


def _customer(
    session: Session,
    email: str,
    *,
    tags: tuple[str, ...] = (),
    status: str = CustomerStatus.SUBSCRIBED,
    consent_at: datetime | None = None,
    attributes: dict[str, Any] | None = None,
) -> Customer:
    tag_rows = []
    for name in tags:
        tag = session.scalar(select(Tag).where(Tag.name_key == tag_key(name)))
        if tag is None:
            tag = Tag(name=name, name_key=tag_key(name))
            session.add(tag)
        tag_rows.append(tag)
    customer = Customer(
        email=email,
        email_key=email_key(email),
        status=status,
        consent_at=consent_at,
        attributes=attributes or {},
        tags=tag_rows,
    )
    session.add(customer)
    session.flush()
    return customer


@pytest.fixture
def people(session: Session) -> dict[str, int]:
    jan = datetime(2024, 1, 15, tzinfo=UTC)
    mar = datetime(2024, 3, 1, tzinfo=UTC)
    rows = {
        "ana": _customer(session, "ana@example.com", tags=("VIP", "lyon"), consent_at=jan),
        "ben": _customer(session, "ben@example.com", tags=("vip",), consent_at=mar),
        "cat": _customer(session, "cat@example.com", tags=("Lyon",), attributes={"city": "Paris"}),
        "dan": _customer(
            session, "dan@example.com", tags=("vip",), status=CustomerStatus.UNSUBSCRIBED
        ),
        "eve": _customer(session, "eve@example.com", tags=("vip", "lyon")),
        "fay": _customer(session, "fay@example.com", attributes={"city": "Paris"}),
    }
    # Suppressed yet still marked subscribed (e.g. a suppression added by another path).
    session.add(Suppression(email_hash=email_hash("EVE@example.com "), reason="complaint"))
    session.commit()
    return {name: customer.id for name, customer in rows.items()}


def _ids(session: Session, audience: dict[str, Any]) -> list[int]:
    return list(session.scalars(audience_select(session, audience)))


def _names(people: dict[str, int], ids: list[int]) -> list[str]:
    by_id = {v: k for k, v in people.items()}
    return [by_id[i] for i in ids]


def test_everyone_means_every_mailable_subscriber(session: Session, people: dict[str, int]) -> None:
    assert _names(people, _ids(session, {})) == ["ana", "ben", "cat", "fay"]
    assert count_audience(session, {}) == 4
    assert session.scalar(select(Customer.email_hash).where(Customer.id == people["eve"])) == (
        email_hash("eve@example.com")
    )


def test_tags_any_and_all_are_case_insensitive(session: Session, people: dict[str, int]) -> None:
    assert _names(people, _ids(session, {"tags": ["vip", "LYON"]})) == ["ana", "ben", "cat"]
    assert _names(people, _ids(session, {"tags": [" Vip", "lyon"], "match": "all"})) == ["ana"]
    assert count_audience(session, {"tags": ["nobody-has-this"]}) == 0


def test_cursor_paging_the_way_delivery_does(session: Session, people: dict[str, int]) -> None:
    query = audience_select(session, {})
    first = list(session.scalars(query.where(Customer.id > 0).limit(2)))
    rest = list(session.scalars(query.where(Customer.id > first[-1]).limit(10)))
    assert _names(people, first + rest) == ["ana", "ben", "cat", "fay"]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"tags_any": ["lyon"]}, ["ana", "cat", "eve"]),
        ({"tags_all": ["vip", "lyon"]}, ["ana", "eve"]),
        ({"tags_none": ["vip"]}, ["cat", "fay"]),
        ({"status": "unsubscribed"}, ["dan"]),
        (
            {"status": ["subscribed", "unsubscribed"], "tags_any": "vip"},
            ["ana", "ben", "dan", "eve"],
        ),
        ({"opted_in_after": "2024-02-01"}, ["ben"]),
        ({"opted_in_after": "2024-01-01", "opted_in_before": "2024-02-01"}, ["ana"]),
        ({"attrs": {"city": "Paris"}}, ["cat", "fay"]),
        ({"attrs": {"city": "Paris"}, "tags_any": ["lyon"]}, ["cat"]),
        ({}, ["ana", "ben", "cat", "dan", "eve", "fay"]),
    ],
)
def test_segment_rules_as_sql(
    session: Session, people: dict[str, int], rules: dict[str, Any], expected: list[str]
) -> None:
    ids = session.scalars(select(Customer.id).where(rules_clause(rules)).order_by(Customer.id))
    assert _names(people, list(ids)) == expected


def test_segment_audience_is_mailable_members(session: Session, people: dict[str, int]) -> None:
    session.add(Segment(name="vip", rules={"tags_any": ["vip"]}))
    session.commit()
    assert _names(people, _ids(session, {"segment": "vip"})) == ["ana", "ben"]
    validate_audience(session, {"segment": "vip"})


def test_new_condition_kinds_plug_in(
    session: Session, people: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "_CONDITIONS", dict(rules._CONDITIONS))
    register_condition("email_domain_is", lambda value: Customer.email_key.like(f"%@{value}"))
    clause = rules_clause({"email_domain_is": "example.com", "tags_none": ["vip"]})
    ids = session.scalars(select(Customer.id).where(clause).order_by(Customer.id))
    assert _names(people, list(ids)) == ["cat", "fay"]


@pytest.mark.parametrize(
    ("audience", "error"),
    [
        ({"segment": "missing"}, NotFound),
        ({"tags": ["vip", "missing"]}, NotFound),
        ({"tags": []}, InvalidInput),
        ({"tags": "vip"}, InvalidInput),
        ({"tags": ["vip"], "match": "some"}, InvalidInput),
        ({"segment": "a", "tags": ["vip"]}, InvalidInput),
        ({"everyone": True}, InvalidInput),
    ],
)
def test_validate_audience_refuses(
    session: Session, people: dict[str, int], audience: dict[str, Any], error: type[DomainError]
) -> None:
    with pytest.raises(error):
        validate_audience(session, audience)


@pytest.mark.parametrize(
    "rules",
    [
        {"colour": "red"},
        {"tags_any": []},
        {"status": "happy"},
        {"opted_in_after": "last tuesday"},
        {"attrs": ["city"]},
    ],
)
def test_bad_rules_are_invalid_input(rules: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        rules_clause(rules)
