"""The dashboard as an ASGI app (`dealmail admin` runs this file): Streamlit's own, plus the
route that turns a login ticket into the remembered-login cookie."""

from __future__ import annotations

import streamlit as st
from starlette.routing import Route

from dealmail.admin.remember import SESSION_PATH
from dealmail.admin.session_route import open_session

app = st.App("app.py", routes=[Route(SESSION_PATH, open_session, methods=["POST"])])
