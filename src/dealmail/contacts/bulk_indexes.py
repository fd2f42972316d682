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
    in random order (customers.consent_at) are dropped for the fill and built again after, by
    one sort (an index filled in random order thrashes the page cache: 1M consent events,
    when their hash was indexed, took 5.4 s of CPU that way and 2.8 s with a rebuild). SQLite's
    DDL is transactional, so a rollback gives the indexes back untouched. Unique ones stay
    (the upsert needs them)."""
    bulk = connection.dialect.name == "sqlite" and adding >= BULK_INDEX_ROWS and adding > holding
    indexes = [i for i in table.indexes if i.name in _FILLED_OUT_OF_ORDER] if bulk else []
    for index in indexes:
        index.drop(connection)
    yield
    _create_indexes(connection, indexes)


# The indexes a fill reaches in random order. The others (customers.status,
# consent_events (customer_id, at)) take new rows at their end, which costs less than a
# rebuild; consent_events' hash index holds only events without a customer, which an import
# does not write.
_FILLED_OUT_OF_ORDER = frozenset({"ix_customers_consent_at"})


def _create_indexes(connection: Connection, indexes: list[Index]) -> None:
    for index in indexes:
        index.create(connection)
