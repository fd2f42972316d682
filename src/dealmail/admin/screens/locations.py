"""Locations and devices: add a shop, pair a phone with an on-screen QR, add a till, revoke."""

from __future__ import annotations

import streamlit as st

from dealmail.admin._ui import attempt, db, local_time, reading, require_login, table
from dealmail.coupons.qr import qr_png
from dealmail.locations.service import (
    add_device,
    add_location,
    create_pairing,
    list_devices,
    list_locations,
    revoke_device,
)
from dealmail.shop import get_shop_settings

PAIRING_KEY = "pairing_link"
API_KEY = "new_api_key"


def _add_location() -> None:
    with st.form("add_location"):
        st.markdown("**Add a location**")
        name = st.text_input("Name", key="location_name")
        address = st.text_input("Address (optional)", key="location_address")
        zone = st.text_input("Time zone (empty: the shop's)", key="location_timezone")
        submitted = st.form_submit_button("Add location")
    if submitted:
        with db() as session:
            attempt(
                lambda: add_location(session, name, address or None, zone.strip() or None),
                success=f"Location {name.strip()!r} added.",
            )


def _pair(location_names: list[str]) -> None:
    with st.form("pair_device"):
        st.markdown("**Pair a staff phone** (scan the QR with the phone's camera)")
        location = st.selectbox("Pair at location", location_names)
        device = st.text_input("Device name (optional)", key="pair_device_name")
        submitted = st.form_submit_button("Show pairing QR")
    if submitted:
        if not location:
            st.error("Add a location first.")
            return
        with db() as session:
            link = attempt(lambda: create_pairing(session, location, device.strip() or None))
        if link is not None:
            st.session_state[PAIRING_KEY] = (link.url, link.location_name, link.expires_at)
    shown = st.session_state.get(PAIRING_KEY)
    if shown:
        url, place, expires_at = shown
        with reading() as session:
            zone = get_shop_settings(session).zone
        st.image(qr_png(url).png, width=264, caption=f"Pairs one phone with {place}")
        st.code(url, language=None)
        st.caption(f"Valid once, until {local_time(expires_at, zone)}.")


def _add_api_device(location_names: list[str]) -> None:
    with st.form("add_api_device"):
        st.markdown("**Add a till or app** (gets an API key)")
        name = st.text_input("Device name", key="api_device_name")
        location = st.selectbox("Device's location", location_names)
        submitted = st.form_submit_button("Create API key")
    if submitted:
        if not location:
            st.error("Add a location first.")
            return
        with db() as session:
            created = attempt(lambda: add_device(session, name, location))
        if created is not None:
            st.session_state[API_KEY] = (created.device.name, created.key)
    shown = st.session_state.get(API_KEY)
    if shown:
        st.success(f"API key for {shown[0]} (shown once; copy it now):")
        st.code(shown[1], language=None)


def _devices() -> None:
    with reading() as session:
        zone = get_shop_settings(session).zone
        devices = list_devices(session)
    table(
        [
            {
                "id": device.id,
                "name": device.name,
                "kind": device.kind,
                "location": device.location_name,
                "paired": local_time(device.created_at, zone),
                "last seen": local_time(device.last_seen_at, zone),
                "revoked": local_time(device.revoked_at, zone) if device.revoked_at else "",
            }
            for device in devices
        ],
        empty="No devices yet.",
    )
    active = [device for device in devices if device.revoked_at is None]
    if not active:
        return
    with st.form("revoke_device"):
        chosen = st.selectbox(
            "Revoke a device",
            [device.id for device in active],
            format_func=lambda i: next(
                f"{d.name} ({d.location_name}, id {d.id})" for d in active if d.id == i
            ),
        )
        sure = st.checkbox("Yes, this device must stop working now", key="revoke_sure")
        submitted = st.form_submit_button("Revoke")
    if submitted:
        if not sure:
            st.error("Tick the box to confirm.")
            return
        with db() as session:
            attempt(lambda: revoke_device(session, str(chosen)), success="Device revoked.")


def main() -> None:
    require_login()
    st.title("Locations & devices")
    with reading() as session:
        locations = list_locations(session)
        rows = [
            {"name": loc.name, "address": loc.address or "", "time zone": loc.timezone}
            for loc in locations
        ]
    names = [row["name"] for row in rows]
    left, right = st.columns(2)
    with left:
        _add_location()
        table(rows, empty="No locations yet.")
    with right:
        _pair(names)
    st.subheader("Devices")
    left, right = st.columns(2)
    with left:
        _add_api_device(names)
    with right:
        _devices()


main()
