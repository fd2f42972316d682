"""Remembered dashboard logins: after a login the page trades a one-minute signed ticket for an
HttpOnly cookie (`server.py`), so a reload or a new tab finds the user again by that cookie
(a script run can read cookies but not set one)."""

from __future__ import annotations

import json

import streamlit as st

from dealmail import accounts, login_tokens
from dealmail.admin._ui import reading, settings
from dealmail.models import utcnow

COOKIE = "dealmail_admin"
SESSION_PATH = "/_dealmail/session"
TICKET_KEY = "dealmail_login_ticket"


def remember(username: str) -> None:
    """Have the next screen send the browser a ticket for this login."""
    login = login_tokens.Login(username, utcnow())
    ticket = login_tokens.issue(settings().secret_key_bytes(), login_tokens.TICKET, login)
    st.session_state[TICKET_KEY] = ticket


def send_ticket() -> None:
    ticket = st.session_state.pop(TICKET_KEY, None)
    if not isinstance(ticket, str):
        return
    request = {"method": "POST", "credentials": "same-origin", "body": ticket}
    script = f"fetch({json.dumps(SESSION_PATH)}, {json.dumps(request)});"
    # Our own constant text and a signed token of URL-safe characters: nothing user-supplied.
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def user_from_cookie() -> str | None:
    token = st.context.cookies.get(COOKIE)
    if not token:
        return None
    secret = settings().secret_key_bytes()
    login = login_tokens.read(secret, login_tokens.SESSION, token, utcnow())
    if login is None:
        return None
    with reading() as session:
        return accounts.remembered_user(session, login.username, login.at)
