"""What every screen shares: a database session, the login guard, error display, formatting."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import streamlit as st
from sqlalchemy.orm import Session

from dealmail.config import Settings, get_settings
from dealmail.db import get_engine, read_only, session_scope
from dealmail.errors import DomainError

USER_KEY = "dealmail_user"
FLASH_KEY = "dealmail_flash"
T = TypeVar("T")


def settings() -> Settings:
    return get_settings()


@contextmanager
def db() -> Iterator[Session]:
    """A session for a service that writes; services commit, this closes."""
    with session_scope(get_engine(settings())) as session:
        yield session


@contextmanager
def reading() -> Iterator[Session]:
    """A session for reads only. On SQLite it begins DEFERRED, so a screen drawing a report
    never holds the write lock that the worker and the scanner need."""
    with session_scope(read_only(get_engine(settings()))) as session:
        yield session


def current_user() -> str | None:
    """The logged-in user: this browser tab's, else the one its remembered-login cookie names."""
    user = st.session_state.get(USER_KEY)
    if isinstance(user, str):
        return user
    from dealmail.admin.remember import user_from_cookie

    remembered = user_from_cookie()
    if remembered is not None:
        st.session_state[USER_KEY] = remembered
    return remembered


def require_login() -> str:
    """The logged-in user; otherwise show the login form and stop the screen here.

    The router already shows only the login form to a visitor; this guard makes each screen
    safe on its own too (AppTest, for one, runs a page file directly).
    """
    user = current_user()
    if user is None:
        from dealmail.admin.auth import login_form

        login_form()
        st.stop()
        raise RuntimeError("unreachable: st.stop() ends the script run")
    from dealmail.admin.auth import logout_button
    from dealmail.admin.remember import send_ticket

    logout_button(user)
    send_ticket()
    show_flash()
    return user


def attempt(action: Callable[[], T], success: str | None = None) -> T | None:
    """Run one service call; a refusal is shown as the service's own message, not a traceback.

    With `success`, the screen reruns so every list on it shows the change, and the message is
    shown once at the top.
    """
    try:
        result = action()
    except DomainError as exc:
        st.error(f"{exc.message}", icon="⚠️")
        return None
    if success:
        st.session_state[FLASH_KEY] = success
        st.rerun()
    return result


def show_flash() -> None:
    message = st.session_state.pop(FLASH_KEY, None)
    if message:
        st.success(message, icon="✅")


def local_time(value: datetime | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(zone).strftime(fmt) if value is not None else "—"


def email_frame(html: str, width: int | None = None, height: int = 900) -> None:
    """Show an email's HTML isolated: a data: URL frame has an opaque origin, so nothing in the
    email (a received message is untrusted) can reach the dashboard around it."""
    encoded = base64.b64encode(html.encode("utf-8")).decode("ascii")
    st.iframe(
        f"data:text/html;charset=utf-8;base64,{encoded}", width=width or "stretch", height=height
    )


def table(rows: list[dict[str, Any]], empty: str = "Nothing yet.") -> None:
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.caption(empty)
