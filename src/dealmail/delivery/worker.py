"""The delivery worker: claim, compose, send within the rate limits, record; any number of them.

One process runs a main thread and one sender thread per SMTP connection. The main thread does
the housekeeping (heartbeat, due scheduled campaigns, materialisation, lease renewal, finished
campaigns), claims batches and has them composed (CPU only; in a child process when the machine
has a core to spare, see `composing`) and queued for the senders. A sender reserves rate-limit
slots, sends outside any transaction and records each result in its own short transaction.
SIGTERM: in-flight sends finish, everything else claimed is released.

This module is the main thread; `outbox` fills the senders' queue (composing), `sending` is the
sender threads, `recording` the recorder thread and its group commits, `auto_pause` the watch on
failures that are ours.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import FrameType

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from dealmail.config import Settings
from dealmail.db import get_engine, read_only, session_factory
from dealmail.delivery import campaign_state, rate
from dealmail.delivery import queue as message_queue
from dealmail.delivery.backends import Backend, backend_name, get_backend
from dealmail.delivery.compose import Composer, Recipient
from dealmail.delivery.composing import CampaignKey, ComposeProcess, can_use_child
from dealmail.delivery.materialise import materialise_batch
from dealmail.delivery.outbox import Outgoing, compose_returned, prepare, release_outbox
from dealmail.delivery.queue import Claimed
from dealmail.delivery.recording import Recorder
from dealmail.delivery.sending import run_sender
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
SWITCH_INTERVAL = 0.0001


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
            threading.Thread(target=run_sender, args=(self, n), name=f"sender-{n}", daemon=True)
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
                release_outbox(self, session)
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
            compose_returned(self, session)
            if (
                self.outbox.qsize() + self.composing < self.batch_size
                and self.limits.connections > 0
                and not self.rate_exhausted()
            ):
                claimed = message_queue.claim(
                    session, self.name, self.batch_size, self.lease_seconds, self.settings
                )
                if claimed:
                    prepare(self, session, reader, claimed)
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
        backend = self.make_backend()
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

    def make_backend(self) -> Backend:
        if self._backend_factory is not None:
            return self._backend_factory()
        return get_backend(self.settings, self._backend_name)

    # -- composing ------------------------------------------------------------------------

    def rate_exhausted(self) -> bool:
        return self.next_free is not None and self.next_free > utcnow()
