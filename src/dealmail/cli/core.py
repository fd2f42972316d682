"""Verbs that set up and run the application: init, db, users, up, web."""

from __future__ import annotations

import typer

from dealmail import accounts
from dealmail.bootstrap import initialise
from dealmail.cli._common import cli_session, console
from dealmail.cli._groups import campaigns_app, contacts_app
from dealmail.config import get_settings
from dealmail.db import current_revision, get_engine, migrate
from dealmail.errors import InvalidInput
from dealmail.supervisor import Child, dealmail_argv, supervise

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Admin users of the dashboard.", no_args_is_help=True)


def init() -> None:
    """Create the data directory, secret key, database and first admin user (idempotent)."""
    result = initialise(get_settings())
    console.print(f"data directory: {result.data_dir}")
    console.print(f"database: {result.database_url}")
    if result.secret_created:
        console.print("secret key: generated (mode 0600)")
    if result.admin_password:
        console.print(
            f"admin user [bold]{result.admin_username}[/] created; password (shown once): "
            f"[bold]{result.admin_password}[/]"
        )


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION."""
    migrate(get_settings().resolved_database_url, revision)
    console.print(f"database at revision {current_revision(get_engine(get_settings()))}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision."""
    console.print(current_revision(get_engine(get_settings())) or "empty")


ASK_PASSWORD = typer.Option(
    False, "--password", help="Ask for the password instead of generating one."
)


@users_app.command("add")
def users_add(name: str, password: bool = ASK_PASSWORD) -> None:
    """Add an admin user; prints a generated password once unless --password asks for one."""
    chosen = _typed_password() if password else None
    with cli_session() as session:
        created = accounts.add_user(session, name, chosen)
    _report(created, "created")


@users_app.command("passwd")
def users_passwd(name: str, password: bool = ASK_PASSWORD) -> None:
    """Reset a user's password (a forgotten one): prints a generated password once unless
    --password asks for one, and lifts a lock left by failed logins."""
    chosen = _typed_password() if password else None
    with cli_session() as session:
        changed = accounts.reset_password(session, name, chosen)
    _report(changed, "has a new password")


def _typed_password() -> str:
    chosen: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if not chosen:
        raise InvalidInput("empty password", code="weak_password")
    return chosen


def _report(user: accounts.CreatedUser, what: str) -> None:
    if user.generated:
        console.print(f"user {user.username} {what}; password (shown once): {user.password}")
    else:
        console.print(f"user {user.username} {what}")


def web(
    host: str = typer.Option(None, help="Interface to listen on (default DEALMAIL_WEB_HOST)."),
    port: int = typer.Option(None, help="Port (default DEALMAIL_WEB_PORT)."),
    access_log: bool = typer.Option(
        False,
        help="Log every request to stderr (tokens redacted). Off by default: log requests where "
        "they arrive, at the HTTPS proxy (e.g. Caddy's `log`); here a line costs a fifth of a "
        "short request's server time.",
    ),
) -> None:
    """Serve the web app: coupon pages, unsubscribe, scanner, API, webhooks, /healthz."""
    # One process on purpose: on SQLite, redemptions serialise on the write lock, and a second
    # worker mostly waits for it (measured: redeem p99 54 -> 159 ms, throughput 10 % lower).
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "dealmail.web.app:create_serving_app",
        factory=True,
        host=host or settings.web_host,
        port=port or settings.web_port,
        proxy_headers=True,
        log_level="info",
        access_log=access_log,
    )


def up() -> None:
    """Initialise, then run web, worker, dashboard and dev inbox together until Ctrl-C."""
    settings = get_settings()
    result = initialise(settings)
    children = [Child("web", dealmail_argv("web")), Child("worker", dealmail_argv("worker"))]
    children.append(Child("admin", dealmail_argv("admin")))
    if settings.email_backend == "devinbox":
        children.append(Child("devinbox", dealmail_argv("devinbox")))
    console.print(f"data directory: {result.data_dir}")
    console.print(f"web:       http://{settings.web_host}:{settings.web_port}")
    console.print(f"dashboard: http://{settings.web_host}:{settings.admin_port}")
    if settings.email_backend == "devinbox":
        console.print(
            f"dev inbox: http://{settings.web_host}:{settings.web_port}/dev/inbox "
            f"(SMTP on {settings.devinbox_host}:{settings.devinbox_port})"
        )
    if result.admin_password:
        console.print(
            f"first run: log in as [bold]{result.admin_username}[/] with password "
            f"[bold]{result.admin_password}[/] (shown once)"
        )
    supervise(children, log=lambda line: console.print(f"[dim]up:[/] {line}"))


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(up)
    app.command()(web)
    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
    app.add_typer(campaigns_app, name="campaigns")
    app.add_typer(contacts_app, name="contacts")
