"""The general import merge: staged rows folded by address, then opt-ins and withdrawals applied."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    and_,
    case,
    cast,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

# import_writes' steps are called through the module: a test or the bench wrapping one
# reaches both merges.
from dealmail.contacts import import_writes
from dealmail.contacts.bulk_indexes import indexes_rebuilt_if_bulk
from dealmail.contacts.columns import Consent
from dealmail.contacts.consent import apply_withdrawals_in_bulk
from dealmail.contacts.import_report import ImportReport
from dealmail.contacts.import_staging import merged, stage, staged_source
from dealmail.contacts.import_writes import (
    CUSTOMERS,
    OPT_IN,
    AppliedOptIns,
    UpsertRows,
    earlier_consent,
    max_id,
    opt_in_forbidden,
)

# merged.consent after folding: Consent values, or BLOCKED for an opt-in we may not apply
# (address suppressed, or its customer unsubscribed / bounced / complained).
BLOCKED = -1


def merge(
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
    before = max_id(connection, CUSTOMERS)
    with indexes_rebuilt_if_bulk(connection, CUSTOMERS, report.created, before):
        import_writes.upsert_customers(connection, now, _folded_opt_ins())
    import_writes.record_opt_ins(connection, before, now)
    import_writes.link_tags(
        connection, extra_tags, now, AppliedOptIns(merged, merged, merged.c.consent == OPT_IN)
    )
    report.withdrawn = _apply_withdrawals(connection, now)


_FOLDED = [c.name for c in merged.columns]


def _staged_columns(sources: list[str]) -> list[Any]:
    """Stage columns in `merged` order."""
    source = staged_source(sources)
    return [source.label("source") if n == "source" else stage.c[n] for n in _FOLDED]


def _fold_statement(connection: Connection, rows: Any) -> Any:
    """INSERT rows INTO merged; a repeat of an address merges into what is there: empty
    fields filled, attributes united (first value wins), strongest consent word, earliest
    opt-in with its source and IP."""
    postgres = connection.dialect.name == "postgresql"
    insert = postgresql.insert if postgres else sqlite.insert
    statement = insert(merged).from_select(_FOLDED, rows)
    new, current = statement.excluded, merged.c
    earlier = earlier_consent(new, current)
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
    connection.execute(
        update(merged)
        .where(
            merged.c.consent == int(Consent.OPT_IN),
            opt_in_forbidden(merged.c.email_key, merged.c.email_hash),
        )
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


def _folded_opt_ins() -> UpsertRows:
    return UpsertRows(merged, merged.c.source, merged.c.consent == OPT_IN, (merged.c.email_key,))


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
