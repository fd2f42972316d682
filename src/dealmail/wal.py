"""SQLite WAL checkpoints from a background thread, so a request's commit does not pay for them.

SQLite checkpoints the write-ahead log on the connection whose commit takes it past
`wal_autocheckpoint` pages: that commit then copies the log into the database file, with two
fsyncs (measured: up to ~14 ms here, on the event loop, holding every queued request). A
connection that commits on the loop raises its own threshold, and this thread runs PASSIVE
checkpoints (which never wait on, or block, readers and writers) every 20 ms on its own
connection, with the GIL released while SQLite works. The log still restarts from its beginning
only when a writer finds it fully checkpointed, so under a sustained burst the raised threshold is
what bounds its size; the checkpoint that commit then runs has only the last 20 ms of pages left
to copy (every 50 ms left more: its slow commits took ~4.5 ms rather than ~3).

While nothing is written the thread backs off, doubling its wait up to 250 ms, so an idle shop's
Pi is woken 4 times a second rather than 50; the first wake that finds a new commit (SQLite's
`data_version`) brings it back to 20 ms. Even at the measured peak of 2,500 redemptions/s
(~30,000 log pages a second) a burst's first 250 ms stays well below the raised threshold, so no
commit pays for the slower start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Any

from sqlalchemy import Engine

from dealmail.db import detached_connection

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.02
IDLE_INTERVAL_S = 0.25
# Background work: when it competes for a core, the event loop serving requests comes first.
CHECKPOINT_NICE = 10


class WalCheckpointer:
    """A daemon thread running `PRAGMA wal_checkpoint(PASSIVE)` every `interval` seconds while
    the log grows, and less often (up to `idle_interval`) while it does not."""

    def __init__(
        self,
        engine: Engine,
        interval: float = CHECKPOINT_INTERVAL_S,
        idle_interval: float = IDLE_INTERVAL_S,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.idle_interval = max(interval, idle_interval)
        self.wait = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WalCheckpointer:
        driver = detached_connection(self.engine)
        self._thread = threading.Thread(
            target=self._run, args=(driver,), name="dealmail-wal-checkpoint", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, driver: Any) -> None:
        if sys.platform == "linux":  # there a thread has its own nice value, by its thread id
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHECKPOINT_NICE)
        last_version: int | None = None
        try:
            while not self._stopping.wait(self.wait):
                try:
                    # Changes whenever another connection has committed since this one last asked.
                    (version,) = driver.execute("PRAGMA data_version").fetchone()
                    busy, logged, copied = checkpoint(driver)
                except Exception:  # a failed checkpoint loses nothing; the next one retries
                    log.warning("WAL checkpoint failed", exc_info=True)
                    self.wait = self.interval
                    continue
                if version == last_version and busy == 0 and copied == logged:
                    self.wait = min(self.wait * 2, self.idle_interval)
                else:
                    self.wait = self.interval
                last_version = version
        finally:
            driver.close()


def checkpoint(driver: Any) -> tuple[int, int, int]:
    """One PASSIVE checkpoint on a DBAPI connection: (busy, pages in the log, pages copied)."""
    busy, logged, copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return busy, logged, copied
