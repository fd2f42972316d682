"""Crash test: SIGKILL the worker five times mid-campaign; nothing is lost, duplicates are bounded.

A real aiosmtpd server in this process receives what real `python -m dealmail worker`
subprocesses send. Between kills, 100 customers whose messages are still queued unsubscribe:
the claim-time check means they get nothing at all.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.contacts.consent import apply_withdrawal
from dealmail.delivery import control
from dealmail.models import Campaign, Customer, Message
from delivery_support import (
    Sink,
    add_campaign,
    add_customers,
    ready_shop,
    start_worker,
    worker_env,
)

RECIPIENTS = 5_000
KILLS = 5
UNSUBSCRIBERS = 100


def _sending_by_dead_worker(session: Session) -> int:
    session.expire_all()
    count = session.scalar(
        select(func.count()).select_from(Message).where(Message.status == "sending")
    )
    session.rollback()
    return int(count or 0)


def _sent(session: Session) -> int:
    count = session.scalar(
        select(func.count()).select_from(Message).where(Message.status == "sent")
    )
    session.rollback()
    return int(count or 0)


def _unsubscribe_queued(session: Session, count: int) -> set[str]:
    """In one transaction: customers whose message is still queued withdraw consent."""
    queued = session.scalars(
        select(Customer)
        .join(Message, Message.customer_id == Customer.id)
        .where(Message.status == "queued")
        .order_by(func.random())
        .limit(count)
    ).all()
    for customer in queued:
        apply_withdrawal(session, customer, "unsubscribe", source="test: mid-campaign")
    emails = {c.email for c in queued}
    session.commit()
    return emails


def test_killing_the_worker_loses_nothing(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    if settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("the crash test runs on SQLite, the embedded default (scale-out covers PG)")
    rng = random.Random(20261128)
    ready_shop(session)
    add_customers(session, RECIPIENTS)
    campaign = add_campaign(session, status="draft")
    control.send_campaign(session, campaign.name, settings)
    log = tmp_path / "worker.log"
    in_flight_at_kills: list[int] = []
    unsubscribed: set[str] = set()
    with Sink() as sink:
        env = worker_env(
            settings, sink.port, DEALMAIL_LEASE_SECONDS="2", DEALMAIL_WORKER_BATCH_SIZE="50"
        )
        for kill in range(KILLS):
            before = _sent(session)
            worker = start_worker(env, log, "--until-idle")
            # Kill at a random moment once it is sending (not while it is still importing).
            deadline = time.monotonic() + 60
            while _sent(session) <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.05, 1.0))
            if kill == 2:
                unsubscribed = _unsubscribe_queued(session, UNSUBSCRIBERS)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            in_flight_at_kills.append(_sending_by_dead_worker(session))
        assert len(unsubscribed) == UNSUBSCRIBERS
        assert _sent(session) < RECIPIENTS - UNSUBSCRIBERS, "the kills came too late to matter"
        final = start_worker(env, log, "--until-idle")
        assert final.wait(timeout=240) == 0, log.read_text()[-3000:]
        received = sink.handler.by_recipient()

    expected = {f"c{n:06d}@example.com" for n in range(RECIPIENTS)} - unsubscribed
    assert set(received) == expected, "every eligible recipient got the email, nobody else did"
    duplicates = sum(len(copies) - 1 for copies in received.values())
    assert duplicates <= sum(in_flight_at_kills), (duplicates, in_flight_at_kills)
    session.expire_all()
    statuses = dict(
        session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
    )
    assert statuses == {"sent": RECIPIENTS - UNSUBSCRIBERS, "skipped": UNSUBSCRIBERS}
    finished = session.get(Campaign, campaign.id)
    assert finished is not None
    assert finished.status == "sent"


def test_sigterm_finishes_in_flight_and_releases_the_rest(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    if settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("runs on SQLite, the embedded default")
    from dealmail.shop import set_settings

    ready_shop(session)
    set_settings(session, {"rate_per_second": 10})  # slow, so SIGTERM lands mid-campaign
    add_customers(session, 60)
    campaign = add_campaign(session, status="draft")
    control.send_campaign(session, campaign.name, settings)
    with Sink() as sink:
        worker = start_worker(worker_env(settings, sink.port), tmp_path / "worker.log")
        deadline = time.monotonic() + 60
        while _sent(session) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        received = sink.handler.by_recipient()
    session.expire_all()
    rows = session.scalars(select(Message)).all()
    statuses = {m.status for m in rows}
    assert statuses == {"sent", "queued"}, "nothing left leased by the stopped worker"
    assert all(m.lease_owner is None for m in rows)
    sent = {m.email for m in rows if m.status == "sent"}
    assert sent == set(received)
    assert all(len(copies) == 1 for copies in received.values())
    assert 5 <= len(sent) < 60
