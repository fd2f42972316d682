"""Composing in a child process, so a worker composes and sends on two cores at once.

Composing is pure CPU (~1 ms a message: QR, templates, the RSA signature) and the worker's
sender threads share one GIL with it: in one process, a reply from the SMTP server waits for
the composing thread. The child builds each campaign's `Composer` itself (its own read-only
connection) and gets each batch's recipients from the worker over a pipe; it writes nothing
to the database, so a crash of either process loses nothing (the messages stay leased until
recorded). The child ends when its input closes: when the worker stops, or is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from dealmail.config import Settings
from dealmail.delivery.compose import Composer, Recipient
from dealmail.delivery.envelope import ComposedMessage

CampaignKey = tuple[int, datetime | None]  # (campaign id, its updated_at): a new version recompiles
log = logging.getLogger("dealmail.worker")
CHILD = "from dealmail.delivery.composing import serve; serve()"
STOP_SECONDS = 30.0
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True)
class ComposeFailure:
    """A message that could not be composed (the reason, as the inline path would record it)."""

    detail: str


Results = list[ComposedMessage | ComposeFailure]


def can_use_child(url: str) -> bool:
    """A child process reaches the same database only through a URL (not SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    return bool(parsed.database) and parsed.database != ":memory:"


def _write(stream: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    """The next value, or None at the end of the stream."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        return None
    return pickle.loads(data)  # noqa: S301 - from our own worker process, over its pipe


# -- in the child ------------------------------------------------------------------------


class _Composers:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.compiled: dict[CampaignKey, Composer] = {}

    def batch(self, key: CampaignKey, recipients: Sequence[Recipient]) -> Results:
        """One campaign's messages, in order; a message that fails does not stop the others."""
        composer = self.compiled.get(key)
        if composer is None:
            try:
                with self.sessions() as session:
                    composer = Composer.for_campaign(session, key[0], self.settings)
            except Exception as exc:  # a broken campaign: every message of the batch fails
                return [ComposeFailure(str(exc))] * len(recipients)
            self.compiled = {k: v for k, v in self.compiled.items() if k[0] != key[0]}
            self.compiled[key] = composer
        results: Results = []
        for recipient in recipients:
            try:
                results.append(composer.compose(recipient))
            except Exception as exc:  # one bad message never stops the loop
                results.append(ComposeFailure(str(exc)))
        return results


def serve() -> None:
    """The child: (settings, url) first, then (request id, campaign key, recipients) until EOF."""
    # The worker decides when to stop (SIGTERM finishes in-flight messages); Ctrl-C reaches the
    # whole process group, so the child ignores both and ends when its input closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from dealmail.db import make_engine, read_only, session_factory

    # The answers get the real stdout to themselves: a stray print() goes to stderr instead.
    source, sink = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    settings, url = _read(source)
    composers = _Composers(settings, session_factory(read_only(make_engine(url))))
    while (request := _read(source)) is not None:
        number, key, recipients = request
        try:
            _write(sink, (number, composers.batch(key, recipients)))
        except BrokenPipeError:  # the worker is gone
            return


# -- in the worker -----------------------------------------------------------------------


class ComposeProcess:
    """One child process composing batches in order; `submit` returns a future at once."""

    def __init__(self, settings: Settings, url: str) -> None:
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter, our fixed code
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._input, self._output = self._process.stdin, self._process.stdout
        self._lock = threading.Lock()  # the pending futures
        self._writing = threading.Lock()  # never held while waiting for an answer
        self._pending: dict[int, Future[Results]] = {}
        self._next = 0
        self._closed = False
        _write(self._input, (settings, url))
        self._reader = threading.Thread(target=self._receive, name="composed", daemon=True)
        self._reader.start()

    def submit(self, key: CampaignKey, recipients: Sequence[Recipient]) -> Future[Results]:
        """Raises if the child is gone; the future fails if it dies before answering."""
        future: Future[Results] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the composing process has stopped")
            number, self._next = self._next, self._next + 1
            self._pending[number] = future
        try:
            with self._writing:
                _write(self._input, (number, key, list(recipients)))
        except (OSError, ValueError):  # the child is gone, or its pipe closed
            with self._lock:
                self._pending.pop(number, None)
            raise
        return future

    def _receive(self) -> None:
        try:
            while (answer := _read(self._output)) is not None:
                number, results = answer
                with self._lock:
                    future = self._pending.pop(number)
                future.set_result(results)
        except Exception:  # a torn answer: the child died mid-write
            log.exception("the composing process's answer could not be read")
        finally:
            with self._lock:
                self._closed = True
                left, self._pending = list(self._pending.values()), {}
            for future in left:
                future.set_exception(RuntimeError("the composing process ended"))

    def close(self) -> None:
        """Ends the child once it has answered what it was given (their callbacks run)."""
        with self._lock:
            self._closed = True
        with self._writing, contextlib.suppress(OSError):
            self._input.close()
        try:
            self._process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join()
