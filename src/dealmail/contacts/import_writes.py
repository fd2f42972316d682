"""What both import merges write: opt-ins into customers, their consent events, their tags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from dealmail.contacts.columns import Consent
from dealmail.contacts.identity import tag_key
from dealmail.contacts.import_staging import STAGE_TAGS_BY_KEY, stage_tags
from dealmail.models import ConsentKind, CustomerStatus, UTCDateTime, customer_tags
from dealmail.models.base import Base, JSONType

_tables = Base.metadata.tables
CUSTOMERS, TAGS, SUPPRESSIONS, CONSENT_EVENTS = (
    _tables["customers"],
    _tables["tags"],
    _tables["suppressions"],
    _tables["consent_events"],
)


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def max_id(connection: Connection, table: Table) -> int:
    return int(connection.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0)


def earlier_consent(new: Any, current: Any) -> ColumnElement[bool]:
    return or_(current.consent_at.is_(None), new.consent_at < current.consent_at)


def _json(connection: Connection, value: ColumnElement[Any]) -> ColumnElement[Any]:
    if connection.dialect.name == "postgresql":
        return cast(value, JSONB)
    return value


OPT_IN = int(Consent.OPT_IN)


@dataclass(frozen=True)
class UpsertRows:
    """Where the upsert's rows come from: a table, the source column, which rows, what order."""

    table: Table
    source: ColumnElement[Any]
    where: ColumnElement[bool]
    order: tuple[ColumnElement[Any], ...]


def upsert_customers(connection: Connection, now: datetime, rows: UpsertRows) -> None:
    """Opt-ins into customers in key order; an existing customer gets empty fields filled,
    attributes united and the earliest consent, if it is subscribed. Status is never written
    here."""
    stamp = bindparam("now", now, type_=UTCDateTime())
    t = rows.table.c
    query = (
        select(
            t.email,
            t.email_key,
            t.email_hash,
            t.first_name,
            t.last_name,
            t.phone,
            _json(connection, func.coalesce(t.attributes, "{}")),
            literal(CustomerStatus.SUBSCRIBED.value),
            func.coalesce(t.consent_at, stamp),
            rows.source,
            t.consent_ip,
            stamp,
            stamp,
        )
        .where(rows.where)
        .order_by(*rows.order)
    )
    statement = _insert(connection)(CUSTOMERS).from_select(
        [
            "email",
            "email_key",
            "email_hash",
            "first_name",
            "last_name",
            "phone",
            "attributes",
            "status",
            "consent_at",
            "consent_source",
            "consent_ip",
            "created_at",
            "updated_at",
        ],
        query,
    )
    new, current = statement.excluded, CUSTOMERS.c
    earlier = earlier_consent(new, current)
    if connection.dialect.name == "postgresql":
        attributes: ColumnElement[Any] = new.attributes.op("||")(current.attributes)
    else:
        attributes = func.json_patch(new.attributes, current.attributes)
    statement = statement.on_conflict_do_update(
        index_elements=[current.email_key],
        set_={
            "first_name": func.coalesce(func.nullif(current.first_name, ""), new.first_name),
            "last_name": func.coalesce(func.nullif(current.last_name, ""), new.last_name),
            "phone": func.coalesce(func.nullif(current.phone, ""), new.phone),
            "attributes": attributes,
            "consent_at": case((earlier, new.consent_at), else_=current.consent_at),
            "consent_source": case((earlier, new.consent_source), else_=current.consent_source),
            "consent_ip": case((earlier, new.consent_ip), else_=current.consent_ip),
            "consent_wording": case((earlier, null()), else_=current.consent_wording),
            "updated_at": stamp,
        },
        where=current.status == CustomerStatus.SUBSCRIBED.value,
    )
    connection.execute(statement)


def _event_detail(now: datetime) -> ColumnElement[Any]:
    return bindparam("detail", {"imported_at": now.isoformat()}, type_=JSONType)


def record_opt_ins(connection: Connection, before: int, now: datetime) -> None:
    """An import event per customer this import created (ids above the old maximum, stamped
    with this import's time), straight from the customers table."""
    c = CUSTOMERS.c
    query = select(
        c.id,
        c.email_hash,
        literal(ConsentKind.IMPORT.value),
        c.consent_at,
        c.consent_source,
        c.consent_ip,
        _event_detail(now),
    ).where(c.id > before, c.created_at == bindparam("created", now, type_=UTCDateTime()))
    connection.execute(
        CONSENT_EVENTS.insert().from_select(
            ["customer_id", "email_hash", "kind", "at", "source", "ip", "detail"], query
        )
    )


@dataclass(frozen=True)
class AppliedOptIns:
    """The import's addresses (`keys`, a table with email_key) and which of them were applied
    as opt-ins: `condition` on `table` (`merged`, or customers), joined by email_key."""

    keys: Table
    table: Table
    condition: ColumnElement[bool]


def _joined(base: Any, key: Any, opt_ins: AppliedOptIns) -> Any:
    """base ⋈ the applied opt-ins ⋈ customers, by email_key."""
    if opt_ins.table is not CUSTOMERS and opt_ins.table is not base:
        base = base.join(opt_ins.table, opt_ins.table.c.email_key == key)
    return base.join(CUSTOMERS, CUSTOMERS.c.email_key == key)


def link_tags(
    connection: Connection, extra_tags: list[str], now: datetime, opt_ins: AppliedOptIns
) -> None:
    insert = _insert(connection)
    has_file_tags = connection.scalar(select(stage_tags.c.tag_key).limit(1)) is not None
    if has_file_tags:
        # Walked in key order, the lookups below go through merged and customers in their
        # own order instead of jumping about (1M rows, 190k tags: 3.4 s -> 1.2 s of CPU).
        connection.execute(STAGE_TAGS_BY_KEY)
        tagged = _joined(stage_tags, stage_tags.c.email_key, opt_ins)
        file_tags = (
            select(
                func.min(stage_tags.c.tag_name), stage_tags.c.tag_key, literal(now, UTCDateTime())
            )
            .select_from(tagged)
            .where(opt_ins.condition)
            .group_by(stage_tags.c.tag_key)
        )
        connection.execute(
            insert(TAGS)
            .from_select(["name", "name_key", "created_at"], file_tags)
            .on_conflict_do_nothing(index_elements=[TAGS.c.name_key])
        )
        links = (
            select(CUSTOMERS.c.id, TAGS.c.id)
            .select_from(tagged.join(TAGS, TAGS.c.name_key == stage_tags.c.tag_key))
            .where(opt_ins.condition)
            .order_by(stage_tags.c.email_key)
        )
        # Repeats (an address's tag on several rows) are absorbed by DO NOTHING.
        connection.execute(
            insert(customer_tags)
            .from_select(["customer_id", "tag_id"], links)
            .on_conflict_do_nothing()
        )
    for name in extra_tags:
        connection.execute(
            insert(TAGS)
            .values(name=name, name_key=tag_key(name), created_at=now)
            .on_conflict_do_nothing(index_elements=[TAGS.c.name_key])
        )
        tag_id = connection.scalar(select(TAGS.c.id).where(TAGS.c.name_key == tag_key(name)))
        keys = opt_ins.keys
        everyone = (
            select(CUSTOMERS.c.id, literal(tag_id))
            .select_from(_joined(keys, keys.c.email_key, opt_ins))
            .where(opt_ins.condition)
        )
        connection.execute(
            insert(customer_tags)
            .from_select(["customer_id", "tag_id"], everyone)
            .on_conflict_do_nothing()
        )


def opt_in_forbidden(email_key: Any, email_hash: Any) -> ColumnElement[bool]:
    """True where an opt-in may not be applied: the address is suppressed, or its customer is
    not subscribed (an import never re-subscribes anyone)."""
    suppressed = exists(select(SUPPRESSIONS.c.id).where(SUPPRESSIONS.c.email_hash == email_hash))
    not_subscribed = exists(
        select(CUSTOMERS.c.id).where(
            CUSTOMERS.c.email_key == email_key,
            CUSTOMERS.c.status != CustomerStatus.SUBSCRIBED.value,
        )
    )
    return or_(suppressed, not_subscribed)
