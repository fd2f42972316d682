"""An import's staging: its TEMP tables, the bulk writer that fills them, and staging one file."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    literal,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

from dealmail.contacts.csvread import FileFormat
from dealmail.contacts.import_report import ImportReport, Progress
from dealmail.contacts.pipeline import can_fork, chunks_from_worker
from dealmail.contacts.rows import IP_MAX, NAME_MAX, PHONE_MAX, TagRow, staged_rows
from dealmail.models import UTCDateTime

CHUNK_ROWS = 5_000
# Files this big are parsed by a second process while this one writes (process start ~0.5 s).
PARALLEL_MIN_BYTES = 8 * 1024 * 1024

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
STAGE_TAGS_BY_KEY = text(
    "CREATE INDEX dealmail_import_stage_tags_key ON dealmail_import_stage_tags (email_key, tag_key)"
)


def create_staging(connection: Connection) -> None:
    for table in _STAGING_TABLES:
        table.drop(connection, checkfirst=True)
        table.create(connection)


def drop_staging(connection: Connection) -> None:
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


def stage_file(
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


def staged_source(sources: list[str]) -> ColumnElement[Any]:
    """A staged row's consent source: `import:<file name>` by file number."""
    return case(
        *[(stage.c.file_no == i, literal(name)) for i, name in enumerate(sources)],
        else_=literal(sources[0]),
    )
