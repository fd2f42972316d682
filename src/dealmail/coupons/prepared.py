"""Prebuilt Core statements for the scanner's hot path, run on SQLite's own cursor.

SQLAlchemy's per-execute machinery (execution context, compiled-cache lookup, result proxy) cost
more than SQLite itself takes to run these short statements. So each statement is compiled once
per dialect from its Core construct, with the bind and result processors of its own column types,
and then run straight on the DBAPI cursor of the caller's connection, inside the caller's
transaction. On other databases the same statements go through SQLAlchemy as usual (their network
round trip dwarfs that overhead).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from dealmail.db import detached_connection
from dealmail.wal import CHECKPOINT_INTERVAL_S, WalCheckpointer

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
    """Runs `Prepared` statements in one transaction, and commits or rolls it back.

    Made from a Session (`Runner.of(session)`: the session's transaction, any database) or, on
    SQLite's hot path, by `HotConnection.transaction()` (a DBAPI connection in BEGIN IMMEDIATE,
    without a Session, Connection or pool checkout around it). Errors from
    the raw cursor are raised as SQLAlchemy's own exception classes, so callers catch
    `IntegrityError` and the like the same on every database.
    """

    __slots__ = ("_driver", "_raw", "_session", "dialect")

    def __init__(self, dialect: Dialect, session: Session | None, driver: Any = None) -> None:
        self.dialect = dialect
        self._session = session
        self._driver = driver
        self._raw = dialect.name == "sqlite"

    @classmethod
    def of(cls, source: Session | Runner) -> Runner:
        if isinstance(source, Runner):
            return source
        return cls(source.get_bind().dialect, source)

    def commit(self) -> None:
        if self._session is not None:
            self._session.commit()
        else:
            self._driver.commit()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        else:
            self._driver.rollback()

    def _cursor(self) -> Any:
        if self._session is None:
            return self._driver.cursor()
        driver = self._session.connection().connection.driver_connection
        assert driver is not None
        return driver.cursor()

    def _run(self, prepared: Prepared, values: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = prepared.compiled(self.dialect)
        parameters = compiled.parameters(values)
        try:
            return compiled, self._cursor().execute(compiled.sql, parameters)
        except self.dialect.loaded_dbapi.Error as error:
            raise exc.DBAPIError.instance(
                compiled.sql,
                parameters,
                error,
                self.dialect.loaded_dbapi.Error,
                dialect=self.dialect,
            ) from error

    def first(self, prepared: Prepared, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row (processed by its column types), or None."""
        if not self._raw:
            assert self._session is not None
            row = self._session.connection().execute(prepared.statement, dict(values)).first()
            return None if row is None else tuple(row)
        compiled, cursor = self._run(prepared, values)
        # Stepped to the end, so no statement is left open when the transaction commits.
        rows = cursor.fetchall()
        return compiled.row(rows[0] if rows else None)

    def rowcount(self, prepared: Prepared, values: Mapping[str, Any]) -> int:
        """Run a DML statement; how many rows it matched."""
        if not self._raw:
            assert self._session is not None
            result = self._session.connection().execute(prepared.statement, dict(values))
            count: int = result.rowcount
            return count
        _compiled, cursor = self._run(prepared, values)
        rows: int = cursor.rowcount
        return rows

    def scalar(self, prepared: Prepared, values: Mapping[str, Any]) -> Any:
        """The first column of the one row returned (e.g. an INSERT ... RETURNING id)."""
        row = self.first(prepared, values)
        if row is None:
            raise exc.NoResultFound("no row was returned")
        return row[0]


class HotConnection:
    """One SQLite connection kept open for the event loop's hot path (validate, redeem).

    Those run inline on the loop, one at a time, so one connection serves them all, and the pool's
    checkout and reset-on-return (more work than the transaction's SQL) are skipped
    (`db.detached_connection`). A database error other than a constraint closes it; the next use
    reopens it.

    Its commits leave WAL checkpoints to a `WalCheckpointer` thread it runs while open: its own
    auto-checkpoint threshold is raised (`AUTOCHECKPOINT`) to what only a sustained burst of
    writes reaches (the log restarts only once fully checkpointed; see dealmail/wal.py).
    """

    # ~160 MB of log, ~3,300 redemptions' worth (a literal: PRAGMAs take no bound parameters).
    # Measured at 2,500 redemptions/s: at 10000 pages the commits that reached it (three a
    # second, ~4.5 ms each) were most of the hot path's slow transactions.
    AUTOCHECKPOINT = "PRAGMA wal_autocheckpoint=40000"

    def __init__(self, engine: Engine, checkpoint_interval: float = CHECKPOINT_INTERVAL_S) -> None:
        self.engine = engine
        self.checkpoint_interval = checkpoint_interval
        self._driver: Any = None
        self._checkpointer: WalCheckpointer | None = None

    def _open(self) -> Any:
        driver = detached_connection(self.engine)
        driver.execute(self.AUTOCHECKPOINT)
        self._driver = driver
        if self._checkpointer is None:
            self._checkpointer = WalCheckpointer(self.engine, self.checkpoint_interval).start()
        return driver

    def close(self) -> None:
        driver, self._driver = self._driver, None
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        if driver is not None:
            driver.close()

    @contextmanager
    def transaction(self) -> Iterator[Runner]:
        """BEGIN IMMEDIATE on the kept connection; rolled back unless the work committed."""
        driver = self._driver or self._open()
        driver.execute("BEGIN IMMEDIATE")
        try:
            yield Runner(self.engine.dialect, None, driver)
        except exc.DBAPIError as error:
            if not isinstance(error, exc.IntegrityError):
                self.close()
            raise
        finally:
            if self._driver is driver and driver.in_transaction:
                driver.rollback()
