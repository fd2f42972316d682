"""Settings: shop identity, sender, postal address, public URL, time zone, email backend, limits,
DKIM key and its DNS record, and the logged-in user's password."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dealmail import accounts
from dealmail.admin._ui import attempt, db, reading, require_login, settings
from dealmail.admin.remember import remember
from dealmail.campaigns.preview import send_test
from dealmail.campaigns.service import list_campaigns
from dealmail.cli.dkim import SELECTOR_RE, txt_strings
from dealmail.delivery import dkim
from dealmail.delivery.backends import BACKEND_NAMES, backend_name
from dealmail.errors import DomainError
from dealmail.shop import ShopSettings, get_shop_settings, set_settings

ENV_DEFAULT = "(as configured in .env)"


def _identity(shop: ShopSettings) -> None:
    with st.form("shop_identity"):
        st.markdown("**Shop and sender**")
        shop_name = st.text_input("Shop name", shop.shop_name, key="set_shop_name")
        left, right = st.columns(2)
        sender_name = left.text_input("Sender name", shop.sender_name or "", key="set_sender_name")
        sender_email = right.text_input(
            "Sender email", shop.sender_email or "", key="set_sender_email"
        )
        reply_to = st.text_input("Reply-to (optional)", shop.reply_to or "", key="set_reply_to")
        postal = st.text_area(
            "Postal address (printed in every email; the law requires it)",
            shop.postal_address or "",
            key="set_postal_address",
        )
        public_url = st.text_input(
            "Public URL (the base of every link and QR in an email)",
            shop.public_url,
            key="set_public_url",
        )
        zone = st.text_input("Time zone (e.g. Europe/London)", shop.timezone, key="set_timezone")
        submitted = st.form_submit_button("Save", type="primary")
    if submitted:
        values: dict[str, Any] = {
            "shop_name": shop_name.strip(),
            "sender_name": sender_name.strip() or None,
            "sender_email": sender_email.strip() or None,
            "reply_to": reply_to.strip() or None,
            "postal_address": postal.strip() or None,
            "public_url": public_url.strip(),
            "timezone": zone.strip(),
        }
        with db() as session:
            attempt(lambda: set_settings(session, values), success="Settings saved.")


def _limits(shop: ShopSettings) -> None:
    with st.form("rate_limits"):
        st.markdown("**Sending limits** (0 = unlimited; shared by every worker)")
        cols = st.columns(3)
        per_second = cols[0].number_input(
            "Per second", 0.0, 10_000.0, float(shop.rate_per_second), key="set_rate_per_second"
        )
        per_hour = cols[1].number_input(
            "Per hour", 0, 10_000_000, shop.rate_per_hour, key="set_rate_per_hour"
        )
        per_day = cols[2].number_input(
            "Per day", 0, 100_000_000, shop.rate_per_day, key="set_rate_per_day"
        )
        lower = st.columns(2)
        connections = lower[0].number_input(
            "Connections at once", 1, 100, shop.max_connections, key="set_max_connections"
        )
        warmup = lower[1].number_input(
            "Warm-up: first day's volume (0 = no warm-up)",
            0,
            10_000_000,
            shop.warmup_start_per_day,
            key="set_warmup",
        )
        submitted = st.form_submit_button("Save limits")
    if submitted:
        values: dict[str, Any] = {
            "rate_per_second": float(per_second),
            "rate_per_hour": int(per_hour),
            "rate_per_day": int(per_day),
            "max_connections": int(connections),
            "warmup_start_per_day": int(warmup),
        }
        with db() as session:
            attempt(lambda: set_settings(session, values), success="Limits saved.")


def _backend(shop: ShopSettings) -> None:
    config = settings()
    st.markdown("**Email backend**")
    try:
        active = backend_name(config, shop.email_backend)
    except DomainError as exc:
        st.error(exc.message)
        active = config.email_backend
    with st.form("email_backend"):
        options = [ENV_DEFAULT, *BACKEND_NAMES]
        current = shop.email_backend if shop.email_backend in BACKEND_NAMES else ENV_DEFAULT
        choice = st.selectbox(
            "Send through", options, index=options.index(current), key="set_email_backend"
        )
        submitted = st.form_submit_button("Save backend")
    if submitted:
        value = None if choice == ENV_DEFAULT else choice
        with db() as session:
            attempt(lambda: set_settings(session, {"email_backend": value}), success="Saved.")
    st.caption(f"Now sending through **{active}**.")
    credentials: dict[str, list[tuple[str, object]]] = {
        "smtp": [
            ("DEALMAIL_SMTP_HOST", config.smtp_host),
            ("DEALMAIL_SMTP_PORT", config.smtp_port),
            ("DEALMAIL_SMTP_TLS", config.smtp_tls),
            ("DEALMAIL_SMTP_USERNAME", config.smtp_username or "—"),
            ("DEALMAIL_SMTP_PASSWORD", "set" if config.smtp_password else "not set"),
        ],
        "devinbox": [("DEALMAIL_DEVINBOX_PORT", config.devinbox_port)],
        "sendgrid": [
            ("DEALMAIL_SENDGRID_API_KEY", "set" if config.sendgrid_api_key else "not set")
        ],
        "ses": [
            ("DEALMAIL_SES_REGION", config.ses_region),
            ("DEALMAIL_SES_CONFIGURATION_SET", config.ses_configuration_set or "—"),
        ],
        "file": [("DEALMAIL_FILE_BACKEND_DIR", config.file_backend_dir or "—")],
    }
    st.caption(
        "Credentials are secrets, so they live in the environment or the `.env` file of the "
        "data directory's host, never in the database:"
    )
    st.table([{"setting": key, "value": str(value)} for key, value in credentials[active]])


def _send_test() -> None:
    with reading() as session:
        names = [campaign.name for campaign in list_campaigns(session)]
    with st.form("backend_test"):
        st.markdown("**Send a test** through the backend above (a campaign's test email)")
        campaign = st.selectbox("Campaign", names or ["(create a campaign first)"])
        to = st.text_input("To", key="bt_to")
        submitted = st.form_submit_button("Send a test")
    if submitted:
        if not names:
            st.error("Create a campaign first: the test sends its email.")
            return
        with db() as session:
            result = attempt(lambda: send_test(session, campaign, to.strip(), settings()))
        if result is not None:
            st.success(f"Sent to {result.to} through {result.backend} ({result.message_id}).")


def _dkim(shop: ShopSettings) -> None:
    config = settings()
    st.markdown("**DKIM signature**")
    domain = config.dkim_domain or (shop.sender_email or "").partition("@")[2]
    path = dkim.key_path(config)
    if path is None:
        st.info(
            "Signing is off. Choose a selector (e.g. `mail`), generate a key here, then set "
            "`DEALMAIL_DKIM_SELECTOR` to it in `.env`, restart, and publish the DNS record."
        )
    with st.form("dkim_generate"):
        selector = st.text_input("Selector", config.dkim_selector or "mail", key="dkim_selector")
        submitted = st.form_submit_button("Generate key")
    if submitted:
        selector = selector.strip()
        target = dkim.default_key_path(config, selector)
        if not SELECTOR_RE.match(selector):
            st.error("A selector is letters, digits and -.")
        elif target.exists():
            st.error(f"A key for selector {selector!r} exists ({target}); choose a new selector.")
        else:
            key = dkim.generate_key(target)
            st.session_state["dkim_record"] = (selector, dkim.public_key_record(key))
            st.success(
                f"Key written to {target}. To sign with it, set DEALMAIL_DKIM_SELECTOR={selector}"
                + (f" and DEALMAIL_DKIM_DOMAIN={domain}" if domain else "")
                + " in .env and restart."
            )
    shown = st.session_state.get("dkim_record")
    if shown is None and path is not None and domain:
        loaded = attempt(lambda: dkim.load_key(config, domain))
        if loaded is not None:
            shown = (loaded.selector, dkim.public_key_record(loaded.private_key))
    if shown:
        selector_name, record = shown
        st.markdown("Publish this DNS TXT record:")
        name = f"{selector_name}._domainkey.{domain or '<your domain>'}."
        st.code(f"{name} IN TXT {txt_strings(record)}", language=None)


def _password(username: str) -> None:
    with st.form("own_password", clear_on_submit=True):
        st.markdown(f"**Your password** ({username})")
        current = st.text_input("Current password", type="password", key="pw_current")
        left, right = st.columns(2)
        new = left.text_input(
            f"New password (at least {accounts.MIN_PASSWORD_LENGTH} characters)",
            type="password",
            key="pw_new",
        )
        repeated = right.text_input("New password again", type="password", key="pw_repeat")
        submitted = st.form_submit_button("Change password")
    if not submitted:
        return
    if new != repeated:
        st.error("The two new passwords differ.", icon="⚠️")
        return
    with db() as session:

        def change() -> None:
            accounts.change_password(session, username, current, new)
            remember(username)  # the change revoked remembered logins, this browser's too

        attempt(change, success="Password changed.")


def main() -> None:
    username = require_login()
    st.title("Settings")
    with reading() as session:
        shop = get_shop_settings(session)
    _identity(shop)
    _limits(shop)
    _backend(shop)
    _send_test()
    _dkim(shop)
    _password(username)


main()
