"""Helpers every verb group shares: a session, JSON output, the console."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from dealmail.config import get_settings
from dealmail.db import get_engine, session_scope

console = Console()
err_console = Console(stderr=True)


@contextmanager
def cli_session() -> Iterator[Session]:
    with session_scope(get_engine(get_settings())) as session:
        yield session


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))
