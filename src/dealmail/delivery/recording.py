"""Recording send results: the senders' result batches and the recorder thread's group commits."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from dealmail.delivery import queue as message_queue
from dealmail.delivery import rate
from dealmail.delivery.auto_pause import observe
from dealmail.delivery.backends import SendError, SendResult
from dealmail.delivery.queue import Claimed, Delivered
from dealmail.delivery.retry import is_systemic
from dealmail.models import utcnow

if TYPE_CHECKING:
    from dealmail.delivery.worker import Worker

log = logging.getLogger("dealmail.worker")

GROUP_MAX = 32
GROUP_SECONDS = 0.1  # a result waits at most this long for others to share its commit


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    result: SendResult | None
    error: SendError | None
    message_id_header: str | None
    at: datetime


def record_outcome(worker: Worker, session: Session, outcome: Outcome, *, commit: bool) -> None:
    message, error = outcome.claimed, outcome.error
    if error is None:
        assert outcome.result is not None
        message_queue.record_sent(
            session,
            message,
            worker.name,
            outcome.result,
            outcome.message_id_header,
            outcome.at,
            commit=commit,
        )
        return
    status = message_queue.record_failure(
        session,
        message,
        worker.name,
        error,
        horizon=worker.horizon,
        retry_base=worker.settings.retry_base_seconds,
        now=outcome.at,
        commit=commit,
    )
    log.info("message %s: %s (%s)", message.id, status, error)


def record_failure(worker: Worker, session: Session, message: Claimed, error: SendError) -> None:
    record_outcome(worker, session, Outcome(message, None, error, None, utcnow()), commit=True)
    observe(
        worker, session, message.campaign_id, failed_systemically=is_systemic(error), error=error
    )


class ResultBatch:
    """A sender's results on their way to the recorder, and its rate-limit slots to give back.

    Handing results over is a queue put: the sender never waits on the database between sends.
    """

    def __init__(self, worker: Worker, session: Session) -> None:
        self.worker = worker
        self.session = session
        self.outcomes: list[Outcome] = []
        self.stale: list[int] = []  # rate-limit slots reached too late, to give back
        self.handled = 0  # queue items taken, whose task_done waits for the commit

    def add(self, outcome: Outcome | None) -> None:
        self.handled += 1
        if outcome is not None:
            self.outcomes.append(outcome)

    def take_stale(self) -> list[int]:
        stale, self.stale = self.stale, []
        return stale

    def flush(self) -> None:
        if self.stale:
            rate.give_back(self.session, self.take_stale())
        if self.outcomes or self.handled:
            self.worker.recorder.put((self.outcomes, self.handled))
            self.outcomes, self.handled = [], 0


class Recorder:
    """Records the senders' results on its own thread, in short transactions: with those that
    finish within GROUP_SECONDS of the first, or until GROUP_MAX are waiting (group commit:
    SQLite writers queue on one lock, so one commit per message would make workers wait on
    each other; and the recorder is woken once a group, not once a result). A transaction
    never spans a send; a crash loses at most the results not yet recorded, whose messages are
    still leased and so sent again: duplicates stay within the messages in flight. An outbox
    item is marked done only once its result is committed."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.queue: queue.Queue[tuple[list[Outcome], int] | None] = queue.Queue()
        self.full = threading.Event()
        self.thread = threading.Thread(target=self._run, name="recorder", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, item: tuple[list[Outcome], int]) -> None:
        self.queue.put(item)
        if self.queue.qsize() >= GROUP_MAX:
            self.full.set()

    def stop(self) -> None:
        """After the senders have stopped: records what is queued, then ends."""
        self.queue.put(None)
        self.full.set()
        self.thread.join()

    def _run(self) -> None:
        with self.worker.sessions() as session:
            stopping = False
            while not stopping:
                item = self.queue.get()
                if item is None:
                    return
                self.full.wait(GROUP_SECONDS)
                self.full.clear()
                outcomes, handled = list(item[0]), item[1]
                while True:
                    try:
                        more = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    outcomes += more[0]
                    handled += more[1]
                try:
                    self._record(session, outcomes)
                except Exception:  # the recorder must outlive any one failure
                    session.rollback()
                    log.exception("recording %d results failed", len(outcomes))
                for _ in range(handled):
                    self.worker.outbox.task_done()

    def _record(self, session: Session, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        worker = self.worker
        try:
            delivered = [
                Delivered(o.claimed, o.result, o.message_id_header, o.at)
                for o in outcomes
                if o.result is not None
            ]
            message_queue.record_sent_many(session, delivered, worker.name)
            for outcome in outcomes:
                if outcome.error is not None:
                    record_outcome(worker, session, outcome, commit=False)
            session.commit()
        except Exception:
            log.exception("recording %d results together failed; one by one", len(outcomes))
            session.rollback()
            for outcome in outcomes:
                try:
                    record_outcome(worker, session, outcome, commit=True)
                except Exception:
                    session.rollback()
                    log.exception("message %s: result not recorded", outcome.claimed.id)
        worker.sent += sum(1 for outcome in outcomes if outcome.error is None)
