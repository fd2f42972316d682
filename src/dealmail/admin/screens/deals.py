"""Deals: what a coupon is worth; list and create (the deals service has no edit yet)."""

from __future__ import annotations

import streamlit as st

from dealmail.admin._ui import attempt, db, reading, require_login, table
from dealmail.deals.service import DealInput, create_deal, describe, list_deals
from dealmail.locations.service import list_locations
from dealmail.models import DealKind

KIND_LABELS = {
    DealKind.PERCENT_OFF: "Percent off",
    DealKind.AMOUNT_OFF: "Amount off",
    DealKind.BOGO: "Buy one, get one free",
    DealKind.FREE_ITEM: "Free item",
    DealKind.CUSTOM: "Custom text",
}
VALIDITY = ("No end date", "N days after sending", "Until a date")


def _create_form(location_names: list[str]) -> None:
    st.subheader("New deal")
    with st.form("create_deal"):
        name = st.text_input("Name (for you; e.g. spring-10)", key="deal_name")
        kind = st.selectbox(
            "Kind", list(KIND_LABELS), format_func=lambda k: KIND_LABELS[k], key="deal_kind"
        )
        left, right = st.columns(2)
        value = left.text_input("Value (percent or amount)", key="deal_value")
        currency = right.text_input("Currency (amount off only, e.g. EUR)", key="deal_currency")
        title = st.text_input("Title the customer sees", key="deal_title")
        terms = st.text_area("Terms (optional)", key="deal_terms")
        validity = st.radio("Valid", VALIDITY, horizontal=True, key="deal_validity")
        left, right = st.columns(2)
        days = left.number_input("Days after sending", 1, 3650, 30, key="deal_days")
        until = right.date_input("Last valid day", value=None, key="deal_until")
        uses = st.number_input("Uses per coupon", 1, 100, 1, key="deal_uses")
        places = st.multiselect(
            "Valid only at these locations (none chosen: everywhere)", location_names
        )
        submitted = st.form_submit_button("Create deal", type="primary")
    if not submitted:
        return
    if validity == VALIDITY[2] and until is None:
        st.error("Choose the last valid day.")
        return
    data = DealInput(
        name=name.strip(),
        kind=str(kind),
        title=title,
        value=value.strip() or None,
        currency=currency.strip() or None,
        terms=terms or None,
        valid_until=until if validity == VALIDITY[2] else None,  # a whole day, shop time
        valid_days=int(days) if validity == VALIDITY[1] else None,
        uses_per_coupon=int(uses),
        locations=tuple(places),
    )
    with db() as session:
        attempt(lambda: create_deal(session, data), success=f"Deal {data.name!r} created.")


def main() -> None:
    require_login()
    st.title("Deals")
    with reading() as session:
        location_names = [location.name for location in list_locations(session)]
    _create_form(location_names)
    st.subheader("Your deals")
    with reading() as session:
        rows = [describe(deal) for deal in list_deals(session)]
    table(
        [
            {
                "name": row["name"],
                "offer": row["headline"],
                "title": row["title"],
                "valid until": row["valid_until"]
                or (f"{row['valid_days']} days after sending" if row["valid_days"] else "no end"),
                "uses per coupon": row["uses_per_coupon"],
                "locations": ", ".join(row["locations"]) or "all",
                "expired": "yes" if row["expired"] else "",
            }
            for row in rows
        ],
        empty="No deals yet.",
    )


main()
