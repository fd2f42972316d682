"""The delivery worker: claim, compose, send within the rate limits, record; any number of them.

One process runs a main thread and one sender thread per SMTP connection. The main thread does
the housekeeping (heartbeat, due scheduled campaigns, materialisation, lease renewal, finished
campaigns), claims batches and has them composed (CPU only; in a child process when the machine
has a core to spare, see `composing`) and queued for the senders. A sender reserves rate-limit
slots, sends outside any transaction and records each result in its own short transaction.
SIGTERM: in-flight sends finish, everything else claimed is released.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import FrameType

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from dealmail.config import Settings
from dealmail.db import get_engine, read_only, session_factory
from dealmail.delivery import campaign_state, rate
from dealmail.delivery import queue as message_queue
from dealmail.delivery.backends import (
    Backend,
    FailureKind,
    SendError,
    SendResult,
    backend_name,
    get_backend,
)
from dealmail.delivery.compose import Composer, Recipient
from dealmail.delivery.composing import (
    CampaignKey,
    ComposeFailure,
    ComposeProcess,
    can_use_child,
)
from dealmail.delivery.envelope import ComposedMessage
from dealmail.delivery.materialise import materialise_batch
from dealmail.delivery.queue import Claimed, Delivered
from dealmail.delivery.retry import is_systemic
from dealmail.models import (
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    WorkerHeartbeat,
    utcnow,
)
from dealmail.shop import ShopSettings, get_shop_settings

log = logging.getLogger("dealmail.worker")

HEARTBEAT_SECONDS = 5.0
CAMPAIGN_CHECK_SECONDS = 1.0
WORKER_STALE_SECONDS = 30.0
SETTINGS_REFRESH_SECONDS = 5.0
PRUNE_SECONDS = 300.0
IDLE_GRACE_SECONDS = 5.0
# Auto-pause: this share of the last N attempts failing for reasons that are not the recipient's.
PAUSE_WINDOW = 50
PAUSE_SHARE = 0.9
RESERVE_AHEAD = 4
GROUP_MAX = 32
GROUP_SECONDS = 0.1  # a result waits at most this long for others to share its commit
SWITCH_INTERVAL = 0.0001
LONG_WAIT_SECONDS = 5.0
COMPOSE_CHUNK = 20  # messages per request to the composing child: the first arrive soon


@dataclass
class Outgoing:
    claimed: Claimed
    composed: ComposedMessage | None
    error: SendError | None = None  # could not be composed: recorded as failed, not sent


@dataclass
class Limits:
    windows: list[rate.Window] = field(default_factory=list)
    connections: int = 1


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        until_idle: bool = False,
        connections: int | None = None,
        batch_size: int | None = None,
        engine: Engine | None = None,
        backend_factory: Callable[[], Backend] | None = None,
        name: str | None = None,
        compose_process: bool | None = None,
    ) -> None:
        self.settings = settings
        self.until_idle = until_idle
        self.name = name or worker_name()
        self.engine = engine or get_engine(settings)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        # Reads that need no lock: on SQLite a DEFERRED transaction never waits on writers.
        self.readers: sessionmaker[Session] = session_factory(read_only(self.engine))
        self.batch_size = batch_size or settings.worker_batch_size
        self.max_threads = max(1, connections or settings.smtp_connections)
        self.lease_seconds = settings.lease_seconds
        self.horizon = timedelta(hours=settings.retry_horizon_hours)
        self.stop_event = threading.Event()
        self.outbox: queue.Queue[Outgoing] = queue.Queue()
        self.limits = Limits(connections=self.max_threads)
        self.campaign_status: dict[int, str] = {}
        self.recent: dict[int, deque[bool]] = {}
        self.recent_lock = threading.Lock()
        self.composers: dict[CampaignKey, Composer] = {}
        if compose_process is None:  # a core to spare, and a database the child can open
            compose_process = (os.cpu_count() or 1) > 1
        url = self.engine.url.render_as_string(hide_password=False)
        self._child_url = url if compose_process and can_use_child(url) else None
        self.compose_child: ComposeProcess | None = None
        # Messages handed to the child and not yet in the outbox; batches the child could not
        # take (it died) come back through `recompose` and are composed here instead.
        self.composing = 0
        self.composing_lock = threading.Lock()
        # Set by a sender when the messages in hand run low: the main loop claims at once.
        self.wanted = threading.Event()
        self.recorder = Recorder(self)
        self.recompose: queue.Queue[tuple[CampaignKey, list[Claimed], list[Recipient]]] = (
            queue.Queue()
        )
        self._backend_factory = backend_factory
        self._backend_name: str = settings.email_backend
        self._backend_rate: float | None = None
        self._probed = False
        self.next_free: datetime | None = None  # when the rate limits allow the next send
        self._last: dict[str, float] = {}
        self.sent = 0

    # -- lifecycle ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def _stop(_signum: int, _frame: FrameType | None) -> None:
            self.stop_event.set()
            self.wanted.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self) -> int:
        """Until stopped (or idle with `until_idle`); returns how many messages were sent."""
        # Hand the GIL over sooner: a sender waiting on its socket should not sit out 5 ms.
        sys.setswitchinterval(SWITCH_INTERVAL)
        with self.sessions() as session, self.readers() as reader:
            self._heartbeat(session)
            self._refresh_limits(reader)
        if self._child_url is not None:
            self.compose_child = ComposeProcess(self.settings, self._child_url)
        self.recorder.start()
        threads = [
            threading.Thread(target=self._sender, args=(n,), name=f"sender-{n}", daemon=True)
            for n in range(self.max_threads)
        ]
        for thread in threads:
            thread.start()
        try:
            with self.sessions() as session, self.readers() as reader:
                self._main_loop(session, reader)
        finally:
            self.stop_event.set()
            for thread in threads:
                thread.join()
            self.recorder.stop()
            if self.compose_child is not None:
                self.compose_child.close()  # what it composed lands in the outbox, to release
            with self.sessions() as session:
                self._release_outbox(session)
                session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker == self.name))
                session.commit()
        return self.sent

    def _every(self, key: str, seconds: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= seconds:
            self._last[key] = now
            return True
        return False

    def _main_loop(self, session: Session, reader: Session) -> None:
        while not self.stop_event.is_set():
            self._housekeeping(session, reader)
            self._compose_returned(session)
            if (
                self.outbox.qsize() + self.composing < self.batch_size
                and self.limits.connections > 0
                and not self._rate_exhausted()
            ):
                claimed = message_queue.claim(
                    session, self.name, self.batch_size, self.lease_seconds, self.settings
                )
                if claimed:
                    self._prepare(session, reader, claimed)
                    continue
            if self.until_idle and self._idle(session, reader):
                return
            in_hand = self.composing or not self.outbox.empty()
            self.wanted.wait(0.05 if in_hand else self.settings.worker_poll_seconds)
            self.wanted.clear()

    def _housekeeping(self, session: Session, reader: Session) -> None:
        if self._every("heartbeat", HEARTBEAT_SECONDS):
            self._heartbeat(session)
        if self._every("settings", SETTINGS_REFRESH_SECONDS):
            self._refresh_limits(reader)
        if self._every("renew", self.lease_seconds / 3):
            message_queue.renew(session, self.name, self.lease_seconds)
        if self._every("requeue", max(1.0, self.lease_seconds / 4)):
            message_queue.requeue_expired(session)
        if self._every("campaigns", max(CAMPAIGN_CHECK_SECONDS, self.settings.worker_poll_seconds)):
            for cid in campaign_state.start_due(session, reader=reader):
                log.info("campaign %s: scheduled time reached, sending", cid)
            deadline = time.monotonic() + 1.0
            for cid in campaign_state.unmaterialised(reader):
                while materialise_batch(session, cid) is not None and time.monotonic() < deadline:
                    pass
            for cid in campaign_state.finish_done(session, reader=reader):
                log.info("campaign %s: sent", cid)
            known = list(self.campaign_status)
            if known:
                self.campaign_status.update(campaign_state.statuses(reader, known))
        if self._every("prune", PRUNE_SECONDS):
            rate.prune(session, self.limits.windows)

    def _idle(self, session: Session, reader: Session) -> bool:
        """Nothing in hand, and nothing due or about to be (retries, expiring leases, schedules)."""
        # In this order: a composed batch enters the outbox before it leaves `composing`.
        if self.composing:
            return False
        if self.outbox.unfinished_tasks:  # queued, or taken by a sender and not yet recorded
            return False
        soon = utcnow() + timedelta(seconds=IDLE_GRACE_SECONDS)
        if self.next_free is not None and self.next_free > soon:
            return True  # the rate limits allow nothing more for a while
        sending = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
        waiting = reader.scalar(
            select(Message.id)
            .where(
                Message.campaign_id.in_(sending.scalar_subquery()),
                (Message.status.in_(message_queue.WAITING) & (Message.next_attempt_at <= soon))
                | ((Message.status == MessageStatus.SENDING) & (Message.lease_expires_at <= soon)),
            )
            .limit(1)
        )
        pending_campaign = reader.scalar(
            select(Campaign.id)
            .where(
                ((Campaign.status == CampaignStatus.SCHEDULED) & (Campaign.send_at <= soon))
                | ((Campaign.status == CampaignStatus.SENDING) & Campaign.materialised_at.is_(None))
            )
            .limit(1)
        )
        reader.rollback()
        if waiting is None and pending_campaign is None:
            campaign_state.finish_done(session, reader=reader)
            return True
        return False

    # -- shared state ---------------------------------------------------------------------

    def _heartbeat(self, session: Session) -> None:
        now = utcnow()
        row = session.get(WorkerHeartbeat, self.name)
        if row is None:
            session.add(
                WorkerHeartbeat(
                    worker=self.name,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now,
                    seen_at=now,
                )
            )
        else:
            row.seen_at = now
        session.execute(
            delete(WorkerHeartbeat).where(
                WorkerHeartbeat.seen_at < now - timedelta(seconds=WORKER_STALE_SECONDS * 10)
            )
        )
        session.commit()

    def _refresh_limits(self, session: Session) -> None:
        shop = get_shop_settings(session)
        name = backend_name(self.settings, shop.email_backend)
        if name != self._backend_name or not self._probed:
            self._backend_name = name
            self._backend_rate = self._probe_backend_rate()
        share = self._connection_share(session, shop)
        session.rollback()
        today = date.today()
        self.limits = Limits(
            windows=rate.windows_for(shop, today, self._backend_rate),
            connections=min(self.max_threads, share),
        )

    def _probe_backend_rate(self) -> float | None:
        """A provider's own sending quota (SES `MaxSendRate`), paced to like the shop's limit."""
        self._probed = True
        backend = self._make_backend()
        try:
            quota = getattr(backend, "max_send_rate", None)
            return quota() if callable(quota) else None
        finally:
            backend.close()

    def _connection_share(self, session: Session, shop: ShopSettings) -> int:
        """`max_connections` split between the live workers, by rank of start (0 is unlimited)."""
        if shop.max_connections <= 0:
            return self.max_threads
        fresh = utcnow() - timedelta(seconds=WORKER_STALE_SECONDS)
        live = session.scalars(
            select(WorkerHeartbeat.worker)
            .where(WorkerHeartbeat.seen_at >= fresh)
            .order_by(WorkerHeartbeat.started_at, WorkerHeartbeat.worker)
        ).all()
        if self.name not in live:
            live = [*live, self.name]
        rank, count = live.index(self.name), len(live)
        return shop.max_connections // count + (1 if rank < shop.max_connections % count else 0)

    def _make_backend(self) -> Backend:
        if self._backend_factory is not None:
            return self._backend_factory()
        return get_backend(self.settings, self._backend_name)

    # -- composing ------------------------------------------------------------------------

    def _campaign_key(self, session: Session, campaign_id: int) -> CampaignKey:
        return (
            campaign_id,
            session.scalar(select(Campaign.updated_at).where(Campaign.id == campaign_id)),
        )

    def _composer(self, session: Session, key: CampaignKey) -> Composer:
        campaign_id = key[0]
        composer = self.composers.get(key)
        if composer is None:
            composer = Composer.for_campaign(session, campaign_id, self.settings)
            self.composers = {k: v for k, v in self.composers.items() if k[0] != campaign_id}
            self.composers[key] = composer
        return composer

    def _prepare(self, session: Session, reader: Session, claimed: list[Claimed]) -> None:
        """Have the claimed messages composed (CPU only) for the senders, while they send.

        In the child process when there is one; else here, overlapping with the senders'
        network waits (the short GIL switch interval, see `run`, keeps a sender whose reply has
        arrived from waiting on this thread).
        """
        by_campaign: dict[int, list[Claimed]] = {}
        for message in claimed:
            by_campaign.setdefault(message.campaign_id, []).append(message)
        for campaign_id, messages in by_campaign.items():
            self.campaign_status.setdefault(campaign_id, CampaignStatus.SENDING)
            try:
                key = self._campaign_key(reader, campaign_id)
                loaded = Composer.load_recipients(reader, [m.id for m in messages])
                reader.rollback()
                recipients = [loaded[m.id] for m in messages]
            except Exception as exc:  # a broken campaign must not stop the worker
                reader.rollback()
                log.exception("campaign %s: cannot prepare its messages", campaign_id)
                for message in messages:
                    self._record_failure(session, message, _compose_error(exc))
                continue
            if self.compose_child is None:
                self._compose_here(session, reader, key, messages, recipients)
                continue
            for start in range(0, len(messages), COMPOSE_CHUNK):
                self._hand_to_child(
                    key,
                    messages[start : start + COMPOSE_CHUNK],
                    recipients[start : start + COMPOSE_CHUNK],
                )

    def _compose_here(
        self,
        session: Session,
        reader: Session,
        key: CampaignKey,
        messages: Sequence[Claimed],
        recipients: Sequence[Recipient],
    ) -> None:
        try:
            composer = self._composer(reader, key)
            reader.rollback()
        except Exception as exc:  # a broken campaign must not stop the worker
            reader.rollback()
            log.exception("campaign %s: cannot prepare its messages", key[0])
            for message in messages:
                self._record_failure(session, message, _compose_error(exc))
            return
        for message, recipient in zip(messages, recipients, strict=True):
            try:
                composed = composer.compose(recipient)
            except Exception as exc:  # one bad message never stops the loop
                log.warning("message %s: cannot compose: %s", message.id, exc)
                self._record_failure(session, message, _compose_error(exc))
                continue
            self.outbox.put(Outgoing(message, composed))

    def _hand_to_child(
        self, key: CampaignKey, messages: list[Claimed], recipients: list[Recipient]
    ) -> None:
        assert self.compose_child is not None
        with self.composing_lock:
            self.composing += len(messages)
        try:
            future = self.compose_child.submit(key, recipients)
        except Exception:  # the child is gone (it died, or the pool shut down): compose here
            log.exception("the composing process is unavailable; composing in the worker")
            self.recompose.put((key, messages, recipients))
            return

        def arrived(done: Future[list[ComposedMessage | ComposeFailure]]) -> None:
            # Runs on the executor's thread: only queues, never the database.
            try:
                results = done.result()
            except (Exception, CancelledError):  # died, or cancelled at shutdown
                self.recompose.put((key, messages, recipients))
                return
            for message, result in zip(messages, results, strict=True):
                if isinstance(result, ComposeFailure):
                    log.warning("message %s: cannot compose: %s", message.id, result.detail)
                    self.outbox.put(Outgoing(message, None, _compose_error(result.detail)))
                else:
                    self.outbox.put(Outgoing(message, result))
            with self.composing_lock:
                self.composing -= len(messages)

        future.add_done_callback(arrived)

    def _compose_returned(self, session: Session) -> None:
        """Batches the child could not compose: the child is given up, they are composed here."""
        while True:
            try:
                key, messages, recipients = self.recompose.get_nowait()
            except queue.Empty:
                return
            if self.compose_child is not None and not self.stop_event.is_set():
                log.error("the composing process failed; composing in the worker from now on")
                child, self.compose_child = self.compose_child, None
                child.close()
            try:
                if self.stop_event.is_set():
                    message_queue.release(session, self.name, [m.id for m in messages])
                else:
                    with self.readers() as reader:
                        self._compose_here(session, reader, key, messages, recipients)
            finally:
                with self.composing_lock:
                    self.composing -= len(messages)

    def _release_outbox(self, session: Session) -> None:
        self._compose_returned(session)  # stopping: released
        ids = []
        while True:
            try:
                ids.append(self.outbox.get_nowait().claimed.id)
            except queue.Empty:
                break
            self.outbox.task_done()
        if ids:
            message_queue.release(session, self.name, ids)

    # -- sending --------------------------------------------------------------------------

    def _sender(self, index: int) -> None:
        backend: Backend | None = None
        slots: deque[Slot] = deque()
        with self.sessions() as session:
            batch = ResultBatch(self, session)
            try:
                while not self.stop_event.is_set():
                    if index >= self.limits.connections:
                        batch.flush()
                        if backend is not None:
                            backend.close()
                            backend = None
                        self.stop_event.wait(1.0)
                        continue
                    try:
                        item = self.outbox.get(timeout=0.2)
                    except queue.Empty:
                        batch.flush()
                        continue
                    if self.outbox.qsize() + self.composing < self.batch_size:
                        self.wanted.set()
                    try:
                        if backend is None:
                            backend = self._make_backend()
                        outcome = self._deliver(session, backend, item, slots, batch)
                        if outcome is not None:  # at once: auto-pause must not wait on the commit
                            error = outcome.error
                            self._observe(
                                session,
                                outcome.claimed.campaign_id,
                                failed_systemically=error is not None and is_systemic(error),
                                error=error,
                            )
                        batch.add(outcome)
                    except Exception:  # never let one message kill the sender
                        log.exception("message %s: unexpected error", item.claimed.id)
                        session.rollback()
                        message_queue.release(session, self.name, [item.claimed.id])
                        batch.add(None)
                    batch.flush()
            finally:
                batch.flush()
                if slots:
                    rate.give_back(session, [slot.id for slot in slots])
                if backend is not None:
                    backend.close()

    def _wait_for_slot(
        self, session: Session, slots: deque[Slot], batch: ResultBatch
    ) -> Slot | None:
        """Block until a reserved slot is due. None: stopping, or the next slot is far off (the
        message goes back to the queue until then: see `self.next_free`).

        A slot is used only if the send starts within GUARD/2 of its time; one missed is given
        back. Database chores (recording results, giving slots back) happen before waiting,
        never between the slot's time and the send.
        """
        windows = self.limits.windows
        if not windows:
            return UNLIMITED
        late_by = rate.GUARD_SECONDS / 2
        while not self.stop_event.is_set():
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
                        self.stop_event.wait(deadline - now)
                    if time.monotonic() > deadline + late_by:
                        continue  # the chores or the wait overran: this slot is stale now
                return slots.popleft()
            batch.flush()
            reservation = rate.reserve(
                session, RESERVE_AHEAD, windows, self.name, give_back=batch.take_stale()
            )
            reference = time.monotonic()
            db_clock = reservation.db_now.timestamp() - reference
            slots.extend(
                Slot(reference + delay, slot_id, db_clock)
                for delay, slot_id in zip(reservation.delays, reservation.ids, strict=True)
            )
            if not slots:
                if reservation.retry_in > LONG_WAIT_SECONDS:
                    self.next_free = utcnow() + timedelta(seconds=reservation.retry_in)
                    return None
                self.stop_event.wait(reservation.retry_in)
        return None

    def _deliver(
        self,
        session: Session,
        backend: Backend,
        item: Outgoing,
        slots: deque[Slot],
        batch: ResultBatch,
    ) -> Outcome | None:
        message = item.claimed
        if item.error is not None:
            return Outcome(message, None, item.error, None, utcnow())
        if self._rate_exhausted():
            message_queue.release(session, self.name, [message.id], not_before=self.next_free)
            return None
        if self.campaign_status.get(message.campaign_id) != CampaignStatus.SENDING:
            message_queue.release(session, self.name, [message.id])
            return None
        composed = item.composed
        assert composed is not None
        opener = getattr(backend, "open", None)
        if self.limits.windows and callable(opener):
            try:
                opener()  # connect before taking a slot: the slot times the send, not a connect
            except SendError as exc:
                return Outcome(message, None, exc, None, utcnow())
        slot = self._wait_for_slot(session, slots, batch)
        if slot is None or self.stop_event.is_set():
            later = None if self.stop_event.is_set() else self.next_free
            message_queue.release(session, self.name, [message.id], not_before=later)
            if slot is not None and slot is not UNLIMITED:
                batch.stale.append(slot.id)
            return None
        try:
            result = backend.send(composed)
        except SendError as exc:
            return Outcome(message, None, exc, None, utcnow())
        except Exception as exc:  # a backend bug: fail this message, never loop on it
            log.exception(
                "message %s: the %s backend failed unexpectedly", message.id, backend.name
            )
            error = SendError(FailureKind.PERMANENT, f"unexpected error: {exc!r}", code="internal")
            return Outcome(message, None, error, None, utcnow())
        finally:
            if slot is not UNLIMITED:
                self._correct_late_slot(session, slot)
        return Outcome(message, result, None, composed.message_id, utcnow())

    def _correct_late_slot(self, session: Session, slot: Slot) -> None:
        """A send that finished after its slot's guard (a slow server, a stalled thread) is
        logged at its finish as well, since it may have arrived any time in between."""
        finished = time.monotonic()
        if finished > slot.due + rate.GUARD_SECONDS:
            rate.log_late_finish(session, finished + slot.db_clock, self.name)

    def _rate_exhausted(self) -> bool:
        return self.next_free is not None and self.next_free > utcnow()

    def _record(self, session: Session, outcome: Outcome, *, commit: bool) -> None:
        message, error = outcome.claimed, outcome.error
        if error is None:
            assert outcome.result is not None
            message_queue.record_sent(
                session,
                message,
                self.name,
                outcome.result,
                outcome.message_id_header,
                outcome.at,
                commit=commit,
            )
            return
        status = message_queue.record_failure(
            session,
            message,
            self.name,
            error,
            horizon=self.horizon,
            retry_base=self.settings.retry_base_seconds,
            now=outcome.at,
            commit=commit,
        )
        log.info("message %s: %s (%s)", message.id, status, error)

    def _record_failure(self, session: Session, message: Claimed, error: SendError) -> None:
        self._record(session, Outcome(message, None, error, None, utcnow()), commit=True)
        self._observe(
            session, message.campaign_id, failed_systemically=is_systemic(error), error=error
        )

    def _observe(
        self,
        session: Session,
        campaign_id: int,
        *,
        failed_systemically: bool,
        error: SendError | None,
    ) -> None:
        """Pause the campaign when most recent attempts fail for reasons that are ours."""
        with self.recent_lock:
            window = self.recent.setdefault(campaign_id, deque(maxlen=PAUSE_WINDOW))
            window.append(failed_systemically)
            tripped = len(window) == PAUSE_WINDOW and sum(window) >= PAUSE_SHARE * PAUSE_WINDOW
            if tripped:
                window.clear()
        if not tripped:
            return
        reason = (
            f"paused automatically: at least {int(PAUSE_SHARE * 100)}% of the last "
            f"{PAUSE_WINDOW} attempts failed for reasons that are not the recipients' "
            f"(last: {error}); fix the cause, then `dealmail campaigns resume`"
        )
        if campaign_state.move(
            session, campaign_id, CampaignStatus.SENDING, CampaignStatus.PAUSED, reason=reason
        ):
            log.warning("campaign %s: %s", campaign_id, reason)
        self.campaign_status[campaign_id] = CampaignStatus.PAUSED


@dataclass(frozen=True)
class Slot:
    """A reserved send time on this process's monotonic clock, and its send_log row."""

    due: float
    id: int
    db_clock: float  # add to a monotonic time to get the database clock's epoch seconds


UNLIMITED = Slot(0.0, 0, 0.0)  # no rate limit configured: nothing reserved


@dataclass(frozen=True)
class Outcome:
    claimed: Claimed
    result: SendResult | None
    error: SendError | None
    message_id_header: str | None
    at: datetime


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
                    worker._record(session, outcome, commit=False)
            session.commit()
        except Exception:
            log.exception("recording %d results together failed; one by one", len(outcomes))
            session.rollback()
            for outcome in outcomes:
                try:
                    worker._record(session, outcome, commit=True)
                except Exception:
                    session.rollback()
                    log.exception("message %s: result not recorded", outcome.claimed.id)
        worker.sent += sum(1 for outcome in outcomes if outcome.error is None)


def _compose_error(exc: Exception | str) -> SendError:
    return SendError(FailureKind.PERMANENT, f"cannot compose: {exc}", code="compose")


def count_open(session: Session, campaign_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.campaign_id == campaign_id, Message.status.in_(campaign_state.OPEN))
        )
        or 0
    )
