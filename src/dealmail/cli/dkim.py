"""`dealmail dkim generate`: a DKIM key in the data directory and the DNS record to publish.

Signing is configured in the environment (or `.env`): DEALMAIL_DKIM_SELECTOR turns it on, the
key is `<data dir>/dkim/<selector>.pem` unless DEALMAIL_DKIM_PRIVATE_KEY_FILE says otherwise, and
DEALMAIL_DKIM_DOMAIN defaults to the sender address's domain.
"""

from __future__ import annotations

import re

import typer

from dealmail.cli._common import cli_session, console
from dealmail.config import get_settings
from dealmail.delivery import dkim
from dealmail.errors import AlreadyExists, InvalidInput
from dealmail.shop import get_shop_settings

dkim_app = typer.Typer(help="DKIM signing keys.", no_args_is_help=True)
SELECTOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")


def txt_strings(value: str) -> str:
    """DNS TXT strings are at most 255 characters: split, quoted, for zone files."""
    return " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))


@dkim_app.command("generate")
def dkim_generate(
    selector: str = typer.Option(..., "--selector", help="DKIM selector, e.g. dm2026."),
    domain: str = typer.Option(None, "--domain", help="Signing domain (default: sender's)."),
) -> None:
    """Create an RSA-2048 key (mode 0600) and print the TXT record to publish."""
    if not SELECTOR_RE.match(selector):
        raise InvalidInput("a selector is letters, digits and -", code="invalid_selector")
    settings = get_settings()
    if domain is None:
        with cli_session() as session:
            sender = get_shop_settings(session).sender_email
        if not sender:
            raise InvalidInput(
                "give --domain, or set the shop's sender_email first", code="missing_domain"
            )
        domain = sender.rsplit("@", 1)[1]
    domain = domain.lower().rstrip(".")
    if not DOMAIN_RE.match(domain):
        raise InvalidInput(f"{domain!r} is not a domain name", code="invalid_domain")
    path = dkim.default_key_path(settings, selector)
    if path.exists():
        raise AlreadyExists(
            f"{path} exists; choose a new selector to rotate keys", code="dkim_key_exists"
        )
    key = dkim.generate_key(path)
    record = dkim.public_key_record(key)
    console.print(f"private key written to {path} (mode 0600)", highlight=False)
    console.print("\npublish this DNS TXT record:", highlight=False)
    typer.echo(f"{selector}._domainkey.{domain}. IN TXT {txt_strings(record)}")
    console.print("\nthen sign with these settings (environment or .env):", highlight=False)
    typer.echo(f"DEALMAIL_DKIM_SELECTOR={selector}")
    typer.echo(f"DEALMAIL_DKIM_DOMAIN={domain}")


def register(app: typer.Typer) -> None:
    app.add_typer(dkim_app, name="dkim")
