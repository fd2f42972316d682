"""Segment rules as SQL: a registry of condition kinds, each turning its JSON value into a clause.

A rule set is a JSON object whose keys are condition kinds, all of which must hold, e.g.
`{"tags_any": ["vip"], "status": "subscribed", "opted_in_after": "2024-01-01",
"attrs": {"city": "Lyon"}}`. Later domains add kinds (engagement, redemption) with
`register_condition`; nothing here loops over customers in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, not_, select, true

from dealmail.contacts.identity import tag_key
from dealmail.errors import InvalidInput
from dealmail.models import Customer, CustomerStatus, Tag, customer_tags

ConditionBuilder = Callable[[Any], ColumnElement[bool]]

_CONDITIONS: dict[str, ConditionBuilder] = {}


def register_condition(kind: str, builder: ConditionBuilder) -> None:
    """Add a condition kind; the builder validates its value (raise InvalidInput) and returns SQL
    over `Customer` (correlated subqueries welcome)."""
    _CONDITIONS[kind] = builder


def condition_kinds() -> list[str]:
    return sorted(_CONDITIONS)


def condition(kind: str) -> Callable[[ConditionBuilder], ConditionBuilder]:
    def decorate(builder: ConditionBuilder) -> ConditionBuilder:
        register_condition(kind, builder)
        return builder

    return decorate


def rules_clause(rules: dict[str, Any]) -> ColumnElement[bool]:
    """The WHERE clause for a rule set; an empty rule set matches every customer."""
    if not isinstance(rules, dict):
        raise InvalidInput("segment rules must be a JSON object", code="invalid_rules")
    clauses: list[ColumnElement[bool]] = []
    for kind, value in rules.items():
        builder = _CONDITIONS.get(kind)
        if builder is None:
            raise InvalidInput(
                f"unknown segment condition {kind!r}; known: {', '.join(condition_kinds())}",
                code="invalid_rules",
            )
        clauses.append(builder(value))
    return and_(true(), *clauses)


def validate_rules(rules: dict[str, Any]) -> None:
    rules_clause(rules)


def _tag_keys(kind: str, value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"{kind} needs a non-empty list of tag names", code="invalid_rules")
    keys = sorted({tag_key(n) for n in names if n.strip()})
    if not keys:
        raise InvalidInput(f"{kind} needs a non-empty list of tag names", code="invalid_rules")
    return keys


def _tagged_with(keys: list[str]) -> Any:
    return (
        select(customer_tags.c.tag_id)
        .join(Tag, Tag.id == customer_tags.c.tag_id)
        .where(customer_tags.c.customer_id == Customer.id, Tag.name_key.in_(keys))
    )


def tags_any_clause(keys: list[str]) -> ColumnElement[bool]:
    return exists(_tagged_with(keys))


def tags_all_clause(keys: list[str]) -> ColumnElement[bool]:
    matched = (
        _tagged_with(keys)
        .with_only_columns(func.count(func.distinct(customer_tags.c.tag_id)))
        .scalar_subquery()
    )
    has_all: ColumnElement[bool] = matched == len(keys)
    return has_all


@condition("tags_any")
def _tags_any(value: Any) -> ColumnElement[bool]:
    return tags_any_clause(_tag_keys("tags_any", value))


@condition("tags_all")
def _tags_all(value: Any) -> ColumnElement[bool]:
    return tags_all_clause(_tag_keys("tags_all", value))


@condition("tags_none")
def _tags_none(value: Any) -> ColumnElement[bool]:
    return not_(tags_any_clause(_tag_keys("tags_none", value)))


@condition("status")
def _status(value: Any) -> ColumnElement[bool]:
    statuses = [value] if isinstance(value, str) else value
    known = {s.value for s in CustomerStatus}
    if (
        not isinstance(statuses, list)
        or not statuses
        or not all(isinstance(s, str) and s in known for s in statuses)
    ):
        raise InvalidInput(
            f"status must be one or a list of: {', '.join(sorted(known))}", code="invalid_rules"
        )
    return Customer.status.in_(statuses)


def parse_instant(value: Any, what: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (naive means UTC)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{what}: {value!r} is not an ISO date or datetime", code="invalid_rules"
            ) from None
    else:
        raise InvalidInput(f"{what} needs an ISO date or datetime", code="invalid_rules")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@condition("opted_in_after")
def _opted_in_after(value: Any) -> ColumnElement[bool]:
    """Inclusive."""
    return Customer.consent_at >= parse_instant(value, "opted_in_after")


@condition("opted_in_before")
def _opted_in_before(value: Any) -> ColumnElement[bool]:
    """Exclusive, so after=2024-01-01 and before=2024-02-01 is January."""
    return Customer.consent_at < parse_instant(value, "opted_in_before")


@condition("attrs")
def _attrs(value: Any) -> ColumnElement[bool]:
    """Each attribute equals its value (attributes hold the import's extra columns as text)."""
    if not isinstance(value, dict) or not value:
        raise InvalidInput("attrs needs an object of attribute: value", code="invalid_rules")
    clauses: list[ColumnElement[bool]] = []
    for key, wanted in value.items():
        if not isinstance(key, str) or not key or isinstance(wanted, dict | list):
            raise InvalidInput("attrs needs an object of attribute: value", code="invalid_rules")
        text = "" if wanted is None else str(wanted)
        clauses.append(Customer.attributes[key].as_string() == text)
    return and_(*clauses)
