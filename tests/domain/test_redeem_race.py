"""Concurrency: 16 clients redeem the same coupon at once, 100 rounds, on SQLite and PostgreSQL.

Each client is a thread with its own session and connection calling the redeem service, released
together by a barrier, so the conditional UPDATE is what keeps the count right.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dealmail.config import Settings
from dealmail.coupons import redeem
from dealmail.coupons.verdicts import Answer
from dealmail.db import make_engine, session_factory
from dealmail.locations.service import DeviceInfo
from dealmail.models import Coupon, Redemption
from support_redeem import make_coupon, make_deal, make_device, make_location

CLIENTS = 16
ROUNDS = 100


@pytest.fixture
def race_engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.resolved_database_url, pool_size=CLIENTS, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def tills(session: Session) -> list[DeviceInfo]:
    make_location(session)
    return [make_device(session, f"Till {n}").device for n in range(CLIENTS)]


def _race(
    engine: Engine,
    secret: bytes,
    tills: list[DeviceInfo],
    token: str,
    pool: ThreadPoolExecutor,
    key: str | None = None,
    same_device: bool = False,
) -> list[Answer]:
    factory = session_factory(engine)
    barrier = threading.Barrier(CLIENTS)

    def attempt(client: int) -> Answer:
        device = tills[0] if same_device else tills[client]
        with factory() as session:
            barrier.wait()
            return redeem.redeem(session, secret, device, token, idempotency_key=key)

    return list(pool.map(attempt, range(CLIENTS)))


@pytest.mark.parametrize("max_uses", [1, 3])
def test_exactly_max_uses_succeed_each_round(
    settings: Settings,
    session: Session,
    race_engine: Engine,
    tills: list[DeviceInfo],
    max_uses: int,
) -> None:
    secret = settings.secret_key_bytes()
    deal = make_deal(session)
    coupons = [make_coupon(session, secret, deal, max_uses=max_uses) for _ in range(ROUNDS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        for coupon in coupons:
            answers = _race(race_engine, secret, tills, coupon.token, pool)
            statuses = Counter(answer.status_code for answer in answers)
            assert statuses == {201: max_uses, 409: CLIENTS - max_uses}
    session.expire_all()
    assert set(session.scalars(select(Coupon.uses))) == {max_uses}
    assert session.scalar(select(func.count()).select_from(Redemption)) == ROUNDS * max_uses


def test_concurrent_retries_with_one_key_redeem_once(
    settings: Settings, session: Session, race_engine: Engine, tills: list[DeviceInfo]
) -> None:
    secret = settings.secret_key_bytes()
    deal = make_deal(session)
    with ThreadPoolExecutor(CLIENTS) as pool:
        for round_number in range(10):
            coupon = make_coupon(session, secret, deal, max_uses=3)
            key = f"retry-{round_number}"
            answers = _race(race_engine, secret, tills, coupon.token, pool, key, same_device=True)
            assert {answer.status_code for answer in answers} == {201}
            assert len({answer.body["redemption"]["id"] for answer in answers}) == 1
            session.expire_all()
            stored = session.get(Coupon, coupon.id)
            assert stored is not None
            assert stored.uses == 1
