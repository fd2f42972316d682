"""Every screen needs a login, checked against the admin users and slowed after failures."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from admin_support import PASSWORD, errors, submit, texts
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from dealmail import accounts, login_tokens
from dealmail.admin._ui import USER_KEY
from dealmail.admin.menu import SCREENS
from dealmail.admin.remember import SESSION_PATH
from dealmail.cli import app as cli
from dealmail.cli.admin import APP_FILE, streamlit_argv
from dealmail.config import get_settings, reset_settings_cache
from dealmail.models import utcnow

Reading = Callable[[], AbstractContextManager[Session]]


def _home(app: AppTest) -> AppTest:
    """The home screen, logged out (AppTest runs the router once, then the page file itself)."""
    app.run()
    app.switch_page("screens/home.py")
    return app.run()


def _login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    return submit(at, "Log in")


@pytest.mark.parametrize("page", [file for file, _title, _icon in SCREENS])
def test_every_page_shows_only_the_login_form(app: AppTest, admin_user: str, page: str) -> None:
    app.run()
    app.switch_page(f"screens/{page}")
    app.run()
    assert not app.exception
    assert [t.value for t in app.title] == ["dealmail"]
    assert [w.label for w in app.text_input] == ["User name", "Password"]
    assert [b.label for b in app.button] == ["Log in"]
    assert not app.subheader
    assert not app.metric
    assert not app.dataframe


def test_login_then_logout(app: AppTest, admin_user: str) -> None:
    _home(app)
    _login(app, admin_user, PASSWORD)
    assert app.session_state[USER_KEY] == admin_user
    assert [t.value for t in app.title] == ["My Shop"]  # the home screen
    assert "Logged in as **owner**" in texts(app)
    app.sidebar.button(key="logout").click()
    app.run()
    assert [w.label for w in app.text_input] == ["User name", "Password"]
    assert [t.value for t in app.title] == ["dealmail"]


def test_wrong_password_is_refused(app: AppTest, admin_user: str) -> None:
    _home(app)
    _login(app, admin_user, "not the password")
    assert errors(app) == ["wrong user name or password"]
    assert USER_KEY not in app.session_state
    _login(app, "nobody", PASSWORD)
    assert errors(app) == ["wrong user name or password"]


def test_empty_fields_are_refused(app: AppTest, admin_user: str) -> None:
    _home(app)
    _login(app, "", "")
    assert errors(app) == ["Enter your user name and password."]


def test_repeated_failures_are_slowed_down(app: AppTest, admin_user: str) -> None:
    _home(app)
    for _ in range(3):
        _login(app, admin_user, "wrong wrong wrong")
    _login(app, admin_user, PASSWORD)  # even the right password waits now
    assert "too many failed attempts" in errors(app)[0]
    assert USER_KEY not in app.session_state


def test_dashboard_command_runs_streamlit_headless_on_the_admin_port(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALMAIL_ADMIN_PORT", "8765")
    reset_settings_cache()
    argv = streamlit_argv(get_settings().web_host, get_settings().admin_port)
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert Path(argv[4]) == APP_FILE
    assert APP_FILE.exists()
    options = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert options["--server.port"] == "8765"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"


def test_dashboard_command_refuses_an_uninitialised_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEALMAIL_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.delenv("DEALMAIL_DATABASE_URL", raising=False)
    reset_settings_cache()
    result = CliRunner().invoke(cli, ["admin"])
    reset_settings_cache()
    assert result.exit_code == 2
    assert "run `dealmail init` first" in result.output


def test_a_login_is_remembered_by_the_browser_until_logout(
    app: AppTest, admin_user: str, reading: Reading
) -> None:
    _home(app)
    _login(app, admin_user, PASSWORD)
    # The screen hands the browser a ticket to trade for the remembered-login cookie, once.
    scripts = [str(element.proto.body) for element in app.get("html")]
    assert len(scripts) == 1, scripts
    assert SESSION_PATH in scripts[0]
    ticket = re.search(r'"body": "([^"]+)"', scripts[0])
    assert ticket is not None, scripts[0]
    secret = get_settings().secret_key_bytes()
    login = login_tokens.read(secret, login_tokens.TICKET, ticket.group(1), utcnow())
    assert login is not None
    assert login.username == admin_user
    app.run()
    assert not app.get("html")
    with reading() as session:
        assert accounts.remembered_user(session, admin_user, login.at) == admin_user

    app.sidebar.button(key="logout").click()
    app.run()
    with reading() as session:
        assert accounts.remembered_user(session, admin_user, login.at) is None
