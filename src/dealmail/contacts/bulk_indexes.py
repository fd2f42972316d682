"""SQLite bulk fills: a table's randomly filled indexes dropped for the fill, rebuilt after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Index, Table

# SQLite: a bulk fill of at least this many rows, more than the table holds, rebuilds the
# table's randomly filled indexes instead of inserting into them (see indexes_rebuilt_if_bulk).
BULK_INDEX_ROWS = 20_000


@contextmanager
def indexes_rebuilt_if_bulk(
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
