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
folds repeats as the fold would.
The steps: import_staging (TEMP tables, staging a file), import_merge (the general fold and
merge), import_optins (the all-opt-in one), import_writes (what both write), bulk_indexes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from dealmail.contacts.csvread import FileFormat, detect_format
from dealmail.contacts.import_merge import merge
from dealmail.contacts.import_optins import merge_opt_ins
from dealmail.contacts.import_report import ImportReport, Progress
from dealmail.contacts.import_staging import create_staging, drop_staging, stage_file
from dealmail.contacts.rows import SOURCE_MAX, every_row_opts_in
from dealmail.errors import InvalidInput
from dealmail.models import utcnow

__all__ = ["ImportReport", "Progress", "import_contacts", "inspect_files"]


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
    staging_leaves_with_connection = _detach_from_pool(connection)
    roomy = _RoomyCache(connection)
    try:
        create_staging(connection)
        done = 0
        for file_no, fmt in enumerate(formats):
            offset = done
            tick = None if progress is None else (lambda pos, o=offset: progress(o + pos))
            stage_file(connection, fmt, file_no, report, now, tick)
            done += fmt.path.stat().st_size
        sources = [f"import:{fmt.path.name}"[:SOURCE_MAX] for fmt in formats]
        if connection.dialect.name == "sqlite" and all(map(every_row_opts_in, formats)):
            merge_opt_ins(connection, report, extra_tags, now, sources)
        else:
            merge(connection, report, extra_tags, now, sources)
        if not staging_leaves_with_connection:
            drop_staging(connection)
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


def _detach_from_pool(connection: Connection) -> bool:
    """Take the import's connection out of the pool, so it closes when the session ends the
    transaction and its TEMP staging tables go with it: dropping them would walk every page of
    a million staged rows again (~1 s). Not where the pool holds the only connection (an
    in-memory SQLite database lives in it); False there, and the tables are dropped."""
    if isinstance(connection.engine.pool, SingletonThreadPool | StaticPool):
        return False
    connection.detach()
    return True


class _RoomyCache:
    """SQLite only, for the import's duration: a bigger page cache (with the default 2 MB,
    index inserts in random order, like customers.consent_at, thrash) and one sorter helper
    thread (the import's sorts, the key-ordered upsert and the index rebuilds, then use the
    core the reading process has left: 1M rows, 3.1 + 2.1 s -> 2.4 + 1.5 s). The connection's
    settings are put back after (it may stay in use). The sorter's buffers follow the main
    cache size, so it stays moderate: 1M rows peak at ~170 MB in this process."""

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
