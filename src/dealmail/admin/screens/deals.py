"""Deals: what a coupon is worth; list, create and edit."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import streamlit as st

from dealmail.admin._ui import attempt, db, reading, require_login, table
from dealmail.deals.service import (
    DealChanges,
    DealInput,
    create_deal,
    describe,
    get_deal,
    list_deals,
    update_deal,
)
from dealmail.locations.service import list_locations
from dealmail.models import DealKind
from dealmail.shop import get_shop_settings

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


def _current_validity(row: dict[str, Any], zone: ZoneInfo) -> tuple[str, int, date | None]:
    """The form's starting validity: the choice, its days, and the last day in shop time."""
    if row["valid_until"]:
        last_day = datetime.fromisoformat(row["valid_until"]).astimezone(zone).date()
        return VALIDITY[2], 30, last_day
    if row["valid_days"]:
        return VALIDITY[1], int(row["valid_days"]), None
    return VALIDITY[0], 30, None


def _edit_form(names: list[str], location_names: list[str], zone: ZoneInfo) -> None:
    st.subheader("Edit a deal")
    if not names:
        st.caption("No deals to edit yet.")
        return
    choice = st.selectbox("Deal to edit", names, key="deal_edit_choice")
    with reading() as session:
        row = describe(get_deal(session, choice))
    mode, days_now, until_now = _current_validity(row, zone)
    kinds = list(KIND_LABELS)

    def k(field: str) -> str:
        """Widget keys per deal, so choosing another deal shows its own values."""
        return f"{field}:{choice}"

    with st.form("edit_deal"):
        st.caption(
            "Once a campaign has sent this deal, its offer, uses and locations stay as they "
            "are and its validity can only be extended; the wording can always change."
        )
        kind = st.selectbox(
            "Kind",
            kinds,
            index=kinds.index(DealKind(row["kind"])),
            format_func=lambda kind: KIND_LABELS[kind],
            key=k("edit_kind"),
        )
        left, right = st.columns(2)
        value = left.text_input(
            "Value (percent or amount)", row["value"] or "", key=k("edit_value")
        )
        currency = right.text_input("Currency", row["currency"] or "", key=k("edit_currency"))
        title = st.text_input("Title the customer sees", row["title"], key=k("edit_title"))
        terms = st.text_area("Terms (optional)", row["terms"] or "", key=k("edit_terms"))
        validity = st.radio(
            "Valid", VALIDITY, index=VALIDITY.index(mode), horizontal=True, key=k("edit_validity")
        )
        left, right = st.columns(2)
        days = left.number_input("Days after sending", 1, 3650, days_now, key=k("edit_days"))
        until = right.date_input("Last valid day", value=until_now, key=k("edit_until"))
        uses = st.number_input(
            "Uses per coupon", 1, 100, int(row["uses_per_coupon"]), key=k("edit_uses")
        )
        places = st.multiselect(
            "Valid only at these locations (none chosen: everywhere)",
            location_names,
            default=[name for name in row["locations"] if name in location_names],
            key=k("edit_places"),
        )
        submitted = st.form_submit_button("Save deal", type="primary")
    if not submitted:
        return
    if validity == VALIDITY[2] and until is None:
        st.error("Choose the last valid day.")
        return
    same_validity = (
        validity == mode
        and {
            VALIDITY[0]: True,
            VALIDITY[1]: int(days) == days_now,
            VALIDITY[2]: until == until_now,
        }[validity]
    )
    changes = DealChanges(
        kind=str(kind),
        value=value.strip(),
        currency=currency.strip(),
        title=title,
        terms=terms,
        # Validity is only sent when it changed, so an unchanged day is never re-read.
        valid_until=until if validity == VALIDITY[2] and not same_validity else None,
        valid_days=int(days) if validity == VALIDITY[1] and not same_validity else None,
        no_end=validity == VALIDITY[0] and not same_validity,
        uses_per_coupon=int(uses),
        locations=tuple(places),
    )
    with db() as session:
        attempt(lambda: update_deal(session, choice, changes), success=f"Deal {choice!r} saved.")


def main() -> None:
    require_login()
    st.title("Deals")
    with reading() as session:
        location_names = [location.name for location in list_locations(session)]
        names = [deal.name for deal in list_deals(session)]
        zone = get_shop_settings(session).zone
    _create_form(location_names)
    _edit_form(names, location_names, zone)
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
