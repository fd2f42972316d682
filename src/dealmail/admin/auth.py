"""Login form (argon2, throttled by `accounts.authenticate`) and logout; kept in session state
and remembered by a cookie (`remember.py`) that logging out revokes."""

from __future__ import annotations

import streamlit as st

from dealmail import accounts
from dealmail.admin._ui import USER_KEY, attempt, db
from dealmail.admin.remember import remember


def login_form() -> None:
    st.title("dealmail")
    st.caption("Log in to manage your shop's campaigns.")
    with st.form("login"):
        username = st.text_input("User name", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    if not username or not password:
        st.error("Enter your user name and password.")
        return
    with db() as session:
        user = attempt(lambda: accounts.authenticate(session, username.strip(), password))
    if user is not None:
        st.session_state[USER_KEY] = user.username
        remember(user.username)
        st.rerun()


def logout_button(user: str) -> None:
    st.sidebar.caption(f"Logged in as **{user}**")
    if st.sidebar.button("Log out", key="logout"):
        with db() as session:
            accounts.end_sessions(session, user)
        for key in list(st.session_state.keys()):
            del st.session_state[key]
        st.rerun()
