"""Verb groups several modules add commands to (`campaigns create`, `campaigns send`)."""

from __future__ import annotations

import typer

campaigns_app = typer.Typer(
    help="Campaigns: author, check, preview, send, watch.", no_args_is_help=True
)
contacts_app = typer.Typer(
    help="Customers: import, list, tag, unsubscribe, export.", no_args_is_help=True
)
