"""`dealmail report`: a campaign's results and the comparison of all campaigns, in the terminal."""

from __future__ import annotations

from contextlib import AbstractContextManager

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from dealmail.analytics.campaigns import (
    DISCOUNT_MEANING,
    CampaignReport,
    campaign_reports,
    comparison_rows,
    format_discounts,
)
from dealmail.analytics.campaigns import campaign_report as load_campaign_report
from dealmail.cli._common import console, print_json
from dealmail.config import get_settings
from dealmail.db import get_engine, read_only, session_scope

report_app = typer.Typer(
    help="Campaign results: funnel, redemptions, discount given.", no_args_is_help=True
)


def reading_session() -> AbstractContextManager[Session]:
    """Reads only: on SQLite a DEFERRED transaction, so a long report or export never holds
    the write lock the worker and the scanner need."""
    return session_scope(read_only(get_engine(get_settings())))


def _print_report(report: CampaignReport) -> None:
    delivered_note = "" if report.delivered_reported else "  (sent minus bounced)"
    lines = [
        ("campaign", report.name),
        ("status", report.status),
        ("deal", report.deal or "-"),
        ("recipients", report.recipients),
        ("pending", report.pending),
        ("sent", report.sent),
        ("delivered", f"{report.delivered}{delivered_note}"),
        ("redemptions", report.redemptions),
        ("coupons redeemed", report.redeemed_coupons),
        ("redemption rate", f"{report.redemption_rate:.1%} of sent"),
        ("discount given", format_discounts(report.discounts)),
        ("bounced", report.bounced),
        ("failed", report.failed),
        ("skipped", report.skipped),
        ("unsubscribed", report.unsubscribed),
        ("complained", report.complained),
        ("opened", report.opened),
        ("clicked", report.clicked),
    ]
    for label, value in lines:
        console.print(f"{label:18} {value}", highlight=False, markup=False)
    console.print(DISCOUNT_MEANING, style="dim", highlight=False, markup=False)


@report_app.command("campaign")
def report_campaign(
    name: str, as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")
) -> None:
    """The funnel of campaign NAME: recipients, sent, delivered, redeemed, discount given."""
    with reading_session() as session:
        report = load_campaign_report(session, name)
    if as_json:
        print_json(report.as_dict())
    else:
        _print_report(report)


@report_app.command("campaigns")
def report_campaigns(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every campaign side by side, newest first."""
    with reading_session() as session:
        reports = campaign_reports(session)
    if as_json:
        print_json([report.as_dict() for report in reports])
        return
    rows = comparison_rows(reports)
    table = Table(show_lines=False)
    columns = {
        "campaign": "campaign",
        "status": "status",
        "recipients": "to",
        "sent": "sent",
        "delivered": "deliv.",
        "bounced": "bounce",
        "unsubscribed": "unsub",
        "redemptions": "redeemed",
        "redemption_rate": "rate",
        "discount_given": "discount given",
    }
    for key, title in columns.items():
        table.add_column(title, no_wrap=key in ("campaign", "redemption_rate"))
    for row in rows:
        cells = {**row, "redemption_rate": f"{row['redemption_rate']:.1%}"}
        table.add_row(*(str(cells[column]) for column in columns))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
