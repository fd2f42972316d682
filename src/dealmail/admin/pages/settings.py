"""Settings: shop identity, sender, postal address, public URL, time zone, email backend, limits,
DKIM key and its DNS record."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dealmail.admin._ui import attempt, db, require_login, settings
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
        target = dkim.default_key_path(config, selector.strip())
        if not selector.strip().isalnum():
            st.error("A selector is letters and digits only.")
        elif target.exists():
            st.error(f"A key for selector {selector!r} already exists ({target}).")
        else:
            key = dkim.generate_key(target)
            st.session_state["dkim_record"] = (selector.strip(), dkim.public_key_record(key))
            st.success(f"Key written to {target}.")
    shown = st.session_state.get("dkim_record")
    if shown is None and path is not None and domain:
        loaded = attempt(lambda: dkim.load_key(config, domain))
        if loaded is not None:
            shown = (loaded.selector, dkim.public_key_record(loaded.private_key))
    if shown:
        selector_name, record = shown
        st.markdown("Publish this DNS TXT record:")
        st.code(f'{selector_name}._domainkey.{domain or "<your domain>"}  TXT  "{record}"')


def main() -> None:
    require_login()
    st.title("Settings")
    with db() as session:
        shop = get_shop_settings(session)
    _identity(shop)
    _limits(shop)
    _backend(shop)
    _dkim(shop)


main()
