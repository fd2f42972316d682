"""Inbox: every email the dev inbox received, rendered with its QR (cid: images inlined here)."""

from __future__ import annotations

import streamlit as st

from dealmail.admin._ui import attempt, email_frame, require_login, settings, table
from dealmail.delivery.backends import backend_name
from dealmail.delivery.devinbox import get_message, list_messages

PAGE_SIZE = 200


def main() -> None:
    require_login()
    st.title("Inbox")
    config = settings()
    st.caption(
        "Every email sent through the dev inbox backend lands here instead of a real mailbox."
        + (
            ""
            if config.email_backend == "devinbox"
            else f" (This server sends through {backend_name(config)}.)"
        )
    )
    if st.button("Refresh", key="inbox_refresh"):
        st.rerun()
    entries = list_messages(config, limit=PAGE_SIZE)
    if not entries:
        st.info("No email yet. Send a test or a campaign.")
        return
    labels = {
        entry.id: f"{entry.received_at:%H:%M:%S} · {', '.join(entry.recipients)} · {entry.subject}"
        for entry in entries
    }
    table(
        [
            {
                "received (UTC)": entry.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                "to": ", ".join(entry.recipients),
                "subject": entry.subject,
            }
            for entry in entries
        ]
    )
    chosen = st.selectbox(
        "Open", list(labels), format_func=lambda key: labels[key], key="inbox_message"
    )
    message = attempt(lambda: get_message(config, chosen))
    if message is None:
        return
    st.markdown(f"**{message.entry.subject}** — to {', '.join(message.entry.recipients)}")
    rendered, text, headers = st.tabs(["Rendered", "Text", "Headers"])
    with rendered:
        html = message.html_with_images()
        if html is None:
            st.caption("This email has no HTML part.")
        else:
            email_frame(html)
    with text:
        st.code(message.text or "", language=None)
    with headers:
        st.table([{"header": key, "value": value} for key, value in message.headers])


main()
