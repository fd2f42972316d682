"""The rate limiter against the database: reservations, giving slots back, concurrent workers."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dealmail.db import session_factory
from dealmail.delivery import rate
from dealmail.delivery.rate import GUARD_SECONDS, Window
from dealmail.models import SendLog


def test_a_full_window_grants_nothing_until_a_slot_is_given_back(session: Session) -> None:
    windows = [Window(1.0, 3)]
    first = rate.reserve(session, 5, windows, "w1")
    assert len(first.delays) == 3
    assert all(abs(d) < 0.01 for d in first.delays)
    assert len(first.ids) == 3
    refused = rate.reserve(session, 1, windows, "w2")
    assert refused.delays == []
    assert 0.9 < refused.retry_in <= 1.0 + GUARD_SECONDS + 0.01
    again = rate.reserve(session, 1, windows, "w1", give_back=[first.ids[0]])
    assert len(again.delays) == 1
    assert session.scalar(select(func.count()).select_from(SendLog)) == 3


def test_prune_forgets_old_sends(session: Session) -> None:
    rate.reserve(session, 2, [Window(1.0, 10)], "w1")
    assert rate.prune(session, [Window(1.0, 10)]) == 0
    from datetime import timedelta

    from dealmail.models import utcnow

    assert rate.prune(session, [Window(1.0, 10)], now=utcnow() + timedelta(days=2)) == 2


def test_concurrent_reservations_never_overfill_a_window(engine: Engine) -> None:
    windows = [Window(1.0, 20)]
    factory = session_factory(engine)
    errors: list[BaseException] = []
    calls: dict[str, int] = {}
    stop = time.monotonic() + 2.5

    def reserve_repeatedly(name: str) -> None:
        try:
            with factory() as own:
                while time.monotonic() < stop:
                    reservation = rate.reserve(own, 4, windows, name)
                    calls[name] = calls.get(name, 0) + 1
                    if not reservation.delays:
                        time.sleep(min(reservation.retry_in, 0.05))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=reserve_repeatedly, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with factory() as own:
        times = sorted(t.timestamp() for t in own.scalars(select(SendLog.at)))
    # All four asked during the same 2.5 s; which of them won slots is up to the lock (SQLite's
    # is not fair), so the test checks competition, not who was served.
    assert sorted(calls) == ["w0", "w1", "w2", "w3"]
    assert len(times) >= 40  # two full windows at least were granted
    for i in range(len(times) - 20):
        assert times[i + 20] - times[i] >= 1.0 + GUARD_SECONDS - 1e-5
