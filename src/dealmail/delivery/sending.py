"""The sender threads: each takes composed messages, waits for a rate-limit slot and sends."""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from dealmail.delivery import queue as message_queue
from dealmail.delivery import rate
from dealmail.delivery.auto_pause import observe
from dealmail.delivery.backends import Backend, FailureKind, SendError
from dealmail.delivery.outbox import Outgoing
from dealmail.delivery.recording import Outcome, ResultBatch
from dealmail.delivery.retry import is_systemic
from dealmail.models import CampaignStatus, utcnow

if TYPE_CHECKING:
    from dealmail.delivery.worker import Worker

log = logging.getLogger("dealmail.worker")

RESERVE_AHEAD = 4
LONG_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Slot:
    """A reserved send time on this process's monotonic clock, and its send_log row."""

    due: float
    id: int
    db_clock: float  # add to a monotonic time to get the database clock's epoch seconds


UNLIMITED = Slot(0.0, 0, 0.0)  # no rate limit configured: nothing reserved


def run_sender(worker: Worker, index: int) -> None:
    backend: Backend | None = None
    slots: deque[Slot] = deque()
    with worker.sessions() as session:
        batch = ResultBatch(worker, session)
        try:
            while not worker.stop_event.is_set():
                if index >= worker.limits.connections:
                    batch.flush()
                    if backend is not None:
                        backend.close()
                        backend = None
                    worker.stop_event.wait(1.0)
                    continue
                try:
                    item = worker.outbox.get(timeout=0.2)
                except queue.Empty:
                    batch.flush()
                    continue
                if worker.outbox.qsize() + worker.composing < worker.batch_size:
                    worker.wanted.set()
                try:
                    if backend is None:
                        backend = worker.make_backend()
                    outcome = deliver(worker, session, backend, item, slots, batch)
                    if outcome is not None:  # at once: auto-pause must not wait on the commit
                        error = outcome.error
                        observe(
                            worker,
                            session,
                            outcome.claimed.campaign_id,
                            failed_systemically=error is not None and is_systemic(error),
                            error=error,
                        )
                    batch.add(outcome)
                except Exception:  # never let one message kill the sender
                    log.exception("message %s: unexpected error", item.claimed.id)
                    session.rollback()
                    message_queue.release(session, worker.name, [item.claimed.id])
                    batch.add(None)
                batch.flush()
        finally:
            batch.flush()
            if slots:
                rate.give_back(session, [slot.id for slot in slots])
            if backend is not None:
                backend.close()


def wait_for_slot(
    worker: Worker, session: Session, slots: deque[Slot], batch: ResultBatch
) -> Slot | None:
    """Block until a reserved slot is due. None: stopping, or the next slot is far off (the
    message goes back to the queue until then: see `Worker.next_free`).

    A slot is used only if the send starts within GUARD/2 of its time; one missed is given
    back. Database chores (recording results, giving slots back) happen before waiting,
    never between the slot's time and the send.
    """
    windows = worker.limits.windows
    if not windows:
        return UNLIMITED
    late_by = rate.GUARD_SECONDS / 2
    while not worker.stop_event.is_set():
        while slots:
            deadline = slots[0].due
            now = time.monotonic()
            if now > deadline + late_by:
                batch.stale.append(slots.popleft().id)
                continue
            if deadline > now:
                batch.flush()
                now = time.monotonic()
                if deadline > now:
                    worker.stop_event.wait(deadline - now)
                if time.monotonic() > deadline + late_by:
                    continue  # the chores or the wait overran: this slot is stale now
            return slots.popleft()
        batch.flush()
        reservation = rate.reserve(
            session, RESERVE_AHEAD, windows, worker.name, give_back=batch.take_stale()
        )
        reference = time.monotonic()
        db_clock = reservation.db_now.timestamp() - reference
        slots.extend(
            Slot(reference + delay, slot_id, db_clock)
            for delay, slot_id in zip(reservation.delays, reservation.ids, strict=True)
        )
        if not slots:
            if reservation.retry_in > LONG_WAIT_SECONDS:
                worker.next_free = utcnow() + timedelta(seconds=reservation.retry_in)
                return None
            worker.stop_event.wait(reservation.retry_in)
    return None


def deliver(
    worker: Worker,
    session: Session,
    backend: Backend,
    item: Outgoing,
    slots: deque[Slot],
    batch: ResultBatch,
) -> Outcome | None:
    message = item.claimed
    if item.error is not None:
        return Outcome(message, None, item.error, None, utcnow())
    if worker.rate_exhausted():
        message_queue.release(session, worker.name, [message.id], not_before=worker.next_free)
        return None
    if worker.campaign_status.get(message.campaign_id) != CampaignStatus.SENDING:
        message_queue.release(session, worker.name, [message.id])
        return None
    composed = item.composed
    assert composed is not None
    opener = getattr(backend, "open", None)
    if worker.limits.windows and callable(opener):
        try:
            opener()  # connect before taking a slot: the slot times the send, not a connect
        except SendError as exc:
            return Outcome(message, None, exc, None, utcnow())
    slot = wait_for_slot(worker, session, slots, batch)
    if slot is None or worker.stop_event.is_set():
        later = None if worker.stop_event.is_set() else worker.next_free
        message_queue.release(session, worker.name, [message.id], not_before=later)
        if slot is not None and slot is not UNLIMITED:
            batch.stale.append(slot.id)
        return None
    try:
        result = backend.send(composed)
    except SendError as exc:
        return Outcome(message, None, exc, None, utcnow())
    except Exception as exc:  # a backend bug: fail this message, never loop on it
        log.exception("message %s: the %s backend failed unexpectedly", message.id, backend.name)
        error = SendError(FailureKind.PERMANENT, f"unexpected error: {exc!r}", code="internal")
        return Outcome(message, None, error, None, utcnow())
    finally:
        if slot is not UNLIMITED:
            correct_late_slot(worker, session, slot)
    return Outcome(message, result, None, composed.message_id, utcnow())


def correct_late_slot(worker: Worker, session: Session, slot: Slot) -> None:
    """A send that finished after its slot's guard (a slow server, a stalled thread) is
    logged at its finish as well, since it may have arrived any time in between."""
    finished = time.monotonic()
    if finished > slot.due + rate.GUARD_SECONDS:
        rate.log_late_finish(session, finished + slot.db_clock, worker.name)
