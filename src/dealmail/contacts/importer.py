"""CSV import: stream rows into a staging table, then merge them into customers set-based.

One transaction: every file is read and validated into an unindexed TEMP table, duplicates are
folded by key in SQL, and one `INSERT … SELECT … ORDER BY email_key ON CONFLICT DO UPDATE` merges
them (names and phone filled where empty, attributes united, earliest consent kept). The status
column is never written by that merge, so an import can never re-subscribe anyone; addresses on
the suppression list or whose customer is not subscribed are skipped. Rows whose export withdraws
consent (unsubscribed, cleaned) suppress the address and unsubscribe a subscribed customer.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from dealmail.contacts.columns import Consent, consent_of, parse_time, split_tags
from dealmail.contacts.consent import EVENT_FOR_REASON, SUPPRESSION_STATUS
from dealmail.contacts.csvread import FileFormat, detect_format, read_records
from dealmail.contacts.emails import EmailNormaliser, InvalidEmail
from dealmail.contacts.identity import tag_key
from dealmail.models import (
    ConsentKind,
    CustomerStatus,
    Suppression,
    UTCDateTime,
    customer_tags,
    utcnow,
)
from dealmail.models.base import Base, JSONType

_tables = Base.metadata.tables
CUSTOMERS, TAGS, SUPPRESSIONS, CONSENT_EVENTS = (
    _tables["customers"],
    _tables["tags"],
    _tables["suppressions"],
    _tables["consent_events"],
)
CHUNK_ROWS = 5_000
INVALID_ROWS_KEPT = 1_000
NAME_MAX, PHONE_MAX, IP_MAX = 200, 64, 64
_ORD = 10  # width of the zero-padded row order that prefixes values in "first non-empty" folds

_staging_metadata = MetaData()
stage = Table(
    "dealmail_import_stage",
    _staging_metadata,
    Column("ord", String(_ORD)),
    Column("line", Integer),
    Column("email", String(320)),
    Column("email_key", String(320)),
    Column("email_hash", String(64)),
    Column("first_name", String(NAME_MAX)),
    Column("last_name", String(NAME_MAX)),
    Column("phone", String(PHONE_MAX)),
    Column("attributes", Text),
    Column("consent", Integer),
    Column("consent_at", UTCDateTime()),
    Column("consent_ip", String(IP_MAX)),
    Column("source", String(255)),
    prefixes=["TEMPORARY"],
)
stage_tags = Table(
    "dealmail_import_stage_tags",
    _staging_metadata,
    Column("email_key", String(320)),
    Column("tag_key", String(100)),
    Column("tag_name", String(100)),
    prefixes=["TEMPORARY"],
)
merged = Table(
    "dealmail_import_merged",
    _staging_metadata,
    Column("email_key", String(320)),
    Column("email", String(320)),
    Column("email_hash", String(64)),
    Column("first_name", String(NAME_MAX)),
    Column("last_name", String(NAME_MAX)),
    Column("phone", String(PHONE_MAX)),
    Column("attributes", Text),
    Column("consent", Integer),
    Column("consent_at", UTCDateTime()),
    Column("consent_ip", String(IP_MAX)),
    Column("source", String(255)),
    Column("outcome", String(16)),
    prefixes=["TEMPORARY"],
)
_STAGING_TABLES = (stage, stage_tags, merged)

# What a folded address ends as.
CREATE, UPDATE, NO_CONSENT, WITHDRAW, SUPPRESSED = (
    "create",
    "update",
    "no_consent",
    "withdraw",
    "suppressed",
)
_WRITTEN = (CREATE, UPDATE)


@dataclass
class ImportReport:
    """Counts: rows = invalid + merged_duplicates + created + updated + skipped_consent +
    skipped_suppressed. `withdrawn` (customers unsubscribed because the file says so) is part
    of skipped_consent."""

    files: list[str]
    dry_run: bool
    tags: list[str]
    rows: int = 0
    created: int = 0
    updated: int = 0
    merged_duplicates: int = 0
    invalid: int = 0
    skipped_consent: int = 0
    skipped_suppressed: int = 0
    withdrawn: int = 0
    invalid_rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add_invalid(self, file: str, line: int, reason: str) -> None:
        self.invalid += 1
        if len(self.invalid_rows) < INVALID_ROWS_KEPT:
            self.invalid_rows.append({"file": file, "line": line, "reason": reason})


Progress = Callable[[int], None]


def inspect_files(
    paths: Sequence[Path], overrides: dict[str, str | None] | None = None
) -> list[FileFormat]:
    """Encoding, delimiter and column mapping of each file, without importing (DomainError if
    one cannot be read as CSV with an email column)."""
    return [detect_format(Path(p), overrides) for p in paths]


def import_contacts(
    session: Session,
    paths: Sequence[Path],
    *,
    tags: Sequence[str] = (),
    overrides: dict[str, str | None] | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the files atomically (a dry run does all the work, then rolls back)."""
    started = time.perf_counter()
    now = now or utcnow()
    formats = inspect_files(paths, overrides)  # every file must be readable before any write
    extra_tags = list(dict.fromkeys(" ".join(t.split())[:100] for t in tags if t.strip()))
    report = ImportReport([f.path.name for f in formats], dry_run, extra_tags)
    connection = session.connection()
    try:
        _create_staging(connection)
        done = 0
        for fmt in formats:
            offset = done
            tick = None if progress is None else (lambda pos, o=offset: progress(o + pos))
            _stage_file(connection, fmt, report, now, tick)
            done += fmt.path.stat().st_size
        _merge(connection, report, extra_tags, now)
        _drop_staging(connection)
    except BaseException:
        session.rollback()
        raise
    if dry_run:
        session.rollback()
    else:
        session.commit()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _create_staging(connection: Connection) -> None:
    for table in _STAGING_TABLES:
        table.drop(connection, checkfirst=True)
        table.create(connection)


def _drop_staging(connection: Connection) -> None:
    for table in reversed(_STAGING_TABLES):
        table.drop(connection)


def _cell(cells: list[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def _stage_file(
    connection: Connection,
    fmt: FileFormat,
    report: ImportReport,
    now: datetime,
    progress: Progress | None,
) -> None:
    fields = fmt.columns.fields
    source = f"import:{fmt.path.name}"[:255]
    email_i = fields["email"][0]
    first_i = fields.get("first_name", (None,))[0]
    last_i = fields.get("last_name", (None,))[0]
    phone_i = fields.get("phone", (None,))[0]
    tags_i = fields.get("tags", (None,))[0]
    consent_i = fields.get("consent", (None,))[0]
    unsub_i = fields.get("unsubscribed_at", (None,))[0]
    cleaned_i = fields.get("cleaned_at", (None,))[0]
    time_cols = fields.get("opt_in_time", ())
    ip_cols = fields.get("opt_in_ip", ())
    attribute_cols = fmt.columns.attributes
    # Mailchimp names its exports by status; a renamed file still carries UNSUB_TIME/CLEAN_TIME.
    lowered = fmt.path.name.lower()
    forced = (
        Consent.UNSUBSCRIBE
        if lowered.startswith("unsubscribed")
        else Consent.BOUNCE
        if lowered.startswith("cleaned")
        else None
    )
    normalise = EmailNormaliser().normalise
    sha256 = hashlib.sha256
    dumps = json.dumps
    rows: list[dict[str, Any]] = []
    tag_rows: list[dict[str, Any]] = []
    insert_rows = stage.insert()
    insert_tags = stage_tags.insert()
    seq = report.rows
    name = fmt.path.name
    for line, cells in read_records(fmt, progress):
        seq += 1
        raw = _cell(cells, email_i)
        if not raw:
            report.add_invalid(name, line, "no email address")
            continue
        try:
            email, key = normalise(raw)
        except InvalidEmail as exc:
            report.add_invalid(name, line, f"{raw[:80]}: {exc}")
            continue
        if forced is not None:
            consent = forced
        else:
            consent = Consent.OPT_IN if consent_i is None else consent_of(_cell(cells, consent_i))
            if unsub_i is not None and _cell(cells, unsub_i):
                consent = max(consent, Consent.UNSUBSCRIBE)
            if cleaned_i is not None and _cell(cells, cleaned_i):
                consent = max(consent, Consent.BOUNCE)
        consent_at = None
        consent_ip = None
        if consent == Consent.OPT_IN:
            for i in time_cols:
                value = _cell(cells, i)
                if value:
                    consent_at = parse_time(value, not_after=now)
                    break
            consent_at = consent_at or now
            for i in ip_cols:
                value = _cell(cells, i)
                if value:
                    consent_ip = value[:IP_MAX]
                    break
        attributes = None
        if attribute_cols:
            found = {k: v for i, k in attribute_cols if (v := _cell(cells, i))}
            if found:
                attributes = dumps(found, ensure_ascii=False, sort_keys=True)
        if tags_i is not None:
            for tag in split_tags(_cell(cells, tags_i)):
                tag_rows.append({"email_key": key, "tag_key": tag_key(tag), "tag_name": tag})
        rows.append(
            {
                "ord": f"{seq:0{_ORD}d}",
                "line": line,
                "email": email,
                "email_key": key,
                "email_hash": sha256(key.encode()).hexdigest(),
                "first_name": _cell(cells, first_i)[:NAME_MAX] or None,
                "last_name": _cell(cells, last_i)[:NAME_MAX] or None,
                "phone": _cell(cells, phone_i)[:PHONE_MAX] or None,
                "attributes": attributes,
                "consent": int(consent),
                "consent_at": consent_at,
                "consent_ip": consent_ip,
                "source": source,
            }
        )
        if len(rows) >= CHUNK_ROWS:
            connection.execute(insert_rows, rows)
            rows.clear()
            if tag_rows:
                connection.execute(insert_tags, tag_rows)
                tag_rows.clear()
    if rows:
        connection.execute(insert_rows, rows)
    if tag_rows:
        connection.execute(insert_tags, tag_rows)
    report.rows = seq


def _first(column: Any) -> ColumnElement[Any]:
    """The value of the earliest row (by file order) where it is not empty."""
    return func.substr(func.min(stage.c.ord + column), _ORD + 1)


def _json(connection: Connection, value: ColumnElement[Any]) -> ColumnElement[Any]:
    if connection.dialect.name == "postgresql":
        return cast(value, JSONB)
    return value


def _merge(
    connection: Connection, report: ImportReport, extra_tags: list[str], now: datetime
) -> None:
    _fold_duplicates(connection)
    counts: dict[str, int] = dict(
        connection.execute(select(merged.c.outcome, func.count()).group_by(merged.c.outcome)).all()
    )
    addresses = sum(counts.values())
    report.merged_duplicates = report.rows - report.invalid - addresses
    report.created = counts.get(CREATE, 0)
    report.updated = counts.get(UPDATE, 0)
    report.skipped_consent = counts.get(NO_CONSENT, 0) + counts.get(WITHDRAW, 0)
    report.skipped_suppressed = counts.get(SUPPRESSED, 0)
    _upsert_customers(connection, now)
    _record_opt_ins(connection, now)
    _link_tags(connection, extra_tags, now)
    report.withdrawn = _apply_withdrawals(connection, now)


def _fold_duplicates(connection: Connection) -> None:
    """One row per address in `merged`, with what should happen to it."""
    folded = (
        select(
            stage.c.email_key,
            _first(stage.c.email).label("email"),
            func.min(stage.c.email_hash).label("email_hash"),
            _first(stage.c.first_name).label("first_name"),
            _first(stage.c.last_name).label("last_name"),
            _first(stage.c.phone).label("phone"),
            _first(stage.c.attributes).label("attributes"),
            func.max(stage.c.consent).label("consent"),
            func.min(stage.c.consent_at).label("consent_at"),
            _first(stage.c.consent_ip).label("consent_ip"),
            _first(stage.c.source).label("source"),
        )
        .group_by(stage.c.email_key)
        .subquery("folded")
    )
    existing = CUSTOMERS.alias("existing")
    suppressed = exists(select(Suppression.id).where(Suppression.email_hash == folded.c.email_hash))
    outcome = case(
        (folded.c.consent >= int(Consent.BOUNCE), WITHDRAW),
        (folded.c.consent == int(Consent.NONE), NO_CONSENT),
        (
            or_(
                suppressed,
                and_(
                    existing.c.id.is_not(None),
                    existing.c.status != CustomerStatus.SUBSCRIBED.value,
                ),
            ),
            SUPPRESSED,
        ),
        (existing.c.id.is_(None), CREATE),
        else_=UPDATE,
    )
    query = select(
        folded.c.email_key,
        folded.c.email,
        folded.c.email_hash,
        folded.c.first_name,
        folded.c.last_name,
        folded.c.phone,
        folded.c.attributes,
        folded.c.consent,
        folded.c.consent_at,
        folded.c.consent_ip,
        folded.c.source,
        outcome,
    ).select_from(folded.outerjoin(existing, existing.c.email_key == folded.c.email_key))
    connection.execute(merged.insert().from_select([c.name for c in merged.columns], query))


def _upsert_customers(connection: Connection, now: datetime) -> None:
    customers = CUSTOMERS
    dialect = connection.dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stamp = bindparam("now", now, type_=UTCDateTime())
    query = (
        select(
            merged.c.email,
            merged.c.email_key,
            merged.c.email_hash,
            merged.c.first_name,
            merged.c.last_name,
            merged.c.phone,
            _json(connection, func.coalesce(merged.c.attributes, "{}")),
            literal(CustomerStatus.SUBSCRIBED.value),
            func.coalesce(merged.c.consent_at, stamp),
            merged.c.source,
            merged.c.consent_ip,
            stamp,
            stamp,
        )
        .where(merged.c.outcome.in_(_WRITTEN))
        .order_by(merged.c.email_key)
    )
    statement = insert_fn(customers).from_select(
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
    new = statement.excluded
    current = customers.c
    earlier = or_(current.consent_at.is_(None), new.consent_at < current.consent_at)
    if dialect == "postgresql":
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
    )
    connection.execute(statement)


def _event_detail(now: datetime) -> ColumnElement[Any]:
    return bindparam("detail", {"imported_at": now.isoformat()}, type_=JSONType)


def _record_opt_ins(connection: Connection, now: datetime) -> None:
    customers = CUSTOMERS
    query = (
        select(
            customers.c.id,
            merged.c.email_hash,
            literal(ConsentKind.IMPORT.value),
            customers.c.consent_at,
            merged.c.source,
            merged.c.consent_ip,
            _event_detail(now),
        )
        .select_from(merged.join(customers, customers.c.email_key == merged.c.email_key))
        .where(merged.c.outcome == CREATE)
    )
    connection.execute(
        CONSENT_EVENTS.insert().from_select(
            ["customer_id", "email_hash", "kind", "at", "source", "ip", "detail"], query
        )
    )


def _link_tags(connection: Connection, extra_tags: list[str], now: datetime) -> None:
    customers = CUSTOMERS
    tags = TAGS
    dialect = connection.dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    written = merged.c.outcome.in_(_WRITTEN)
    file_tags = (
        select(func.min(stage_tags.c.tag_name), stage_tags.c.tag_key, literal(now, UTCDateTime()))
        .select_from(stage_tags.join(merged, merged.c.email_key == stage_tags.c.email_key))
        .where(written)
        .group_by(stage_tags.c.tag_key)
    )
    connection.execute(
        insert_fn(tags)
        .from_select(["name", "name_key", "created_at"], file_tags)
        .on_conflict_do_nothing(index_elements=[tags.c.name_key])
    )
    for name in extra_tags:
        connection.execute(
            insert_fn(tags)
            .values(name=name, name_key=tag_key(name), created_at=now)
            .on_conflict_do_nothing(index_elements=[tags.c.name_key])
        )
    links = (
        select(customers.c.id, tags.c.id)
        .select_from(
            stage_tags.join(merged, merged.c.email_key == stage_tags.c.email_key)
            .join(customers, customers.c.email_key == stage_tags.c.email_key)
            .join(tags, tags.c.name_key == stage_tags.c.tag_key)
        )
        .where(written)
        .distinct()
    )
    connection.execute(
        insert_fn(customer_tags)
        .from_select(["customer_id", "tag_id"], links)
        .on_conflict_do_nothing()
    )
    for name in extra_tags:
        tag_id = connection.scalar(select(tags.c.id).where(tags.c.name_key == tag_key(name)))
        everyone = (
            select(customers.c.id, literal(tag_id))
            .select_from(merged.join(customers, customers.c.email_key == merged.c.email_key))
            .where(written)
        )
        connection.execute(
            insert_fn(customer_tags)
            .from_select(["customer_id", "tag_id"], everyone)
            .on_conflict_do_nothing()
        )


def _apply_withdrawals(connection: Connection, now: datetime) -> int:
    """Suppress every withdrawn address; unsubscribe (bounce, complain) subscribed customers."""
    customers = CUSTOMERS
    dialect = connection.dialect.name
    insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
    withdrawn = merged.c.outcome == WITHDRAW
    reasons = [
        (c, c.withdrawal_reason) for c in (Consent.UNSUBSCRIBE, Consent.COMPLAINT, Consent.BOUNCE)
    ]
    reason = case(*[(merged.c.consent == int(c), r) for c, r in reasons])
    connection.execute(
        insert_fn(SUPPRESSIONS)
        .from_select(
            ["email_hash", "reason", "source", "created_at"],
            select(merged.c.email_hash, reason, merged.c.source, literal(now, UTCDateTime())).where(
                withdrawn
            ),
        )
        .on_conflict_do_nothing(index_elements=[SUPPRESSIONS.c.email_hash])
    )
    kind = case(*[(merged.c.consent == int(c), EVENT_FOR_REASON[r].value) for c, r in reasons if r])
    subscribed = customers.c.status == CustomerStatus.SUBSCRIBED.value
    events = (
        select(
            customers.c.id,
            merged.c.email_hash,
            kind,
            literal(now, UTCDateTime()),
            merged.c.source,
            _event_detail(now),
        )
        .select_from(merged.join(customers, customers.c.email_key == merged.c.email_key))
        .where(withdrawn, subscribed)
    )
    result = connection.execute(
        CONSENT_EVENTS.insert().from_select(
            ["customer_id", "email_hash", "kind", "at", "source", "detail"], events
        )
    )
    count = max(result.rowcount, 0)
    for consent, name in reasons:
        assert name is not None
        keys = select(merged.c.email_key).where(withdrawn, merged.c.consent == int(consent))
        connection.execute(
            update(customers)
            .where(subscribed, customers.c.email_key.in_(keys))
            .values(status=SUPPRESSION_STATUS[name].value, updated_at=now)
        )
    return count
