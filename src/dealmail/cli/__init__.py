"""The `dealmail` command: a typer app; each module in this package registers one verb group."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import typer
from typer.core import TyperGroup

from dealmail.errors import DomainError

EXIT_DOMAIN_ERROR = 2


class DomainErrorGroup(TyperGroup):
    """Turns a DomainError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors its own click Context type
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            typer.echo(f"error: {exc.message} [{exc.code}]", err=True)
            raise typer.Exit(EXIT_DOMAIN_ERROR) from None


app = typer.Typer(
    cls=DomainErrorGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="dealmail: email campaigns with personal QR-code deals, redeemed at the counter.",
)


def _register_all() -> None:
    """Each sibling module defines register(app); adding a verb group touches no shared file."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    app()
