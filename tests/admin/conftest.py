"""Dashboard tests drive the real Streamlit script with AppTest, on SQLite (the screens hold no
SQL of their own: the services they call are tested on both databases elsewhere)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from admin_support import PASSWORD
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from dealmail import accounts
from dealmail.admin._ui import USER_KEY
from dealmail.db import dispose_engine, read_only, session_scope

APP = Path(__file__).resolve().parents[2] / "src" / "dealmail" / "admin" / "app.py"

TIMEOUT = 60


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    target = tmp_path / "data" / "dealmail.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sqlite_template, target)
    url = f"sqlite:///{target}"
    yield url
    dispose_engine(url)


@pytest.fixture
def admin_user(session: Session) -> str:
    accounts.add_user(session, "owner", PASSWORD)
    return "owner"


@pytest.fixture
def app(settings: object) -> AppTest:
    """The dashboard, not logged in."""
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.fixture
def open_page(settings: object, admin_user: str) -> Callable[[str], AppTest]:
    """A logged-in dashboard showing the screen file `name` (e.g. "reports.py")."""

    def _open(name: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.session_state[USER_KEY] = admin_user
        at.run()
        at.switch_page(f"screens/{name}")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


@pytest.fixture
def reading(engine: Engine) -> Callable[[], AbstractContextManager[Session]]:
    """Short read-only sessions for checks between clicks: a long-lived test session would
    keep SQLite's write lock (BEGIN IMMEDIATE) and block the screen's own writes."""

    def _open() -> AbstractContextManager[Session]:
        return session_scope(read_only(engine))

    return _open
