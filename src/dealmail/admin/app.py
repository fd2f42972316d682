"""The dashboard's entry point: login, then one page per screen (st.navigation)."""

from __future__ import annotations

import streamlit as st

from dealmail.admin._ui import current_user
from dealmail.admin.auth import login_form
from dealmail.admin.menu import SCREENS, SCREENS_DIR


def main() -> None:
    st.set_page_config(page_title="dealmail", page_icon=":material/local_offer:", layout="wide")
    pages = [
        st.Page(SCREENS_DIR / file, title=title, icon=icon, default=file == "home.py")
        for file, title, icon in SCREENS
    ]
    logged_in = current_user() is not None
    page = st.navigation(pages, position="sidebar" if logged_in else "hidden")
    if not logged_in:
        # Whatever page the address names, nothing of it runs before a login.
        login_form()
        return
    page.run()  # each screen starts with require_login(), which adds the logout button


main()
