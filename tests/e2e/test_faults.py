"""Fault test: a server that defers 20 %, drops 5 % of connections and bounces named addresses.

Named addresses also lose their connection twice in a row: a drop on a reused connection is
retried at once on a fresh one, so only the second drop reaches the queue as a deferral.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.contacts.consent import is_suppressed
from dealmail.delivery import control
from dealmail.models import AttemptLog, Campaign, Customer, Message
from delivery_support import (
    RecordingHandler,
    Sink,
    add_campaign,
    add_customers,
    ready_shop,
    start_worker,
    worker_env,
)

RECIPIENTS = 400
BOUNCING = {f"c{n:06d}@example.com" for n in (3, 77, 150, 222, 399)}
DROPPED_TWICE = {f"c{n:06d}@example.com" for n in (10, 200, 300)}


class FaultyHandler(RecordingHandler):
    """421/451 to 20 % of messages, a dropped connection for 5 %, 550 5.1.1 to named addresses."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.faults = {"421": 0, "451": 0, "drop": 0, "550": 0}
        self.forced_drops: dict[str, int] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in BOUNCING:
            self.faults["550"] += 1
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.rng_lock:
            roll = self.rng.random()
            forced = [
                address
                for address in envelope.rcpt_tos
                if address in DROPPED_TWICE and self.forced_drops.get(address, 0) < 2
            ]
            for address in forced:
                self.forced_drops[address] = self.forced_drops.get(address, 0) + 1
        if forced or roll < 0.05:
            self.faults["drop"] += 1
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        if roll < 0.15:
            self.faults["421"] += 1
            return "421 4.7.0 Try again later, closing connection"
        if roll < 0.25:
            self.faults["451"] += 1
            return "451 4.3.0 Temporary local problem, please try again"
        return await super().handle_DATA(server, session, envelope)


def test_every_deliverable_message_gets_through_a_faulty_server(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    if settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("the fault test runs on SQLite; the queue's PostgreSQL path has its own tests")
    ready_shop(session)
    add_customers(session, RECIPIENTS)
    campaign = add_campaign(session, status="draft")
    control.send_campaign(session, campaign.name, settings)
    handler = FaultyHandler(seed=4)
    log = tmp_path / "worker.log"
    with Sink(handler) as sink:
        env = worker_env(
            settings,
            sink.port,
            DEALMAIL_RETRY_BASE_SECONDS="0.2",
            DEALMAIL_SMTP_CONNECTIONS="2",
        )
        for _run in range(6):  # --until-idle stops when the next retry is a while away
            assert start_worker(env, log, "--until-idle").wait(timeout=180) == 0
            if control.campaign_status(session, campaign.name)["status"] == "sent":
                break
        received = handler.by_recipient()

    assert all(handler.faults.values()), handler.faults  # every kind of fault happened
    assert handler.forced_drops == dict.fromkeys(DROPPED_TWICE, 2)
    deliverable = {f"c{n:06d}@example.com" for n in range(RECIPIENTS)} - BOUNCING
    assert set(received) == deliverable
    assert all(len(copies) == 1 for copies in received.values())
    session.expire_all()
    rows = {m.email: m for m in session.scalars(select(Message))}
    assert {e for e, m in rows.items() if m.status == "sent"} == deliverable
    assert {e for e, m in rows.items() if m.status == "bounced"} == BOUNCING
    for address in BOUNCING:
        assert is_suppressed(session, address)
        customer = session.scalar(select(Customer).where(Customer.email == address))
        assert customer is not None
        assert customer.status == "bounced"
        assert "5.1.1" in (rows[address].last_error or "")
    # Every attempt is on record: as many rows as the messages' attempt counters say.
    attempts = session.scalar(select(func.count()).select_from(AttemptLog))
    assert attempts == sum(m.attempts for m in rows.values())
    retried = session.execute(
        select(AttemptLog.code, func.count())
        .where(AttemptLog.outcome == "deferred")
        .group_by(AttemptLog.code)
    ).all()
    codes = {code for code, _n in retried}
    assert {"421 4.7.0", "451 4.3.0", "connection"} <= codes, codes
    assert sum(n for _code, n in retried) >= handler.faults["451"]
    finished = session.get(Campaign, campaign.id)
    assert finished is not None
    assert finished.status == "sent"
