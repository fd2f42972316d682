"""Prebuilt Core statements for the scanner's hot path, run on SQLite's own cursor.

SQLAlchemy's per-execute machinery (execution context, compiled-cache lookup, result proxy) cost
more than SQLite itself takes to run these short statements. So each statement is compiled once
per dialect from its Core construct, with the bind and result processors of its own column types,
and then run straight on the DBAPI cursor of the caller's connection, inside the caller's
transaction. On other databases the same statements go through SQLAlchemy as usual (their network
round trip dwarfs that overhead).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement compiled for one dialect: its SQL, its bind order and its processors."""

    __slots__ = ("binds", "results", "sql")

    def __init__(self, statement: Any, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError("statements run raw must get every value from the caller")
        if compiled.positiontup is None:
            raise ValueError("raw execution needs a positional paramstyle")
        self.sql: str = compiled.string
        self.binds: list[tuple[str, Any, Processor]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            default = None if bind.required else bind.value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self.binds.append((name, default, processor))
        self.results: list[tuple[int, Processor]] = [
            (index, processor)
            for index, column in enumerate(statement.exported_columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, default, processor in self.binds:
            value = values.get(name, default)
            out.append(value if processor is None or value is None else processor(value))
        return out

    def row(self, raw: Sequence[Any] | None) -> tuple[Any, ...] | None:
        if raw is None or not self.results:
            return None if raw is None else tuple(raw)
        row = list(raw)
        for index, processor in self.results:
            assert processor is not None
            row[index] = processor(row[index])
        return tuple(row)


class Prepared:
    """A Core statement built once; compiled lazily once per dialect."""

    def __init__(self, statement: Executable, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys else None
        self._by_dialect: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            found = self._by_dialect[dialect.name] = _Compiled(
                self.statement, dialect, self.column_keys
            )
        return found


class Runner:
    """Runs `Prepared` statements in a connection's current transaction.

    Errors from the raw cursor are raised as SQLAlchemy's own exception classes, so callers catch
    `IntegrityError` and the like the same on every database.
    """

    __slots__ = ("_cursor", "_dialect", "connection")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._dialect = connection.dialect
        self._cursor: Any = None
        if self._dialect.name == "sqlite":
            driver = connection.connection.driver_connection
            assert driver is not None
            self._cursor = driver.cursor()

    def _raw(self, prepared: Prepared, values: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = prepared.compiled(self._dialect)
        parameters = compiled.parameters(values)
        try:
            return compiled, self._cursor.execute(compiled.sql, parameters)
        except self._dialect.loaded_dbapi.Error as error:
            raise exc.DBAPIError.instance(
                compiled.sql,
                parameters,
                error,
                self._dialect.loaded_dbapi.Error,
                dialect=self._dialect,
            ) from error

    def first(self, prepared: Prepared, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row (processed by its column types), or None."""
        if self._cursor is None:
            row = self.connection.execute(prepared.statement, dict(values)).first()
            return None if row is None else tuple(row)
        compiled, cursor = self._raw(prepared, values)
        # Stepped to the end, so no statement is left open when the transaction commits.
        rows = cursor.fetchall()
        return compiled.row(rows[0] if rows else None)

    def rowcount(self, prepared: Prepared, values: Mapping[str, Any]) -> int:
        """Run a DML statement; how many rows it matched."""
        if self._cursor is None:
            result = self.connection.execute(prepared.statement, dict(values))
            count: int = result.rowcount
            return count
        _compiled, cursor = self._raw(prepared, values)
        rows: int = cursor.rowcount
        return rows

    def scalar(self, prepared: Prepared, values: Mapping[str, Any]) -> Any:
        """The first column of the one row returned (e.g. an INSERT ... RETURNING id)."""
        row = self.first(prepared, values)
        if row is None:
            raise exc.NoResultFound("no row was returned")
        return row[0]
