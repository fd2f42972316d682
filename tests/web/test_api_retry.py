"""A real `dealmail web` server: the client sends a redeem and hangs up before the answer.

The server commits anyway; the retry with the same Idempotency-Key must get that first answer,
not `already_redeemed`, and the coupon must be used once.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from dealmail.db import make_engine, migrate, session_factory
from dealmail.models import Coupon
from support_redeem import make_coupon, make_deal, make_device, make_location


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Session, bytes]]:
    url = f"sqlite:///{tmp_path / 'dealmail.db'}"
    secret = secrets.token_urlsafe(48)
    migrate(url)
    engine = make_engine(url)
    session = session_factory(engine)()
    port = _free_port()
    env = os.environ | {
        "DEALMAIL_DATA_DIR": str(tmp_path),
        "DEALMAIL_DATABASE_URL": url,
        "DEALMAIL_SECRET_KEY": secret,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "dealmail", "web", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "dealmail web did not start"
            time.sleep(0.2)
        yield base, session, secret.encode()
    finally:
        server.terminate()
        server.wait(timeout=10)
        session.close()
        engine.dispose()


def _send_and_hang_up(base: str, key: str, idempotency_key: str, code: str) -> None:
    body = json.dumps({"code": code}).encode()
    host, port = base.removeprefix("http://").split(":")
    request = (
        f"POST /api/v1/redemptions HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {key}\r\nIdempotency-Key: {idempotency_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)  # and never read the answer


def test_retry_after_the_answer_was_lost_returns_the_committed_answer(
    live: tuple[str, Session, bytes],
) -> None:
    base, session, secret = live
    make_location(session)
    key = make_device(session).key
    coupon = make_coupon(session, secret, make_deal(session))
    session.rollback()
    _send_and_hang_up(base, key, "lost-answer-1", coupon.token)

    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 10
    while not httpx.get(f"{base}/api/v1/redemptions", headers=headers).json()["items"]:
        assert time.monotonic() < deadline, "the first request was never committed"
        time.sleep(0.1)
    committed = httpx.get(f"{base}/api/v1/redemptions", headers=headers).json()["items"][0]

    retry = httpx.post(
        f"{base}/api/v1/redemptions",
        json={"code": coupon.token},
        headers=headers | {"Idempotency-Key": "lost-answer-1"},
    )
    assert retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["redemption"]["id"] == committed["id"]
    fresh = httpx.post(
        f"{base}/api/v1/redemptions",
        json={"code": coupon.token},
        headers=headers | {"Idempotency-Key": "a-new-attempt"},
    )
    assert fresh.status_code == 409
    session.expire_all()
    stored = session.get(Coupon, coupon.id)
    assert stored is not None
    assert stored.uses == 1
