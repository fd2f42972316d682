"""The delivery worker: claim, compose, send within the rate limits, record; any number of them.

One process runs a main thread and one sender thread per SMTP connection. The main thread does
the housekeeping (heartbeat, due scheduled campaigns, materialisation, lease renewal, finished
campaigns), claims batches, composes them (CPU only) and queues them for the senders. A sender
reserves rate-limit slots, sends outside any transaction and records each result in its own
short transaction. SIGTERM: in-flight sends finish, everything else claimed is released.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import FrameType

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from dealmail.config import Settings
from dealmail.db import get_engine, session_factory
from dealmail.delivery import campaign_state, rate
from dealmail.delivery import queue as message_queue
from dealmail.delivery.backends import Backend, FailureKind, SendError, backend_name, get_backend
from dealmail.delivery.compose import Composer
from dealmail.delivery.envelope import ComposedMessage
from dealmail.delivery.materialise import materialise_batch
from dealmail.delivery.queue import Claimed
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
WORKER_STALE_SECONDS = 30.0
SETTINGS_REFRESH_SECONDS = 5.0
PRUNE_SECONDS = 300.0
IDLE_GRACE_SECONDS = 5.0
# Auto-pause: this share of the last N attempts failing for reasons that are not the recipient's.
PAUSE_WINDOW = 50
PAUSE_SHARE = 0.9
RESERVE_AHEAD = 10
LONG_WAIT_SECONDS = 5.0


@dataclass
class Outgoing:
    claimed: Claimed
    composed: ComposedMessage


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
    ) -> None:
        self.settings = settings
        self.until_idle = until_idle
        self.name = name or worker_name()
        self.engine = engine or get_engine(settings)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
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
        self.composers: dict[tuple[int, datetime | None], Composer] = {}
        self._backend_factory = backend_factory
        self._backend_name: str = settings.email_backend
        self._backend_rate: float | None = None
        self._probed = False
        self._last: dict[str, float] = {}
        self.sent = 0

    # -- lifecycle ------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        def _stop(_signum: int, _frame: FrameType | None) -> None:
            self.stop_event.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self) -> int:
        """Until stopped (or idle with `until_idle`); returns how many messages were sent."""
        with self.sessions() as session:
            self._heartbeat(session)
            self._refresh_limits(session)
        threads = [
            threading.Thread(target=self._sender, args=(n,), name=f"sender-{n}", daemon=True)
            for n in range(self.max_threads)
        ]
        for thread in threads:
            thread.start()
        try:
            with self.sessions() as session:
                self._main_loop(session)
        finally:
            self.stop_event.set()
            for thread in threads:
                thread.join()
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

    def _main_loop(self, session: Session) -> None:
        while not self.stop_event.is_set():
            self._housekeeping(session)
            if self.outbox.qsize() < self.batch_size and self.limits.connections > 0:
                claimed = message_queue.claim(
                    session, self.name, self.batch_size, self.lease_seconds, self.settings
                )
                if claimed:
                    self._compose(session, claimed)
                    continue
            if self.until_idle and self._idle(session):
                return
            self.stop_event.wait(self.settings.worker_poll_seconds if self.outbox.empty() else 0.05)

    def _housekeeping(self, session: Session) -> None:
        if self._every("heartbeat", HEARTBEAT_SECONDS):
            self._heartbeat(session)
        if self._every("settings", SETTINGS_REFRESH_SECONDS):
            self._refresh_limits(session)
        if self._every("renew", self.lease_seconds / 3):
            message_queue.renew(session, self.name, self.lease_seconds)
        if self._every("requeue", max(1.0, self.lease_seconds / 4)):
            message_queue.requeue_expired(session)
        if self._every("campaigns", self.settings.worker_poll_seconds):
            for cid in campaign_state.start_due(session):
                log.info("campaign %s: scheduled time reached, sending", cid)
            deadline = time.monotonic() + 1.0
            for cid in campaign_state.unmaterialised(session):
                while materialise_batch(session, cid) is not None and time.monotonic() < deadline:
                    pass
            for cid in campaign_state.finish_done(session):
                log.info("campaign %s: sent", cid)
            known = list(self.campaign_status)
            if known:
                self.campaign_status.update(campaign_state.statuses(session, known))
        if self._every("prune", PRUNE_SECONDS):
            rate.prune(session, self.limits.windows)

    def _idle(self, session: Session) -> bool:
        """Nothing in hand, and nothing due or about to be (retries, expiring leases, schedules)."""
        if self.outbox.unfinished_tasks:  # queued, or taken by a sender and not yet recorded
            return False
        soon = utcnow() + timedelta(seconds=IDLE_GRACE_SECONDS)
        sending = select(Campaign.id).where(Campaign.status == CampaignStatus.SENDING)
        waiting = session.scalar(
            select(Message.id)
            .where(
                Message.campaign_id.in_(sending.scalar_subquery()),
                (Message.status.in_(message_queue.WAITING) & (Message.next_attempt_at <= soon))
                | ((Message.status == MessageStatus.SENDING) & (Message.lease_expires_at <= soon)),
            )
            .limit(1)
        )
        pending_campaign = session.scalar(
            select(Campaign.id)
            .where(
                ((Campaign.status == CampaignStatus.SCHEDULED) & (Campaign.send_at <= soon))
                | ((Campaign.status == CampaignStatus.SENDING) & Campaign.materialised_at.is_(None))
            )
            .limit(1)
        )
        session.rollback()
        if waiting is None and pending_campaign is None:
            campaign_state.finish_done(session)
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

    def _composer(self, session: Session, campaign_id: int) -> Composer:
        updated = session.scalar(select(Campaign.updated_at).where(Campaign.id == campaign_id))
        key = (campaign_id, updated)
        composer = self.composers.get(key)
        if composer is None:
            composer = Composer.for_campaign(session, campaign_id, self.settings)
            self.composers = {k: v for k, v in self.composers.items() if k[0] != campaign_id}
            self.composers[key] = composer
        return composer

    def _compose(self, session: Session, claimed: list[Claimed]) -> None:
        by_campaign: dict[int, list[Claimed]] = {}
        for message in claimed:
            by_campaign.setdefault(message.campaign_id, []).append(message)
        for campaign_id, messages in by_campaign.items():
            self.campaign_status.setdefault(campaign_id, CampaignStatus.SENDING)
            try:
                composer = self._composer(session, campaign_id)
                recipients = composer.load_recipients(session, [m.id for m in messages])
                session.rollback()
            except Exception as exc:  # a broken campaign must not stop the worker
                session.rollback()
                log.exception("campaign %s: cannot prepare its messages", campaign_id)
                for message in messages:
                    self._record_failure(session, message, _compose_error(exc))
                continue
            for message in messages:
                try:
                    composed = composer.compose(recipients[message.id])
                except Exception as exc:  # one bad message never stops the loop
                    log.warning("message %s: cannot compose: %s", message.id, exc)
                    self._record_failure(session, message, _compose_error(exc))
                    continue
                self.outbox.put(Outgoing(message, composed))

    def _release_outbox(self, session: Session) -> None:
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
        slots: deque[float] = deque()
        with self.sessions() as session:
            try:
                while not self.stop_event.is_set():
                    if index >= self.limits.connections:
                        if backend is not None:
                            backend.close()
                            backend = None
                        self.stop_event.wait(1.0)
                        continue
                    try:
                        item = self.outbox.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    try:
                        if backend is None:
                            backend = self._make_backend()
                        self._deliver(session, backend, item, slots)
                    except Exception:  # never let one message kill the sender
                        log.exception("message %s: unexpected error", item.claimed.id)
                        session.rollback()
                        message_queue.release(session, self.name, [item.claimed.id])
                    finally:
                        self.outbox.task_done()
            finally:
                if backend is not None:
                    backend.close()

    def _wait_for_slot(self, session: Session, slots: deque[float]) -> float | None:
        """Block until a reserved slot is due; None means wait long (release the message)."""
        windows = self.limits.windows
        if not windows:
            return 0.0
        while not self.stop_event.is_set():
            while slots:
                deadline = slots.popleft()
                now = time.monotonic()
                if now <= deadline + rate.GUARD_SECONDS / 2:
                    if deadline > now:
                        self.stop_event.wait(deadline - now)
                    return deadline
                # Too late for this slot: sending now could crowd the next window. Drop it.
            reservation = rate.reserve(session, RESERVE_AHEAD, windows, self.name)
            reference = time.monotonic()
            slots.extend(reference + delay for delay in reservation.delays)
            if not slots:
                if reservation.retry_in > LONG_WAIT_SECONDS:
                    return None
                self.stop_event.wait(reservation.retry_in)
        return None

    def _deliver(
        self, session: Session, backend: Backend, item: Outgoing, slots: deque[float]
    ) -> None:
        message = item.claimed
        if self.campaign_status.get(message.campaign_id) != CampaignStatus.SENDING:
            message_queue.release(session, self.name, [message.id])
            return
        if self._wait_for_slot(session, slots) is None or self.stop_event.is_set():
            message_queue.release(session, self.name, [message.id], not_before=self._later())
            return
        try:
            result = backend.send(item.composed)
        except SendError as exc:
            self._record_failure(session, message, exc)
            return
        message_queue.record_sent(session, message, self.name, result, item.composed.message_id)
        self.sent += 1
        self._observe(session, message.campaign_id, failed_systemically=False, error=None)

    def _later(self) -> datetime | None:
        return None if self.stop_event.is_set() else utcnow() + timedelta(seconds=LONG_WAIT_SECONDS)

    def _record_failure(self, session: Session, message: Claimed, error: SendError) -> None:
        status = message_queue.record_failure(
            session,
            message,
            self.name,
            error,
            horizon=self.horizon,
            retry_base=self.settings.retry_base_seconds,
        )
        log.info("message %s: %s (%s)", message.id, status, error)
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


def _compose_error(exc: Exception) -> SendError:
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
