"""`dealmail settings`: the shop's identity, sender, public URL, time zone and limits."""

from __future__ import annotations

import json

import typer

from dealmail import shop
from dealmail.cli._common import cli_session, console, print_json

settings_app = typer.Typer(help="The shop's settings.", no_args_is_help=True)


def _parse(value: str) -> object:
    """Numbers and JSON literals as such; anything else as text."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, int | float | bool) or parsed is None else value


@settings_app.command("set")
def settings_set(key: str, value: str) -> None:
    """Set KEY to VALUE."""
    with cli_session() as session:
        updated = shop.set_settings(session, {key: _parse(value)})
    console.print(f"{key} = {getattr(updated, key)!r}")


@settings_app.command("show")
def settings_show(as_json: bool = typer.Option(False, "--json")) -> None:
    """Print every setting."""
    with cli_session() as session:
        values = shop.get_shop_settings(session).model_dump()
    if as_json:
        print_json(values)
        return
    for key, value in values.items():
        console.print(f"{key:22} {'' if value is None else value}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(settings_app, name="settings")
