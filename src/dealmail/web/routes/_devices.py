"""Web plumbing shared by the scanner pages and the device API: credentials, client IP, DB calls.

Endpoints are `async def` and run their short database transaction directly on the event loop
when the database is SQLite (well under a millisecond; the threadpool's queueing is what made tail
latency explode in our measurements), and in a worker thread on PostgreSQL, whose network round
trips must not stall the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from ipaddress import ip_address
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response

from dealmail.config import Settings
from dealmail.coupons.prepared import HotConnection, Runner
from dealmail.db import is_sqlite
from dealmail.locations.service import DeviceInfo, authenticate_device
from dealmail.security import hmac_hex

DEVICE_COOKIE = "dealmail_device"
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers accept
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

T = TypeVar("T")


async def run_db(state: Any, work: Callable[..., T], *args: Any) -> T:
    """Run `work(session, *args)` in a fresh session; see the module docstring for where."""
    factory: sessionmaker[Session] = state.sessionmaker

    def call() -> T:
        with factory() as session:
            return work(session, *args)

    inline = getattr(state, "db_inline", None)
    if inline is None:
        inline = state.db_inline = is_sqlite(state.engine)
    if inline:
        return call()
    return await anyio.to_thread.run_sync(partial(call))


async def run_hot(state: Any, work: Callable[[Session | Runner], T]) -> T:
    """`run_db` for the scanner's hot path (validate, redeem): on SQLite `work` gets a `Runner` on
    the app's kept connection in BEGIN IMMEDIATE, without a Session (whose bookkeeping cost more
    than the SQL); elsewhere a Session in a worker thread, as `run_db`."""
    inline = getattr(state, "db_inline", None)
    if inline is None:
        inline = state.db_inline = is_sqlite(state.engine)
    if not inline:
        return await run_db(state, work)
    hot: HotConnection | None = getattr(state, "hot_connection", None)
    if hot is None:
        hot = state.hot_connection = HotConnection(state.engine)
    with hot.transaction() as runner:
        return work(runner)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def cookie_device(session: Session, request: Request) -> DeviceInfo | None:
    return authenticate_device(session, request.cookies.get(DEVICE_COOKIE))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cookie_must_be_secure(request: Request) -> bool:
    """Secure everywhere except plain http on this machine (dev), where browsers would drop it."""
    return request.url.scheme == "https" or not _is_loopback(request.url.hostname or "")


def set_device_cookie(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        DEVICE_COOKIE,
        key,
        max_age=DEVICE_COOKIE_MAX_AGE,
        path="/",
        secure=cookie_must_be_secure(request),
        httponly=True,
        samesite="lax",
    )


def csrf_token(settings: Settings, device: DeviceInfo) -> str:
    """Stateless per-device CSRF token: only pages served to this device can carry it."""
    return hmac_hex(settings.secret_key_bytes(), "scanner-csrf", str(device.id))
