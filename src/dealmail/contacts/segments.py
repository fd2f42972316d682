"""Saved segments: named rule sets (see contacts.rules), created, listed, shown and counted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.contacts.audience import mailable_clause
from dealmail.contacts.lookup import get_segment
from dealmail.contacts.rules import rules_clause
from dealmail.errors import AlreadyExists, InvalidInput
from dealmail.models import Customer, Segment

NAME_MAX = 100


@dataclass(frozen=True)
class SegmentView:
    id: int
    name: str
    rules: dict[str, Any]
    members: int  # customers matching the rules, whatever their status
    mailable: int  # of whom subscribed and not suppressed: what a campaign would reach

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "rules": self.rules,
            "members": self.members,
            "mailable": self.mailable,
        }


def create_segment(
    session: Session, name: str, rules: dict[str, Any], *, replace: bool = False
) -> Segment:
    """Save a rule set under a name; the rules are checked now, not at send time."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(
            f"a segment needs a name of 1 to {NAME_MAX} characters", code="invalid_name"
        )
    rules_clause(rules)
    segment = session.scalar(select(Segment).where(Segment.name == name))
    if segment is not None and not replace:
        raise AlreadyExists(f"a segment named {name!r} exists", code="segment_exists")
    if segment is None:
        segment = Segment(name=name, rules=rules)
        session.add(segment)
    else:
        segment.rules = rules
    session.commit()
    return segment


def delete_segment(session: Session, name: str) -> None:
    session.delete(get_segment(session, name))
    session.commit()


def count_segment(session: Session, name: str, *, mailable: bool = False) -> int:
    where = rules_clause(get_segment(session, name).rules)
    if mailable:
        where = where & mailable_clause()
    return session.scalar(select(func.count(Customer.id)).where(where)) or 0


def show_segment(session: Session, name: str) -> SegmentView:
    segment = get_segment(session, name)
    where = rules_clause(segment.rules)
    members = session.scalar(select(func.count(Customer.id)).where(where)) or 0
    reachable = session.scalar(select(func.count(Customer.id)).where(where, mailable_clause())) or 0
    return SegmentView(segment.id, segment.name, segment.rules, members, reachable)


def list_segments(session: Session) -> list[SegmentView]:
    return [
        show_segment(session, s.name)
        for s in session.scalars(select(Segment).order_by(Segment.name))
    ]
