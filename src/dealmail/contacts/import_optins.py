"""SQLite's all-opt-in import merge: staged rows straight into customers, no fold in between."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, exists, func, select

# import_writes' steps are called through the module: a test or the bench wrapping one
# reaches both merges.
from dealmail.contacts import import_writes
from dealmail.contacts.bulk_indexes import indexes_rebuilt_if_bulk
from dealmail.contacts.import_report import ImportReport
from dealmail.contacts.import_staging import blocked, stage, staged_source
from dealmail.contacts.import_writes import (
    CUSTOMERS,
    SUPPRESSIONS,
    AppliedOptIns,
    UpsertRows,
    max_id,
    opt_in_forbidden,
)


def merge_opt_ins(
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
    before = max_id(connection, CUSTOMERS)
    _note_blocked(connection, report, before)
    valid = report.rows - report.invalid
    # How many rows are new is known only after; the valid rows bound it.
    with indexes_rebuilt_if_bulk(connection, CUSTOMERS, valid, before):
        import_writes.upsert_customers(connection, now, _staged_opt_ins(sources))
    report.created = int(
        connection.scalar(select(func.count()).where(CUSTOMERS.c.id > before)) or 0
    )
    report.merged_duplicates = valid - report.created - report.updated - report.skipped_suppressed
    import_writes.record_opt_ins(connection, before, now)
    not_blocked = ~exists(
        select(blocked.c.email_key).where(blocked.c.email_key == CUSTOMERS.c.email_key)
    )
    import_writes.link_tags(
        connection, extra_tags, now, AppliedOptIns(stage, CUSTOMERS, not_blocked)
    )


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
    forbidden = opt_in_forbidden(addresses.c.email_key, addresses.c.email_hash)
    connection.execute(
        blocked.insert().from_select(["email_key"], select(addresses.c.email_key).where(forbidden))
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


def _staged_opt_ins(sources: list[str]) -> UpsertRows:
    suppressed = exists(
        select(SUPPRESSIONS.c.id).where(SUPPRESSIONS.c.email_hash == stage.c.email_hash)
    )
    return UpsertRows(stage, staged_source(sources), ~suppressed, (stage.c.email_key, stage.c.ord))
