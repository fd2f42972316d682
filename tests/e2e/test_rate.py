"""Rate test: three worker processes, a limit of 50 a second, counted at the receiving server."""

from __future__ import annotations

import bisect
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.delivery import control
from dealmail.models import Message, SendLog
from dealmail.shop import set_settings
from delivery_support import (
    Sink,
    add_campaign,
    add_customers,
    ready_shop,
    start_worker,
    worker_env,
)

LIMIT = 50
RECIPIENTS = 400
WORKERS = 3


def busiest_window(times: list[float], width: float) -> int:
    """The most arrivals in any window [t, t + width) (the busiest one starts at an arrival)."""
    ordered = sorted(times)
    return max(bisect.bisect_left(ordered, t + width) - i for i, t in enumerate(ordered))


def test_no_second_at_the_server_holds_more_than_the_limit(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    if settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("runs on SQLite; PostgreSQL's limiter lock: test_delivery_rate_limiter")
    ready_shop(session)
    set_settings(session, {"rate_per_second": LIMIT})
    add_customers(session, RECIPIENTS)
    campaign = add_campaign(session, status="draft")
    control.send_campaign(session, campaign.name, settings)
    with Sink() as sink:
        # Small claims, so every worker keeps competing for slots to the end.
        env = worker_env(settings, sink.port, DEALMAIL_WORKER_BATCH_SIZE="10")
        workers = [
            start_worker(env, tmp_path / f"w{n}.log", "--until-idle") for n in range(WORKERS)
        ]
        for worker in workers:
            assert worker.wait(timeout=180) == 0
        arrivals = [m.at for m in sink.handler.received]
    assert len(arrivals) == RECIPIENTS
    busiest = busiest_window(arrivals, 1.0)
    assert busiest <= LIMIT
    # The limit was actually reached (else this test would prove nothing).
    assert busiest >= LIMIT * 0.8, busiest
    senders = session.scalars(select(func.count(func.distinct(SendLog.worker)))).one()
    assert senders >= 2, "several workers competed for the same slots"
    sent = session.scalar(select(func.count()).select_from(Message).where(Message.status == "sent"))
    assert sent == RECIPIENTS


def test_busiest_window() -> None:
    assert busiest_window([0.0, 0.5, 0.99, 1.0, 1.2], 1.0) == 4  # 0.5 to 1.2
    assert busiest_window([0.0, 1.0, 2.0], 1.0) == 1
