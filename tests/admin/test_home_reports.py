"""Home and Reports screens show the analytics; Reports prepares the accountant's files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from admin_support import errors, seed_results, submit, texts
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

Open = Callable[[str], AppTest]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_home_shows_customers_last_campaign_and_attention(
    open_page: Open, session: Session
) -> None:
    seed_results(session)
    at = open_page("home.py")
    shown = _metrics(at)
    assert (shown["Customers"], shown["Subscribed"], shown["Redemptions today"]) == ("3", "3", "1")
    assert (shown["Sent"], shown["Redeemed"], shown["Redemption rate"]) == ("3", "2", "66.7%")
    assert shown["Discount given"] == "10.00 EUR"
    assert "**Spring** · sent" in texts(at)
    assert any("No postal address" in w.value for w in at.warning)


def test_home_on_an_empty_shop(open_page: Open) -> None:
    at = open_page("home.py")
    assert _metrics(at)["Customers"] == "0"
    assert "No campaign has been sent yet." in texts(at)


def test_reports_for_one_campaign(open_page: Open, session: Session) -> None:
    seed_results(session)
    at = open_page("reports.py")
    assert _metrics(at)["Redemptions in this selection"] == "2"
    at.selectbox(key="report_campaign").set_value("Spring")
    at.run()
    shown = _metrics(at)
    assert (shown["Recipients"], shown["Sent"], shown["Delivered"]) == ("3", "3", "3")
    assert (shown["Redeemed"], shown["Redemption rate"]) == ("2", "66.7%")
    assert "Delivered = sent minus bounced" in texts(at)
    comparison = at.dataframe[-1].value
    assert list(comparison["campaign"]) == ["Spring"]
    assert list(comparison["redemptions"]) == [2]


def test_reports_location_and_date_filters(open_page: Open, session: Session) -> None:
    seed_results(session)
    at = open_page("reports.py")
    today = date.today()
    at.date_input(key="report_dates").set_value((today, today))
    at.run()
    assert _metrics(at)["Redemptions in this selection"] == "1"
    at.date_input(key="report_dates").set_value((today - timedelta(days=9), today))
    at.selectbox(key="report_location").set_value("Main St")
    at.run()
    assert _metrics(at)["Redemptions in this selection"] == "2"


def test_prepare_redemption_exports(open_page: Open, session: Session) -> None:
    seed_results(session)
    at = open_page("reports.py")
    submit(at, "Prepare file")
    assert "2 redemptions ready." in texts(at)
    [download] = list(at.get("download_button"))
    assert download.proto.label.startswith("Download redemptions_")
    assert download.proto.label.endswith(".xlsx")
    at.radio(key="export_format").set_value("csv")
    at.date_input(key="export_dates").set_value((date.today(), date.today()))
    submit(at, "Prepare file")
    assert "1 redemptions ready." in texts(at)
    at.date_input(key="export_dates").set_value((date.today(),))
    submit(at, "Prepare file")
    assert errors(at) == ["Choose a first and a last day."]
    assert "ready." not in texts(at)
