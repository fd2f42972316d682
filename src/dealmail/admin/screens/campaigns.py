"""Campaigns: create and edit, preview at phone and desktop width, preflight, test send,
send now or schedule, pause / resume / cancel, live progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import streamlit as st

from dealmail.admin import campaign_audience
from dealmail.admin._ui import (
    FLASH_KEY,
    attempt,
    db,
    email_frame,
    local_time,
    reading,
    require_login,
    settings,
)
from dealmail.campaigns.preflight import run_preflight
from dealmail.campaigns.preview import preview_html, send_test
from dealmail.campaigns.render import available_themes
from dealmail.campaigns.service import (
    CampaignInput,
    create_campaign,
    describe_campaign,
    edit_campaign,
    get_campaign,
    list_campaigns,
)
from dealmail.contacts.queries import counts_by_tag
from dealmail.contacts.segments import list_segments
from dealmail.deals.service import list_deals
from dealmail.delivery import control
from dealmail.models import CampaignStatus
from dealmail.shop import get_shop_settings

NEW = "➕ New campaign"
NO_DEAL = "(no deal)"
CUSTOM_HTML = "Custom HTML"
PHONE_WIDTH, DESKTOP_WIDTH = 380, 720
PROGRESS_SECONDS = 2.0


def _form(existing: dict[str, Any] | None, choices: dict[str, list[str]]) -> None:
    deals, themes = choices["deals"], available_themes()
    creating = existing is None
    values = existing or {}

    def k(field: str) -> str:
        """Widget keys per campaign, so opening another campaign shows its own values."""
        return field if creating else f"{field}:{values['name']}"

    with st.form("campaign_form"):
        name = st.text_input("Name", values.get("name", ""), disabled=not creating, key=k("c_name"))
        subject = st.text_input("Subject", values.get("subject") or "", key=k("c_subject"))
        preheader = st.text_input(
            "Preheader (preview text)", values.get("preheader") or "", key=k("c_pre")
        )
        deal_options = [NO_DEAL, *deals]
        deal = st.selectbox(
            "Deal",
            deal_options,
            index=deal_options.index(values["deal"]) if values.get("deal") in deal_options else 0,
            key=k("c_deal"),
        )
        audience = campaign_audience.picker(
            values.get("audience") or {},
            choices["segments"],
            choices["tags"],
            suffix="" if creating else f":{values['name']}",
        )
        template_options = [*themes, CUSTOM_HTML]
        template = values.get("template") or (themes[0] if themes else CUSTOM_HTML)
        template = CUSTOM_HTML if template == "custom HTML" else template
        chosen_template = st.selectbox(
            "Template",
            template_options,
            index=template_options.index(template) if template in template_options else 0,
            key=k("c_template"),
        )
        html = st.text_area(
            "Custom HTML (Jinja placeholders; must contain {{ unsubscribe_url }})",
            values.get("html_template") or "",
            key=k("c_html"),
            height=150,
        )
        heading = st.text_input("Heading", values.get("heading") or "", key=k("c_heading"))
        body = st.text_area("Body (Markdown)", values.get("body_markdown") or "", key=k("c_body"))
        left, right = st.columns(2)
        image_url = left.text_input(
            "Image URL (optional)", values.get("image_url") or "", key=k("c_img")
        )
        image_alt = right.text_input(
            "Image description", values.get("image_alt") or "", key=k("c_alt")
        )
        button_text = left.text_input(
            "Button text", values.get("button_text") or "", key=k("c_btn")
        )
        button_url = right.text_input(
            "Button link", values.get("button_url") or "", key=k("c_btn_url")
        )
        from_name = left.text_input(
            "From name (empty: shop's)", values.get("from_name") or "", key=k("c_from")
        )
        from_email = right.text_input(
            "From address (empty: shop's)", values.get("from_email") or "", key=k("c_from_email")
        )
        reply_to = st.text_input(
            "Reply-to (optional)", values.get("reply_to") or "", key=k("c_reply")
        )
        submitted = st.form_submit_button(
            "Create campaign" if creating else "Save changes", type="primary"
        )
    if not submitted:
        return
    custom = chosen_template == CUSTOM_HTML
    data = CampaignInput(
        subject=subject,
        preheader=preheader,
        deal="" if deal == NO_DEAL else deal,
        audience=audience,
        theme=None if custom else chosen_template,
        html_template=html if custom else None,
        heading=heading,
        body_markdown=body,
        image_url=image_url,
        image_alt=image_alt,
        button_text=button_text,
        button_url=button_url,
        from_name=from_name,
        from_email=from_email,
        reply_to=reply_to,
    )
    if custom and not html.strip():
        st.error("Paste the custom HTML, or choose a built-in template.")
        return
    with db() as session:
        if creating:
            done = attempt(lambda: create_campaign(session, name.strip(), data))
            if done is not None:
                st.session_state["campaign_next"] = done.name
                st.session_state[FLASH_KEY] = f"Campaign {done.name!r} created."
                st.rerun()
        else:
            attempt(lambda: edit_campaign(session, values["name"], data), success="Saved.")


def _preview(name: str) -> None:
    st.subheader("Preview")
    customer = st.text_input(
        "As this customer would see it (email; empty: a sample customer)",
        key=f"preview_customer:{name}",
    )
    with reading() as session:
        html = attempt(
            lambda: preview_html(session, name, settings(), customer_email=customer.strip() or None)
        )
    if html is None:
        return
    phone, desktop = st.tabs(["Phone", "Desktop"])
    with phone:
        email_frame(html, width=PHONE_WIDTH)
    with desktop:
        email_frame(html, width=DESKTOP_WIDTH)


def _preflight(name: str) -> bool:
    st.subheader("Checklist before sending")
    with reading() as session:
        campaign = get_campaign(session, name)
        report = run_preflight(session, campaign, settings())
    if report.audience_size is not None:
        st.markdown(f"Audience: **{report.audience_size}** subscribed customers.")
    for finding in report.blocking:
        st.error(finding.message, icon="⛔")
    for finding in report.warnings:
        st.warning(finding.message, icon="⚠️")
    if report.ready:
        st.success("Ready to send.", icon="✅")
    return report.ready


def _test_send(name: str) -> None:
    with st.form("test_send"):
        st.markdown("**Send a test** (its coupon can never be redeemed)")
        to = st.text_input("To", key=f"test_to:{name}")
        submitted = st.form_submit_button("Send test")
    if submitted:
        with db() as session:
            result = attempt(lambda: send_test(session, name, to.strip(), settings()))
        if result is not None:
            st.success(f"Test sent to {result.to} through {result.backend}.")


def _send(name: str, status: str, ready: bool) -> None:
    if status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        return
    st.subheader("Send")
    with st.form("send_campaign"):
        when = st.radio("When", ["Now", "At a time"], horizontal=True, key=f"send_when:{name}")
        left, right = st.columns(2)
        day = left.date_input("Day", key=f"send_day:{name}")
        moment = right.time_input("Time (shop time)", key=f"send_time:{name}")
        sure = st.checkbox("I have checked the preview and the checklist", key=f"send_sure:{name}")
        submitted = st.form_submit_button("Send", type="primary", disabled=not ready)
    if not submitted:
        return
    if not sure:
        st.error("Tick the box to confirm: sending cannot be undone.")
        return
    at = None
    if when == "At a time":
        at = datetime.combine(day, moment).strftime("%Y-%m-%d %H:%M")
    with db() as session:
        attempt(
            lambda: control.send_campaign(session, name, settings(), at=at),
            success="Scheduled." if at else "Sending started.",
        )


def _controls(name: str, status: str) -> None:
    cols = st.columns(3)
    if status in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED) and cols[0].button(
        "Pause", key="pause_campaign"
    ):
        with db() as session:
            attempt(lambda: control.pause(session, name), success="Paused.")
    if status == CampaignStatus.PAUSED and cols[0].button("Resume", key="resume_campaign"):
        with db() as session:
            attempt(lambda: control.resume(session, name, settings()), success="Resumed.")
    if status in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED):
        sure = cols[2].checkbox("Really cancel", key=f"cancel_sure:{name}")
        if cols[1].button("Cancel campaign", key="cancel_campaign", disabled=not sure):
            with db() as session:
                attempt(lambda: control.cancel(session, name), success="Cancelled.")


def _progress(name: str) -> None:
    with reading() as session:
        status = attempt(lambda: control.campaign_status(session, name))
    if status is None:
        return
    total = status["total"] or 0
    done = status["sent"] + status["failed"] + status["bounced"] + status["skipped"]
    st.progress(done / total if total else 0.0, text=f"{done} of {total} done")
    cols = st.columns(7)
    for col, key in zip(
        cols, ["queued", "sending", "sent", "deferred", "failed", "bounced", "skipped"], strict=True
    ):
        col.metric(key.capitalize(), status[key])
    eta = status.get("eta_seconds")
    extra = f" · about {int(eta)} s left" if isinstance(eta, int | float) and eta else ""
    st.caption(f"{status['rate']} messages/s{extra}")


# While sending, the progress block alone reruns every few seconds (not the whole screen).
_live_progress = st.fragment(run_every=PROGRESS_SECONDS)(_progress)


def main() -> None:
    require_login()
    st.title("Campaigns")
    with reading() as session:
        names = [campaign.name for campaign in list_campaigns(session)]
        choices = {
            "deals": [deal.name for deal in list_deals(session)],
            "segments": [segment.name for segment in list_segments(session)],
            "tags": list(counts_by_tag(session)),
        }
        zone = get_shop_settings(session).zone
    options = [NEW, *reversed(names)]
    if "campaign_next" in st.session_state:  # just created: open it
        st.session_state["campaign_choice"] = st.session_state.pop("campaign_next")
    if st.session_state.get("campaign_choice") not in options:
        st.session_state["campaign_choice"] = options[1] if len(options) > 1 else NEW
    choice = st.selectbox("Campaign", options, key="campaign_choice")
    if choice == NEW:
        _form(None, choices)
        return
    with reading() as session:
        campaign = get_campaign(session, choice)
        described = describe_campaign(session, campaign)
        described["html_template"] = campaign.html_template
    status = described["status"]
    st.markdown(f"Status: **{status}**")
    if described.get("send_at") and status == CampaignStatus.SCHEDULED:
        send_at = datetime.fromisoformat(described["send_at"])
        st.caption(f"Scheduled for {local_time(send_at, zone)}")
    if status == CampaignStatus.SENDING:
        _live_progress(choice)
    elif status in (CampaignStatus.PAUSED, CampaignStatus.SENT, CampaignStatus.CANCELLED):
        _progress(choice)
    _controls(choice, status)
    if status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED):
        with st.expander("Edit", expanded=status == CampaignStatus.DRAFT):
            _form(described, choices)
    _preview(choice)
    ready = _preflight(choice)
    _test_send(choice)
    _send(choice, status, ready)


main()
