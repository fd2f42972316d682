"""Scale-out on PostgreSQL: four worker processes share 10,000 messages, each sent exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.delivery import control
from dealmail.models import AttemptLog, Message
from delivery_support import (
    SMALL_TEMPLATE,
    Sink,
    add_campaign,
    add_customers,
    ready_shop,
    start_worker,
    worker_env,
)

MESSAGES = 10_000
WORKERS = 4


def test_four_workers_send_each_message_exactly_once(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    if not settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("scale-out is the PostgreSQL story (SKIP LOCKED); SQLite runs one machine")
    ready_shop(session)
    add_customers(session, MESSAGES)
    campaign = add_campaign(session, status="draft", html_template=SMALL_TEMPLATE)
    control.send_campaign(session, campaign.name, settings)
    with Sink() as sink:
        env = worker_env(settings, sink.port, DEALMAIL_WORKER_BATCH_SIZE="50")
        workers = [
            start_worker(env, tmp_path / f"w{n}.log", "--until-idle") for n in range(WORKERS)
        ]
        codes = [worker.wait(timeout=280) for worker in workers]
        received = sink.handler.by_recipient()
    assert codes == [0] * WORKERS
    assert len(received) == MESSAGES
    assert all(len(copies) == 1 for copies in received.values())
    by_worker = dict(
        session.execute(
            select(AttemptLog.worker, func.count())
            .where(AttemptLog.outcome == "sent")
            .group_by(AttemptLog.worker)
        ).all()
    )
    assert len(by_worker) == WORKERS, by_worker
    assert sum(by_worker.values()) == MESSAGES
    sent = session.scalar(select(func.count()).select_from(Message).where(Message.status == "sent"))
    assert sent == MESSAGES
    assert control.campaign_status(session, campaign.name)["status"] == "sent"
