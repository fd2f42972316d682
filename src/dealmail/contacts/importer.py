"""CSV import: stream rows into a staging table, then merge them into customers set-based.

One transaction: every file is read and validated (a big one by a second process, see
pipeline.py) into an unindexed TEMP table; duplicates are folded by key in SQL (SQLite: one
ordered upsert into a key-ordered table; PostgreSQL: round by round), and one
`INSERT … SELECT … ORDER BY email_key ON CONFLICT DO UPDATE` merges them into customers (names
and phone filled where empty, attributes united, earliest consent kept). That merge never
writes the status column, so an import cannot re-subscribe anyone; addresses on the suppression
list or whose customer is not subscribed are skipped. Rows whose export withdraws consent
(unsubscribed, cleaned) suppress the address and change the customer as consent.py does.
On SQLite, when every row of every file opts in (no consent column), there is no consent to
fold: the staged rows go into customers by that same upsert in (email_key, file order), which
folds repeats as the fold would (_merge_opt_ins).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    Connection,
    Index,
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
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from dealmail.contacts.columns import Consent
from dealmail.contacts.consent import apply_withdrawals_in_bulk
from dealmail.contacts.csvread import FileFormat, detect_format
from dealmail.contacts.identity import tag_key
from dealmail.contacts.pipeline import can_fork, chunks_from_worker
from dealmail.contacts.rows import (
    IP_MAX,
    NAME_MAX,
    PHONE_MAX,
    SOURCE_MAX,
    TagRow,
    every_row_opts_in,
    staged_rows,
)
from dealmail.errors import InvalidInput
from dealmail.models import (
    ConsentKind,
    CustomerStatus,
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
# Files this big are parsed by a second process while this one writes (process start ~0.5 s).
PARALLEL_MIN_BYTES = 8 * 1024 * 1024
INVALID_ROWS_KEPT = 1_000
# SQLite: a bulk fill of at least this many rows, more than the table holds, rebuilds the
# table's randomly filled indexes instead of inserting into them (see _indexes_rebuilt_if_bulk).
BULK_INDEX_ROWS = 20_000

_staging_metadata = MetaData()
stage = Table(
    "dealmail_import_stage",
    _staging_metadata,
    Column("ord", Integer),
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
    Column("file_no", Integer),
    Column("repeat", Integer),  # PostgreSQL only: 1 for an address's first row, 2 for the next…
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
    Column("email_key", String(320), primary_key=True),
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
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,
)
# SQLite, all-opt-in imports: addresses whose opt-in may not be applied (suppressed, or their
# customer not subscribed), filled only when the database holds customers or suppressions.
blocked = Table(
    "dealmail_import_blocked",
    _staging_metadata,
    Column("email_key", String(320), primary_key=True),
    prefixes=["TEMPORARY"],
    sqlite_with_rowid=False,
)
_STAGING_TABLES = (stage, stage_tags, merged, blocked)
# Built once the tags are staged (an index filled row by row would cost more); constant DDL.
_STAGE_TAGS_BY_KEY = text(
    "CREATE INDEX dealmail_import_stage_tags_key ON dealmail_import_stage_tags (email_key, tag_key)"
)

# merged.consent after folding: Consent values, or BLOCKED for an opt-in we may not apply
# (address suppressed, or its customer unsubscribed / bounced / complained).
BLOCKED = -1


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
    if not formats:
        raise InvalidInput("no files to import", code="no_files")
    connection = session.connection()
    roomy = _RoomyCache(connection)
    try:
        _create_staging(connection)
        done = 0
        for file_no, fmt in enumerate(formats):
            offset = done
            tick = None if progress is None else (lambda pos, o=offset: progress(o + pos))
            _stage_file(connection, fmt, file_no, report, now, tick)
            done += fmt.path.stat().st_size
        sources = [f"import:{fmt.path.name}"[:SOURCE_MAX] for fmt in formats]
        if connection.dialect.name == "sqlite" and all(map(every_row_opts_in, formats)):
            _merge_opt_ins(connection, report, extra_tags, now, sources)
        else:
            _merge(connection, report, extra_tags, now, sources)
        _drop_staging(connection)
    except BaseException:
        roomy.restore()
        session.rollback()
        raise
    roomy.restore()
    if dry_run:
        session.rollback()
    else:
        session.commit()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class _RoomyCache:
    """SQLite only, for the import's duration: a bigger page cache (with the default 2 MB,
    index inserts in random order, like consent_events.email_hash, thrash) and one sorter
    helper thread (the import's sorts, the key-ordered upsert and the index rebuilds, then use
    the core the reading process has left: 1M rows, 3.1 + 2.1 s -> 2.4 + 1.5 s). The
    connection's settings are put back after. The sorter's buffers follow the main cache size,
    so it stays moderate: 1M rows peak at ~170 MB in this process."""

    MIB: ClassVar[dict[str, int]] = {"main": 24, "temp": 16}
    SORTER_THREADS = 1

    def __init__(self, connection: Connection) -> None:
        self.raw = None
        if connection.dialect.name != "sqlite":
            return
        self.raw = connection.connection.dbapi_connection
        assert self.raw is not None
        self.saved = {
            schema: self.raw.execute(f"PRAGMA {schema}.cache_size").fetchone()[0]
            for schema in ("main", "temp")
        }
        self.threads = int(self.raw.execute("PRAGMA threads").fetchone()[0])
        for schema in self.saved:
            self.raw.execute(f"PRAGMA {schema}.cache_size = -{self.MIB[schema] * 1024}")
        self.raw.execute(f"PRAGMA threads = {self.SORTER_THREADS}")

    def restore(self) -> None:
        if self.raw is not None:
            for schema, size in self.saved.items():
                self.raw.execute(f"PRAGMA {schema}.cache_size = {int(size)}")
            self.raw.execute(f"PRAGMA threads = {self.threads}")


def _create_staging(connection: Connection) -> None:
    for table in _STAGING_TABLES:
        table.drop(connection, checkfirst=True)
        table.create(connection)


def _drop_staging(connection: Connection) -> None:
    for table in reversed(_STAGING_TABLES):
        table.drop(connection)


class _BulkWriter:
    """Appends rows to a staging table in chunks, the fastest way each driver offers: the
    DB-API's executemany with tuples on SQLite (SQLAlchemy's per-row parameter processing
    would double the import time), COPY on PostgreSQL (psycopg), Core executemany otherwise."""

    def __init__(self, connection: Connection, table: Table) -> None:
        self.connection = connection
        self.table = table
        self.names = [c.name for c in table.columns if c.name != "repeat"]
        self.dialect = connection.dialect.name
        compiled = table.insert().compile(dialect=connection.dialect, column_keys=self.names)
        self.sql = str(compiled)
        self.positions = compiled.positiontup or []
        # Names from our own Table definition, never from input.
        self.copy_sql = f"COPY {table.name} ({', '.join(self.names)}) FROM STDIN"
        self.pending: list[tuple[Any, ...]] = []

    def add_all(self, rows: Iterable[tuple[Any, ...]]) -> None:
        pending = self.pending
        if not pending and isinstance(rows, list) and len(rows) >= CHUNK_ROWS:
            self._write(rows)  # a whole chunk already (from the reading process): as it is
            return
        for row in rows:
            pending.append(row)
            if len(pending) >= CHUNK_ROWS:
                self.flush()

    def flush(self) -> None:
        if self.pending:
            self._write(self.pending)
            self.pending.clear()

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        if self.dialect == "sqlite":
            assert self.positions == self.names
            self.connection.exec_driver_sql(self.sql, rows)
        elif self.dialect == "postgresql" and self.connection.dialect.driver == "psycopg":
            raw: Any = self.connection.connection.dbapi_connection
            with raw.cursor() as cursor, cursor.copy(self.copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            names = self.names
            self.connection.execute(
                self.table.insert(), [dict(zip(names, r, strict=True)) for r in rows]
            )


def _stage_file(
    connection: Connection,
    fmt: FileFormat,
    file_no: int,
    report: ImportReport,
    now: datetime,
    progress: Progress | None,
) -> None:
    rows = _BulkWriter(connection, stage)
    tags = _BulkWriter(connection, stage_tags)
    valid = 0
    invalid_before = report.invalid
    naive_times = connection.dialect.name == "sqlite"
    if fmt.path.stat().st_size >= PARALLEL_MIN_BYTES and can_fork():
        for chunk in chunks_from_worker(
            fmt,
            now,
            first_seq=report.rows,
            file_no=file_no,
            naive_times=naive_times,
            progress=progress,
        ):
            for file, line, reason in chunk.invalid:
                report.add_invalid(file, line, reason)
            valid += len(chunk.rows)
            rows.add_all(chunk.rows)
            tags.add_all(chunk.tags)
    else:
        found_tags: list[TagRow] = []
        for row in staged_rows(
            fmt,
            now,
            first_seq=report.rows,
            file_no=file_no,
            naive_times=naive_times,
            invalid=report.add_invalid,
            tags_out=found_tags,
            on_bytes=progress,
        ):
            valid += 1
            rows.pending.append(row)
            if len(rows.pending) >= CHUNK_ROWS:
                rows.flush()
                tags.add_all(found_tags)
                found_tags.clear()
        tags.add_all(found_tags)
    rows.flush()
    tags.flush()
    report.rows += valid + report.invalid - invalid_before


def _insert(connection: Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def _merge(
    connection: Connection,
    report: ImportReport,
    extra_tags: list[str],
    now: datetime,
    sources: list[str],
) -> None:
    staged = _staged_columns(sources)
    if connection.dialect.name == "sqlite":
        _fold_by_upsert(connection, staged)
    else:
        _fold_by_rounds(connection, staged)
    _block_forbidden_opt_ins(connection)
    _count_outcomes(connection, report)
    before = _max_id(connection, CUSTOMERS)
    with _indexes_rebuilt_if_bulk(connection, CUSTOMERS, report.created, before):
        _upsert_customers(connection, now, _folded_opt_ins())
    with _indexes_rebuilt_if_bulk(
        connection, CONSENT_EVENTS, report.created, _max_id(connection, CONSENT_EVENTS)
    ):
        _record_opt_ins(connection, before, now)
    _link_tags(connection, extra_tags, now, _OptIns(merged, merged, merged.c.consent == OPT_IN))
    report.withdrawn = _apply_withdrawals(connection, now)


def _merge_opt_ins(
    connection: Connection,
    report: ImportReport,
    extra_tags: list[str],
    now: datetime,
    sources: list[str],
) -> None:
    """SQLite, when every row of every file opts in: no consent to fold, so the staged rows go
    into customers in (email_key, file order) without a `merged` table in between. A repeat of
    an address merges into the customer its first row made as the fold would merge it (the
    upsert's rules are the fold's for opt-ins: empty fields filled, attributes united with the
    earlier value winning, earliest consent kept)."""
    before = _max_id(connection, CUSTOMERS)
    _note_blocked(connection, report, before)
    valid = report.rows - report.invalid
    # How many rows are new is known only after; the valid rows bound it.
    with _indexes_rebuilt_if_bulk(connection, CUSTOMERS, valid, before):
        _upsert_customers(connection, now, _staged_opt_ins(sources))
    report.created = int(
        connection.scalar(select(func.count()).where(CUSTOMERS.c.id > before)) or 0
    )
    report.merged_duplicates = valid - report.created - report.updated - report.skipped_suppressed
    with _indexes_rebuilt_if_bulk(
        connection, CONSENT_EVENTS, report.created, _max_id(connection, CONSENT_EVENTS)
    ):
        _record_opt_ins(connection, before, now)
    not_blocked = ~exists(
        select(blocked.c.email_key).where(blocked.c.email_key == CUSTOMERS.c.email_key)
    )
    _link_tags(connection, extra_tags, now, _OptIns(stage, CUSTOMERS, not_blocked))


def _note_blocked(connection: Connection, report: ImportReport, before: int) -> None:
    """Addresses of the files whose opt-in may not be applied (suppressed, or their customer
    not subscribed) into `blocked`; counts them and the customers the import will update.
    With no customer and no suppression yet there is nothing to look up."""
    if before == 0 and connection.scalar(select(SUPPRESSIONS.c.id).limit(1)) is None:
        return
    addresses = (
        select(stage.c.email_key, func.min(stage.c.email_hash).label("email_hash"))
        .group_by(stage.c.email_key)
        .subquery()
    )
    suppressed = exists(
        select(SUPPRESSIONS.c.id).where(SUPPRESSIONS.c.email_hash == addresses.c.email_hash)
    )
    not_subscribed = exists(
        select(CUSTOMERS.c.id).where(
            CUSTOMERS.c.email_key == addresses.c.email_key,
            CUSTOMERS.c.status != CustomerStatus.SUBSCRIBED.value,
        )
    )
    connection.execute(
        blocked.insert().from_select(
            ["email_key"], select(addresses.c.email_key).where(or_(suppressed, not_subscribed))
        )
    )
    report.skipped_suppressed = int(
        connection.scalar(select(func.count()).select_from(blocked)) or 0
    )
    known = select(func.count(func.distinct(stage.c.email_key))).select_from(
        stage.join(CUSTOMERS, CUSTOMERS.c.email_key == stage.c.email_key)
    )
    report.updated = int(connection.scalar(known) or 0) - int(
        connection.scalar(
            select(func.count()).select_from(
                blocked.join(CUSTOMERS, CUSTOMERS.c.email_key == blocked.c.email_key)
            )
        )
        or 0
    )


def _max_id(connection: Connection, table: Table) -> int:
    return int(connection.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0)


@contextmanager
def _indexes_rebuilt_if_bulk(
    connection: Connection, table: Table, adding: int, holding: int
) -> Iterator[None]:
    """SQLite, when many more rows are added than the table holds: the indexes the rows reach
    in random order (consent_events.email_hash, customers.consent_at) are dropped for the fill
    and built again after, by one sort: 1M consent events cost 5.4 s of CPU with them, 2.8 s
    with the rebuild. SQLite's DDL is transactional, so a rollback gives the indexes back
    untouched. Unique ones stay (the upsert needs them)."""
    bulk = connection.dialect.name == "sqlite" and adding >= BULK_INDEX_ROWS and adding > holding
    indexes = [i for i in table.indexes if i.name in _FILLED_OUT_OF_ORDER] if bulk else []
    for index in indexes:
        index.drop(connection)
    yield
    _create_indexes(connection, indexes)


# The indexes a fill reaches in random order. The others (customers.status,
# consent_events (customer_id, at)) take new rows at their end, which costs less than a rebuild.
_FILLED_OUT_OF_ORDER = frozenset({"ix_customers_consent_at", "ix_consent_events_email_hash"})


def _create_indexes(connection: Connection, indexes: list[Index]) -> None:
    for index in indexes:
        index.create(connection)


_FOLDED = [c.name for c in merged.columns]


def _source_of(sources: list[str]) -> ColumnElement[Any]:
    """A staged row's consent source: `import:<file name>` by file number."""
    return case(
        *[(stage.c.file_no == i, literal(name)) for i, name in enumerate(sources)],
        else_=literal(sources[0]),
    )


def _staged_columns(sources: list[str]) -> list[Any]:
    """Stage columns in `merged` order."""
    source = _source_of(sources)
    return [source.label("source") if n == "source" else stage.c[n] for n in _FOLDED]


def _earlier(new: Any, current: Any) -> ColumnElement[bool]:
    return or_(current.consent_at.is_(None), new.consent_at < current.consent_at)


def _fold_statement(connection: Connection, rows: Any) -> Any:
    """INSERT rows INTO merged; a repeat of an address merges into what is there: empty
    fields filled, attributes united (first value wins), strongest consent word, earliest
    opt-in with its source and IP."""
    postgres = connection.dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    statement = insert(merged).from_select(_FOLDED, rows)
    new, current = statement.excluded, merged.c
    earlier = _earlier(new, current)
    if postgres:
        united: ColumnElement[Any] = cast(
            cast(new.attributes, JSONB).op("||")(cast(current.attributes, JSONB)), Text
        )
        strongest = func.greatest(current.consent, new.consent)
    else:
        united = func.json_patch(new.attributes, current.attributes)
        strongest = func.max(current.consent, new.consent)
    return statement.on_conflict_do_update(
        index_elements=[current.email_key],
        set_={
            "first_name": func.coalesce(current.first_name, new.first_name),
            "last_name": func.coalesce(current.last_name, new.last_name),
            "phone": func.coalesce(current.phone, new.phone),
            "attributes": case(
                (current.attributes.is_(None), new.attributes),
                (new.attributes.is_(None), current.attributes),
                else_=united,
            ),
            "consent": strongest,
            "consent_at": case((earlier, new.consent_at), else_=current.consent_at),
            "consent_ip": case((earlier, new.consent_ip), else_=current.consent_ip),
            "source": case((earlier, new.source), else_=current.source),
        },
    )


def _fold_by_upsert(connection: Connection, staged: list[Any]) -> None:
    """SQLite: rows in key order into a key-ordered table; a repeat merges into the first
    (SQLite applies ON CONFLICT row by row, so this folds duplicates in one sorted pass)."""
    rows = (
        select(*staged)
        # The WHERE resolves SQLite's INSERT … SELECT … ON CONFLICT parsing ambiguity.
        .where(stage.c.email_key.is_not(None))
        .order_by(stage.c.email_key, stage.c.ord)
    )
    connection.execute(_fold_statement(connection, rows))


def _fold_by_rounds(connection: Connection, staged: list[Any]) -> None:
    """PostgreSQL, where one statement may not upsert a row twice: number each address's
    rows in file order, then fold round by round (first rows, then second rows…)."""
    numbered = select(
        stage.c.ord,
        func.row_number().over(partition_by=stage.c.email_key, order_by=stage.c.ord).label("n"),
    ).subquery()
    connection.execute(
        update(stage).where(stage.c.ord == numbered.c.ord).values(repeat=numbered.c.n)
    )
    rounds = connection.scalar(select(func.max(stage.c.repeat))) or 0
    for number in range(1, rounds + 1):
        rows = select(*staged).where(stage.c.repeat == number)
        connection.execute(_fold_statement(connection, rows))


def _block_forbidden_opt_ins(connection: Connection) -> None:
    """Opt-ins for suppressed addresses or customers who are not subscribed are never applied."""
    suppressed = exists(
        select(SUPPRESSIONS.c.id).where(SUPPRESSIONS.c.email_hash == merged.c.email_hash)
    )
    not_subscribed = exists(
        select(CUSTOMERS.c.id).where(
            CUSTOMERS.c.email_key == merged.c.email_key,
            CUSTOMERS.c.status != CustomerStatus.SUBSCRIBED.value,
        )
    )
    connection.execute(
        update(merged)
        .where(merged.c.consent == int(Consent.OPT_IN), or_(suppressed, not_subscribed))
        .values(consent=BLOCKED)
    )


def _count_outcomes(connection: Connection, report: ImportReport) -> None:
    consent = merged.c.consent
    opt_in = consent == int(Consent.OPT_IN)

    def tally(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = connection.execute(
        select(
            func.count(),
            tally(and_(opt_in, CUSTOMERS.c.id.is_(None))),
            tally(and_(opt_in, CUSTOMERS.c.id.is_not(None))),
            tally(consent == int(Consent.NONE)),
            tally(consent >= int(Consent.BOUNCE)),
            tally(consent == BLOCKED),
        ).select_from(merged.outerjoin(CUSTOMERS, CUSTOMERS.c.email_key == merged.c.email_key))
    ).one()
    addresses, report.created, report.updated, no_consent, withdrawals, blocked = map(int, row)
    report.skipped_consent = no_consent + withdrawals
    report.skipped_suppressed = blocked
    report.merged_duplicates = report.rows - report.invalid - addresses


def _json(connection: Connection, value: ColumnElement[Any]) -> ColumnElement[Any]:
    if connection.dialect.name == "postgresql":
        return cast(value, JSONB)
    return value


OPT_IN = int(Consent.OPT_IN)


@dataclass(frozen=True)
class _Rows:
    """Where the upsert's rows come from: a table, the source column, which rows, what order."""

    table: Table
    source: ColumnElement[Any]
    where: ColumnElement[bool]
    order: tuple[ColumnElement[Any], ...]


def _folded_opt_ins() -> _Rows:
    return _Rows(merged, merged.c.source, merged.c.consent == OPT_IN, (merged.c.email_key,))


def _staged_opt_ins(sources: list[str]) -> _Rows:
    suppressed = exists(
        select(SUPPRESSIONS.c.id).where(SUPPRESSIONS.c.email_hash == stage.c.email_hash)
    )
    return _Rows(stage, _source_of(sources), ~suppressed, (stage.c.email_key, stage.c.ord))


def _upsert_customers(connection: Connection, now: datetime, rows: _Rows) -> None:
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
    earlier = _earlier(new, current)
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


def _record_opt_ins(connection: Connection, before: int, now: datetime) -> None:
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
class _OptIns:
    """The import's addresses (`keys`, a table with email_key) and which of them were applied
    as opt-ins: `condition` on `table` (`merged`, or customers), joined by email_key."""

    keys: Table
    table: Table
    condition: ColumnElement[bool]


def _joined(base: Any, key: Any, opt_ins: _OptIns) -> Any:
    """base ⋈ the applied opt-ins ⋈ customers, by email_key."""
    if opt_ins.table is not CUSTOMERS and opt_ins.table is not base:
        base = base.join(opt_ins.table, opt_ins.table.c.email_key == key)
    return base.join(CUSTOMERS, CUSTOMERS.c.email_key == key)


def _link_tags(
    connection: Connection, extra_tags: list[str], now: datetime, opt_ins: _OptIns
) -> None:
    insert = _insert(connection)
    has_file_tags = connection.scalar(select(stage_tags.c.tag_key).limit(1)) is not None
    if has_file_tags:
        # Walked in key order, the lookups below go through merged and customers in their
        # own order instead of jumping about (1M rows, 190k tags: 3.4 s -> 1.2 s of CPU).
        connection.execute(_STAGE_TAGS_BY_KEY)
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


_WITHDRAWALS = [
    (c, c.withdrawal_reason or "") for c in (Consent.UNSUBSCRIBE, Consent.COMPLAINT, Consent.BOUNCE)
]


def _apply_withdrawals(connection: Connection, now: datetime) -> int:
    """Every address the files withdraw is suppressed; customers change as one by one
    (consent.apply_withdrawals_in_bulk)."""
    withdrawn = merged.c.consent >= int(Consent.BOUNCE)
    if connection.scalar(select(merged.c.email_key).where(withdrawn).limit(1)) is None:
        return 0
    reason = case(*[(merged.c.consent == int(c), r) for c, r in _WITHDRAWALS])
    withdrawals = select(
        merged.c.email_key, merged.c.email_hash, reason.label("reason"), merged.c.source
    ).where(withdrawn)
    return apply_withdrawals_in_bulk(
        connection, withdrawals, now=now, detail={"imported_at": now.isoformat()}
    )
