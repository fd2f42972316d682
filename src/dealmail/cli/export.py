"""`dealmail export redemptions`: the accountant's file, CSV or XLSX, for a date range."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from itertools import chain
from pathlib import Path

import typer

from dealmail.analytics.exports import (
    redemption_rows,
    write_redemptions_csv,
    write_redemptions_xlsx,
)
from dealmail.cli._common import console
from dealmail.cli.report import reading_session

export_app = typer.Typer(help="Exports for the accountant.", no_args_is_help=True)


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


@export_app.command("redemptions")
def export_redemptions(
    from_: datetime = typer.Option(
        ..., "--from", formats=["%Y-%m-%d"], help="First day (local date), YYYY-MM-DD."
    ),
    to: datetime = typer.Option(
        ..., "--to", formats=["%Y-%m-%d"], help="Last day (local date, included), YYYY-MM-DD."
    ),
    location: str | None = typer.Option(None, "--location", help="Only this location."),
    export_format: ExportFormat = typer.Option(ExportFormat.CSV, "--format"),
    out: Path = typer.Option(..., "--out", help="File to write."),
) -> None:
    """Redemptions between two dates: date, time, location, device, campaign, deal, discount
    value, customer, voided."""
    with reading_session() as session:
        rows = redemption_rows(session, from_.date(), to.date(), location)
        # The first step checks the range and the location before the file is touched.
        first = next(rows, None)
        everything = chain([] if first is None else [first], rows)
        if export_format is ExportFormat.CSV:
            with out.open("w", encoding="utf-8", newline="") as handle:
                written = write_redemptions_csv(everything, handle)
        else:
            written = write_redemptions_xlsx(everything, out)
    console.print(f"{written} redemptions written to {out}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
