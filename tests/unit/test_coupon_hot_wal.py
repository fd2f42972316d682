"""The hot path's SQLite connection leaves WAL checkpoints to its background checkpointer."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, text

from dealmail.coupons.prepared import HotConnection
from dealmail.db import make_engine
from dealmail.wal import WalCheckpointer, checkpoint


def test_hot_connection_commits_without_checkpointing_and_its_thread_copies_the_log(
    tmp_path: Path,
) -> None:
    engine = _engine_with_table(tmp_path)
    hot = HotConnection(engine, checkpoint_interval=3600)  # its thread stays out of the way
    try:
        with hot.transaction() as runner:
            runner.commit()  # opens the connection and its checkpointer
        driver = hot._driver
        assert driver.execute("PRAGMA wal_autocheckpoint").fetchone() == (40_000,)
        assert hot._checkpointer is not None
        assert hot._checkpointer.running

        # Far past SQLite's default threshold of 1000 pages: no commit checkpointed it.
        for _ in range(60):
            with hot.transaction():
                driver.executemany(
                    "INSERT INTO t (body) VALUES (?)", [("x" * 3000,) for _ in range(40)]
                )
                driver.commit()
        busy, logged, copied = _checkpoint(engine)
        assert busy == 0
        assert logged > 1000
        assert copied == logged
        assert (tmp_path / "hot.db").stat().st_size > 60 * 40 * 3000
    finally:
        checkpointer = hot._checkpointer
        hot.close()
        engine.dispose()
    assert checkpointer is not None
    assert not checkpointer.running
    assert hot._checkpointer is None


def test_checkpointer_restarts_with_the_connection_after_a_close(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hot.db'}")
    hot = HotConnection(engine, checkpoint_interval=3600)
    try:
        with hot.transaction() as runner:
            runner.commit()
        first = hot._checkpointer
        hot.close()
        with hot.transaction() as runner:
            runner.commit()
        assert first is not None
        assert not first.running
        assert hot._checkpointer is not None
        assert hot._checkpointer is not first
        assert hot._checkpointer.running
    finally:
        hot.close()
        engine.dispose()


def test_checkpointer_backs_off_while_idle_and_returns_to_its_interval_on_writes(
    tmp_path: Path,
) -> None:
    engine = _engine_with_table(tmp_path)
    checkpointer = WalCheckpointer(engine, interval=0.005, idle_interval=0.04).start()
    try:
        assert _eventually(lambda: checkpointer.wait == 0.04), checkpointer.wait

        def write() -> bool:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t (body) VALUES ('x')"))
            return checkpointer.wait == 0.005

        assert _eventually(write), checkpointer.wait
        assert _eventually(lambda: checkpointer.wait == 0.04), checkpointer.wait
        busy, logged, copied = _checkpoint(engine)
        assert (busy, copied) == (0, logged)
    finally:
        checkpointer.stop()
        engine.dispose()
    assert not checkpointer.running


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.001)
    return False


def _engine_with_table(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'hot.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    return engine


def _checkpoint(engine: Engine) -> tuple[int, int, int]:
    """A checkpoint from another connection: (busy, pages in the log, pages copied)."""
    reader = engine.raw_connection()
    try:
        return checkpoint(reader.driver_connection)
    finally:
        reader.close()
