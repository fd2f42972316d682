"""A big file is parsed and validated in a second process while this one writes the staging
table: the two halves of an import's per-row work then run on two cores.

Only the staging rows cross the process boundary (pickled in chunks through a bounded queue,
so memory stays flat); the database is touched by the calling process alone.
"""

from __future__ import annotations

import gc
import marshal
import multiprocessing
import queue
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dealmail.contacts.csvread import FileFormat, UnreadableFile
from dealmail.contacts.rows import StagedRow, TagRow, staged_rows
from dealmail.errors import DomainError

CHUNK_ROWS = 5_000
QUEUE_CHUNKS = 4
_POLL_SECONDS = 1.0


@dataclass
class Chunk:
    rows: list[StagedRow]
    tags: list[TagRow]
    invalid: list[tuple[str, int, str]]
    position: int  # bytes of the file read so far


def _produce(
    fmt: FileFormat,
    now: datetime,
    first_seq: int,
    file_no: int,
    naive_times: bool,
    out: Any,
) -> None:
    """The worker process: staged rows in chunks, then None; a DomainError as a tuple."""
    # It makes a million short-lived tuples and no reference cycles: the cyclic collector
    # would only spend time (~3 % of this process's CPU) finding nothing.
    gc.disable()
    try:
        tags: list[TagRow] = []
        invalid: list[tuple[str, int, str]] = []
        rows: list[StagedRow] = []
        position = [0]

        def note_invalid(file: str, line: int, reason: str) -> None:
            invalid.append((file, line, reason))

        def note_position(pos: int) -> None:
            position[0] = pos

        def send(rows: list[StagedRow]) -> None:
            if naive_times:
                # Rows of str, int and None (times as text): marshal packs them in half the
                # time pickle takes, and unpacks them faster too.
                out.put(marshal.dumps((rows, tags, invalid, position[0])))
            else:
                out.put(Chunk(rows, list(tags), list(invalid), position[0]))

        for row in staged_rows(
            fmt,
            now,
            first_seq=first_seq,
            file_no=file_no,
            naive_times=naive_times,
            invalid=note_invalid,
            tags_out=tags,
            on_bytes=note_position,
        ):
            rows.append(row)
            if len(rows) >= CHUNK_ROWS:
                send(rows)
                rows = []
                tags.clear()
                invalid.clear()
        send(rows)
        out.put(None)
    except DomainError as exc:
        out.put(("error", exc.message, exc.code))
    except BaseException as exc:  # reported to the parent, which raises
        out.put(("crash", repr(exc), "import_worker_failed"))


def can_fork() -> bool:
    """Forking is cheap and safe enough on Linux; elsewhere the import reads in-process."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def chunks_from_worker(
    fmt: FileFormat,
    now: datetime,
    *,
    first_seq: int,
    file_no: int,
    naive_times: bool,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Chunk]:
    """Chunks of one file as a worker process produces them; its errors re-raised here.

    The worker is forked: it starts at once and shares this process's pages (spawning would
    re-import the application). It never touches the database connections it inherits and
    ends with os._exit, so nothing of theirs is closed or flushed twice."""
    context = multiprocessing.get_context("fork")
    channel: Any = context.Queue(maxsize=QUEUE_CHUNKS)
    worker = context.Process(
        target=_produce,
        args=(fmt, now, first_seq, file_no, naive_times, channel),
        daemon=True,
    )
    # The child flushes its copy of these buffers on exit: empty them first, or output twice.
    sys.stdout.flush()
    sys.stderr.flush()
    worker.start()
    try:
        while True:
            try:
                message = channel.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not worker.is_alive():
                    raise DomainError(
                        f"{fmt.path.name}: the reading process stopped unexpectedly",
                        code="import_worker_failed",
                    ) from None
                continue
            if message is None:
                return
            if isinstance(message, bytes):
                # Our own forked child wrote it (same interpreter): trusted bytes.
                message = Chunk(*marshal.loads(message))  # noqa: S302
            if isinstance(message, tuple):
                _kind, text, code = message
                if code == UnreadableFile.code:
                    raise UnreadableFile(text)
                raise DomainError(text, code=code)
            if progress is not None:
                progress(message.position)
            yield message
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()
        channel.close()
