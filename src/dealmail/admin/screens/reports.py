"""Reports: a campaign's funnel, redemptions over time / by location / by device, the comparison,
and the exports for the accountant."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import altair as alt
import streamlit as st

from dealmail.admin._ui import reading, require_login, table
from dealmail.analytics._sql import RedemptionScope, local_day_bounds
from dealmail.analytics.campaigns import (
    DISCOUNT_MEANING,
    CampaignReport,
    campaign_reports,
    comparison_rows,
    format_discounts,
)
from dealmail.analytics.exports import (
    redemption_rows,
    write_redemptions_csv,
    write_redemptions_xlsx,
)
from dealmail.analytics.redemptions import (
    discount_given,
    redemption_count,
    redemptions_by_device,
    redemptions_by_location,
    redemptions_over_time,
)
from dealmail.errors import DomainError
from dealmail.locations.service import list_locations
from dealmail.shop import get_shop_settings

ALL = "All campaigns"
EVERYWHERE = "All locations"


def _funnel(report: CampaignReport) -> None:
    cols = st.columns(5)
    cols[0].metric("Recipients", report.recipients)
    cols[1].metric("Sent", report.sent)
    cols[2].metric("Delivered", report.delivered)
    cols[3].metric("Redeemed", report.redeemed_coupons)
    cols[4].metric("Redemption rate", f"{report.redemption_rate:.1%}")
    st.metric("Discount given", format_discounts(report.discounts), help=DISCOUNT_MEANING)
    if not report.delivered_reported:
        st.caption("Delivered = sent minus bounced: this email backend reports no deliveries.")
    stages = [
        {"stage": "1 recipients", "count": report.recipients},
        {"stage": "2 sent", "count": report.sent},
        {"stage": "3 delivered", "count": report.delivered},
        {"stage": "4 redeemed", "count": report.redeemed_coupons},
    ]
    chart = (
        alt.Chart(alt.InlineData(values=stages))
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title=None, axis=alt.Axis(format="d", tickMinStep=1)),
            y=alt.Y("stage:N", title=None),
        )
        .properties(height=160)
    )
    st.altair_chart(chart, width="stretch")
    more = st.columns(7)
    more[0].metric("Waiting", report.pending)
    more[1].metric("Bounced", report.bounced)
    more[2].metric("Failed", report.failed)
    more[3].metric("Skipped", report.skipped)
    more[4].metric("Unsubscribed", report.unsubscribed)
    more[5].metric("Opened", report.opened)
    more[6].metric("Clicked", report.clicked)


def _bar(rows: list[dict[str, Any]], x: str, y: str, title: str, x_type: str = "N") -> None:
    st.markdown(f"**{title}**")
    if not rows or not any(row[y] for row in rows):
        st.caption("No redemptions yet.")
        return
    chart = (
        alt.Chart(alt.InlineData(values=rows))
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:{x_type}", title=None),
            y=alt.Y(f"{y}:Q", title=None, axis=alt.Axis(format="d", tickMinStep=1)),
        )
        .properties(height=220)
    )
    st.altair_chart(chart, width="stretch")


def _charts(scope: RedemptionScope) -> None:
    with reading() as session:
        zone = get_shop_settings(session).zone
        timeline = redemptions_over_time(session, scope, zone)
        places = redemptions_by_location(session, scope)
        devices = redemptions_by_device(session, scope)
        total = redemption_count(session, scope)
        money = discount_given(session, scope)
    st.metric("Redemptions in this selection", total)
    st.caption(f"Discount given: {format_discounts(money)}. {DISCOUNT_MEANING}")
    days = [
        {"day": row["day"].isoformat(), "redemptions": row["redemptions"]}
        for row in timeline.by_day
    ]
    left, right = st.columns(2)
    with left:
        _bar(days, "day", "redemptions", "By day (shop time)", "T")
    with right:
        _bar(timeline.by_hour, "hour", "redemptions", "By hour of the day (shop time)", "O")
    left, right = st.columns(2)
    with left:
        _bar(places, "location", "redemptions", "By location")
    with right:
        _bar(devices, "device", "redemptions", "By device")
        table(devices, empty="")


def _exports(location_names: list[str]) -> None:
    st.subheader("Exports")
    today = date.today()
    with st.form("export_redemptions"):
        st.markdown("**Redemptions for the accountant**")
        period = st.date_input(
            "Dates", value=(today - timedelta(days=30), today), key="export_dates"
        )
        place = st.selectbox("Location", [EVERYWHERE, *location_names], key="export_location")
        kind = st.radio("Format", ["xlsx", "csv"], horizontal=True, key="export_format")
        prepared = st.form_submit_button("Prepare file")
    if prepared:
        st.session_state.pop("export_file", None)
        if not isinstance(period, tuple) or len(period) != 2:
            st.error("Choose a first and a last day.")
        else:
            first, last = period
            chosen = None if place == EVERYWHERE else place
            try:
                with reading() as session:
                    rows = redemption_rows(session, first, last, chosen)
                    if kind == "csv":
                        text = io.StringIO()
                        count = write_redemptions_csv(rows, text)
                        data = text.getvalue().encode("utf-8")
                    else:
                        binary = io.BytesIO()
                        count = write_redemptions_xlsx(rows, binary)
                        data = binary.getvalue()
            except DomainError as exc:
                st.error(exc.message)
            else:
                st.session_state["export_file"] = (
                    f"redemptions_{first.isoformat()}_{last.isoformat()}.{kind}",
                    data,
                    count,
                )
    prepared_file = st.session_state.get("export_file")
    if prepared_file:
        name, data, count = prepared_file
        st.success(f"{count} redemptions ready.")
        st.download_button(
            f"Download {name}",
            data,
            file_name=name,
            key="download_redemptions",
            on_click="ignore",  # no rerun: it could drop the file before the browser fetched it
        )


def main() -> None:
    require_login()
    st.title("Reports")
    with reading() as session:
        reports = campaign_reports(session)
        locations = [(loc.id, loc.name) for loc in list_locations(session)]
        zone = get_shop_settings(session).zone
    names = [report.name for report in reports]
    left, middle, right = st.columns([2, 2, 3])
    chosen = left.selectbox("Campaign", [ALL, *names], key="report_campaign")
    place = middle.selectbox(
        "Location", [EVERYWHERE, *(n for _, n in locations)], key="report_location"
    )
    period = right.date_input("Dates (optional)", value=[], key="report_dates")

    report = next((r for r in reports if r.name == chosen), None)
    scope_start = scope_end = None
    if isinstance(period, tuple) and len(period) == 2:
        scope_start, scope_end = local_day_bounds(period[0], period[1], zone)
    scope = RedemptionScope(
        campaign_id=report.campaign_id if report else None,
        location_id=next((i for i, n in locations if n == place), None),
        start=scope_start,
        end=scope_end,
    )
    if report is not None:
        st.subheader(f"Campaign: {report.name}")
        _funnel(report)
    _charts(scope)

    st.subheader("All campaigns")
    table(comparison_rows(reports), empty="No campaigns yet.")
    _exports([name for _, name in locations])


main()
