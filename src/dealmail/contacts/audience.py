"""Who a campaign may mail: an audience (everyone, a saved segment, or tags) as one SQL query.

Audience forms: `{}` every subscriber; `{"segment": "<name>"}`; `{"tags": ["a", "b"],
"match": "any" | "all"}` (match defaults to any). Whatever the form, only customers whose status
is subscribed and whose address hash is not on the suppression list are selected.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select, true
from sqlalchemy.orm import Session

from dealmail.contacts.identity import tag_key
from dealmail.contacts.rules import rules_clause, tags_all_clause, tags_any_clause
from dealmail.errors import InvalidInput, NotFound
from dealmail.models import Customer, CustomerStatus, Segment, Suppression, Tag

_KEYS = {"segment", "tags", "match"}


def mailable_clause() -> ColumnElement[bool]:
    """Subscribed and not suppressed: checked again by delivery when a message is claimed."""
    return (Customer.status == CustomerStatus.SUBSCRIBED) & ~exists(
        select(Suppression.id).where(Suppression.email_hash == Customer.email_hash)
    )


def _shape(audience: dict[str, Any]) -> tuple[str | None, list[str], str]:
    """(segment name, tag keys, match) after checking the audience's shape."""
    if not isinstance(audience, dict) or set(audience) - _KEYS:
        raise InvalidInput(
            'audience must be {}, {"segment": name} or {"tags": [...], "match": "any"|"all"}',
            code="invalid_audience",
        )
    segment = audience.get("segment")
    tags = audience.get("tags")
    match = audience.get("match", "any")
    if segment is not None and tags is not None:
        raise InvalidInput("audience: give a segment or tags, not both", code="invalid_audience")
    if segment is not None and (not isinstance(segment, str) or not segment.strip()):
        raise InvalidInput("audience: segment must be a name", code="invalid_audience")
    if match not in ("any", "all") or ("match" in audience and tags is None):
        raise InvalidInput('audience: match is "any" or "all", with tags', code="invalid_audience")
    keys: list[str] = []
    if tags is not None:
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidInput("audience: tags must be a list of names", code="invalid_audience")
        keys = sorted({tag_key(t) for t in tags if t.strip()})
        if not keys:
            raise InvalidInput("audience: tags must not be empty", code="invalid_audience")
    return (segment.strip() if isinstance(segment, str) else None), keys, match


def _segment(session: Session, name: str) -> Segment:
    segment = session.scalar(select(Segment).where(Segment.name == name))
    if segment is None:
        raise NotFound(f"no segment named {name!r}", code="segment_not_found")
    return segment


def audience_clause(session: Session, audience: dict[str, Any]) -> ColumnElement[bool]:
    """The audience's own condition, without the mailable filter."""
    segment_name, keys, match = _shape(audience)
    if segment_name is not None:
        return rules_clause(_segment(session, segment_name).rules)
    if keys:
        return tags_all_clause(keys) if match == "all" else tags_any_clause(keys)
    return true()


def audience_select(session: Session, audience: dict[str, Any]) -> Select[int]:
    """Ids of customers in the audience who may be mailed now, ordered by Customer.id.

    Callers page through it with `.where(Customer.id > cursor).limit(n)`.
    Raises NotFound for an unknown segment, InvalidInput for a malformed audience.
    """
    return (
        select(Customer.id)
        .where(mailable_clause(), audience_clause(session, audience))
        .order_by(Customer.id)
    )


def count_audience(session: Session, audience: dict[str, Any]) -> int:
    ids = audience_select(session, audience).order_by(None).subquery()
    return session.scalar(select(func.count()).select_from(ids)) or 0


def validate_audience(session: Session, audience: dict[str, Any]) -> None:
    """DomainError if the shape is wrong, or the segment or a tag does not exist."""
    segment_name, keys, _match = _shape(audience)
    if segment_name is not None:
        rules_clause(_segment(session, segment_name).rules)
    if keys:
        found = set(session.scalars(select(Tag.name_key).where(Tag.name_key.in_(keys))))
        missing = [k for k in keys if k not in found]
        if missing:
            raise NotFound(f"no tag named {', '.join(missing)}", code="tag_not_found")
