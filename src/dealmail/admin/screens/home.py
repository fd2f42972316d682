"""Home: customers, today's redemptions, the last campaign, what is next, what needs care."""

from __future__ import annotations

import streamlit as st

from dealmail.admin._ui import local_time, reading, require_login, settings
from dealmail.analytics.campaigns import DISCOUNT_MEANING, format_discounts
from dealmail.analytics.overview import overview
from dealmail.shop import get_shop_settings


def main() -> None:
    require_login()
    with reading() as session:
        shop = get_shop_settings(session)
        home = overview(session, settings())
    st.title(shop.shop_name)
    for problem in home.attention:
        st.warning(problem, icon="⚠️")
    first, second, third = st.columns(3)
    first.metric("Customers", home.customers)
    second.metric("Subscribed", home.subscribed)
    third.metric("Redemptions today", home.redemptions_today)

    st.subheader("Last campaign")
    last = home.last_campaign
    if last is None:
        st.caption("No campaign has been sent yet. Start with Contacts, a Deal and a Campaign.")
    else:
        st.markdown(f"**{last.name}** · {last.status}")
        cols = st.columns(4)
        cols[0].metric("Sent", last.sent)
        cols[1].metric("Delivered", last.delivered)
        cols[2].metric("Redeemed", last.redeemed_coupons)
        cols[3].metric("Redemption rate", f"{last.redemption_rate:.1%}")
        st.metric("Discount given", format_discounts(last.discounts), help=DISCOUNT_MEANING)
        if last.pending:
            st.caption(f"{last.pending} still waiting to be sent.")

    st.subheader("Scheduled next")
    if not home.next_scheduled:
        st.caption("Nothing scheduled.")
    for item in home.next_scheduled:
        st.markdown(f"- **{item.name}** at {local_time(item.send_at, shop.zone)} ({shop.timezone})")


main()
