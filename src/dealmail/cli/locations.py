"""`dealmail locations`: the shop's locations (name, address, time zone)."""

from __future__ import annotations

import typer

from dealmail.cli._common import cli_session, console, print_json
from dealmail.locations import service

locations_app = typer.Typer(help="Shop locations where coupons are redeemed.", no_args_is_help=True)


@locations_app.command("add")
def locations_add(
    name: str,
    address: str = typer.Option(None, "--address", help="Street address."),
    timezone: str = typer.Option(
        None, "--timezone", help="IANA time zone, e.g. Europe/London (default: the shop's)."
    ),
) -> None:
    """Add a location."""
    with cli_session() as session:
        location = service.add_location(session, name, address=address, timezone=timezone)
    console.print(f"location {location.name} added ({location.timezone})", highlight=False)


@locations_app.command("list")
def locations_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List locations."""
    with cli_session() as session:
        rows = [
            {"id": loc.id, "name": loc.name, "address": loc.address, "timezone": loc.timezone}
            for loc in service.list_locations(session)
        ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no locations yet: dealmail locations add NAME")
    for row in rows:
        typer.echo(
            f"{row['name']:24} {row['timezone']:20} {row['address'] or ''}",
        )


def register(app: typer.Typer) -> None:
    app.add_typer(locations_app, name="locations")
