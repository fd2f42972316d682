"""`dealmail deals`: create, edit, list and show deals."""

from __future__ import annotations

import typer

from dealmail.cli._common import cli_session, console, print_json
from dealmail.deals import service
from dealmail.errors import InvalidInput
from dealmail.models import DealKind

deals_app = typer.Typer(
    help="Deals: what a coupon is worth and for how long.", no_args_is_help=True
)
KINDS = ", ".join(k.value for k in DealKind)


@deals_app.command("create")
def deals_create(
    name: str,
    kind: str = typer.Option(..., "--kind", help=f"One of {KINDS}."),
    title: str = typer.Option(..., "--title", help="What the customer gets, in words."),
    value: str = typer.Option(None, "--value", help="Percent or amount (percent_off, amount_off)."),
    currency: str = typer.Option(None, "--currency", help="ISO code for amount_off, e.g. EUR."),
    terms: str = typer.Option(None, "--terms", help="Small print shown with the coupon."),
    valid_days: int = typer.Option(None, "--valid-days", help="Valid N days after sending."),
    valid_until: str = typer.Option(
        None, "--valid-until", help="Last valid day (YYYY-MM-DD, shop time zone)."
    ),
    valid_from: str = typer.Option(None, "--valid-from", help="First valid day (YYYY-MM-DD)."),
    uses: int = typer.Option(1, "--uses", help="Uses per coupon."),
    location: list[str] = typer.Option(
        None, "--location", help="Valid only at this location (repeatable; default: all)."
    ),
) -> None:
    """Create deal NAME."""
    data = service.DealInput(
        name=name,
        kind=kind,
        title=title,
        value=value,
        currency=currency,
        terms=terms,
        valid_from=service.parse_day_or_moment(valid_from) if valid_from else None,
        valid_until=service.parse_day_or_moment(valid_until) if valid_until else None,
        valid_days=valid_days,
        uses_per_coupon=uses,
        locations=tuple(location or ()),
    )
    with cli_session() as session:
        deal = service.create_deal(session, data)
        summary = service.describe(deal)
    console.print(f"deal {summary['name']} created: {summary['headline']}, {summary['title']}")


@deals_app.command("edit")
def deals_edit(
    name: str,
    title: str = typer.Option(None, "--title", help="New title."),
    terms: str = typer.Option(None, "--terms", help='New small print ("" removes it).'),
    kind: str = typer.Option(None, "--kind", help=f"One of {KINDS}."),
    value: str = typer.Option(None, "--value", help="New percent or amount."),
    currency: str = typer.Option(None, "--currency", help="New ISO currency code."),
    valid_days: int = typer.Option(None, "--valid-days", help="Valid N days after sending."),
    valid_until: str = typer.Option(
        None, "--valid-until", help="Last valid day (YYYY-MM-DD, shop time zone)."
    ),
    no_end: bool = typer.Option(False, "--no-end", help="Valid with no end date."),
    valid_from: str = typer.Option(None, "--valid-from", help="First valid day (YYYY-MM-DD)."),
    uses: int = typer.Option(None, "--uses", help="Uses per coupon."),
    location: list[str] = typer.Option(
        None, "--location", help="Valid only at these locations (repeatable; replaces the list)."
    ),
    all_locations: bool = typer.Option(
        False, "--all-locations", help="Valid at every location again."
    ),
) -> None:
    """Edit deal NAME; options not given stay as they are."""
    if location and all_locations:
        raise InvalidInput(
            "choose --location or --all-locations, not both", code="conflicting_locations"
        )
    changes = service.DealChanges(
        title=title,
        terms=terms,
        kind=kind,
        value=value,
        currency=currency,
        valid_from=service.parse_day_or_moment(valid_from) if valid_from else None,
        valid_until=service.parse_day_or_moment(valid_until) if valid_until else None,
        valid_days=valid_days,
        no_end=no_end,
        uses_per_coupon=uses,
        locations=() if all_locations else (tuple(location) if location else None),
    )
    with cli_session() as session:
        summary = service.describe(service.update_deal(session, name, changes))
    console.print(f"deal {summary['name']} saved: {summary['headline']}, {summary['title']}")


@deals_app.command("list")
def deals_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List deals."""
    with cli_session() as session:
        rows = [service.describe(d) for d in service.list_deals(session)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        until = row["valid_until"] or (
            f"{row['valid_days']} days after sending" if row["valid_days"] else "no end"
        )
        flag = " (expired)" if row["expired"] else ""
        typer.echo(
            f"{row['name']:20} {row['headline']:24} {row['title']}  [until {until}]{flag}",
        )


@deals_app.command("show")
def deals_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show deal NAME."""
    with cli_session() as session:
        row = service.describe(service.get_deal(session, name))
    if as_json:
        print_json(row)
        return
    for key, value in row.items():
        typer.echo(f"{key:16} {'' if value is None else value}")


def register(app: typer.Typer) -> None:
    app.add_typer(deals_app, name="deals")
