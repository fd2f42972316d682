"""Whether a remembered dashboard login still counts, and the route that remembers one, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from dealmail import accounts, login_tokens
from dealmail.admin.remember import COOKIE, SESSION_PATH
from dealmail.admin.session_route import open_session
from dealmail.config import Settings
from dealmail.models import AdminUser, utcnow

PASSWORD = "correct-horse-battery"


def test_a_login_counts_until_logout(session: Session) -> None:
    accounts.add_user(session, "owner", PASSWORD)
    logged_in_at = utcnow()
    assert accounts.remembered_user(session, "owner", logged_in_at) == "owner"
    accounts.end_sessions(session, "owner")
    assert accounts.remembered_user(session, "owner", logged_in_at) is None
    assert accounts.remembered_user(session, "owner", utcnow() + timedelta(seconds=1)) == "owner"


def test_a_password_change_or_reset_ends_earlier_logins(session: Session) -> None:
    accounts.add_user(session, "owner", PASSWORD)
    before_change = utcnow()
    accounts.change_password(session, "owner", PASSWORD, "a-new-long-password")
    assert accounts.remembered_user(session, "owner", before_change) is None
    after_change = utcnow()
    assert accounts.remembered_user(session, "owner", after_change) == "owner"
    accounts.reset_password(session, "owner")
    assert accounts.remembered_user(session, "owner", after_change) is None


def test_unknown_or_disabled_users_are_not_remembered(session: Session) -> None:
    assert accounts.remembered_user(session, "nobody", utcnow()) is None
    accounts.add_user(session, "owner", PASSWORD)
    user = session.query(AdminUser).filter_by(username="owner").one()
    user.disabled = True
    session.commit()
    assert accounts.remembered_user(session, "owner", utcnow()) is None


def _client() -> TestClient:
    return TestClient(Starlette(routes=[Route(SESSION_PATH, open_session, methods=["POST"])]))


def test_the_route_trades_a_fresh_ticket_for_an_httponly_cookie(settings: Settings) -> None:
    secret = settings.secret_key_bytes()
    login = login_tokens.Login("owner", utcnow())
    ticket = login_tokens.issue(secret, login_tokens.TICKET, login)
    response = _client().post(SESSION_PATH, content=ticket)
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=43200"):
        assert attribute in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    token = response.cookies[COOKIE]
    assert login_tokens.read(secret, login_tokens.SESSION, token, utcnow()) == login


def test_the_route_refuses_stale_forged_or_oversized_tickets(settings: Settings) -> None:
    secret = settings.secret_key_bytes()
    stale = login_tokens.issue(
        secret, login_tokens.TICKET, login_tokens.Login("owner", utcnow() - timedelta(minutes=2))
    )
    session_token = login_tokens.issue(
        secret, login_tokens.SESSION, login_tokens.Login("owner", utcnow())
    )
    client = _client()
    for body in (stale, session_token, "forged.token", "x" * 5000, ""):
        response = client.post(SESSION_PATH, content=body)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_ticket"
        assert "set-cookie" not in response.headers
    assert client.get(SESSION_PATH).status_code == 405  # no GET sets anything
