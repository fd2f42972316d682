"""`dealmail admin`: the owner's dashboard (Streamlit), on DEALMAIL_ADMIN_PORT."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from dealmail.config import get_settings
from dealmail.db import current_revision, get_engine
from dealmail.errors import ConfigurationError

# The ASGI app around the dashboard script (app.py): it adds the remembered-login route.
APP_FILE = Path(__file__).resolve().parent.parent / "admin" / "server.py"


def streamlit_argv(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--global.developmentMode",
        "false",
    ]


def admin(
    host: str = typer.Option(None, help="Interface to listen on (default DEALMAIL_WEB_HOST)."),
    port: int = typer.Option(None, help="Port (default DEALMAIL_ADMIN_PORT)."),
) -> None:
    """Serve the dashboard: contacts, deals, campaigns, locations, inbox, reports, settings."""
    settings = get_settings()
    if current_revision(get_engine(settings)) is None:
        raise ConfigurationError(
            f"no database at {settings.resolved_database_url}: run `dealmail init` first",
            code="not_initialised",
        )
    argv = streamlit_argv(host or settings.web_host, port or settings.admin_port)
    # Streamlit takes over this process, so `dealmail up` stops it with one signal.
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter and arguments


def register(app: typer.Typer) -> None:
    app.command()(admin)
